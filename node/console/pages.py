"""The console's pages: the inbox, an alert, coverage, the network, asks, the record.

Owns what each page reads (through the node's read operations, node/console/
context.py's `Operations`) and how it is ordered and filtered. Pages show only
what `rrn alert list|show` would show this node; sealed details are never read
here (node/console/actions.py opens them on an explicit request). An alert's
page lists its collective actions as `rrn collective list` does, and the form to
propose one (node/console/collective.py takes it).
"""

from __future__ import annotations

import datetime
import re
from typing import Final

from aiohttp import web
from babel.dates import format_timedelta
from multidict import MultiDict, MultiDictProxy

from rrn.node.alerting.coverage import CoverageGrid
from rrn.node.console.context import ctx, lang_of, may, now_ms, page, who
from rrn.node.console.forms import DEADLINE_HOURS, Form
from rrn.node.ops.checkins import PlanInfo, PlansArgs
from rrn.node.ops.collective import CollectiveInfo, CollectiveListArgs
from rrn.node.ops.members import PeerInfo
from rrn.node.ops.types import (
    AlertDetail,
    AlertInfo,
    AskInfo,
    AsksArgs,
    CoverageArgs,
    ListArgs,
    NoArgs,
    ShowArgs,
    StatusInfo,
)
from rrn.protocol.errors import ControlError
from rrn.protocol.roster import Role as MemberRole
from rrn.protocol.vocabulary import (
    ActionType,
    ActResult,
    CancelReason,
    IncidentType,
    Outcome,
    Severity,
    TombstoneReason,
    Urgency,
)

__all__ = ["ALERT_ID", "alert_page", "checkins_page", "routes"]

ALERT_ID: Final = re.compile(r"[0-9a-f]{64}")
_FILTERS: Final = ("country", "type", "severity", "lang")


def routes(app: web.Application) -> None:
    app.router.add_get("/", inbox)
    app.router.add_get("/alerts/{alert}", alert)
    app.router.add_get("/coverage", coverage)
    app.router.add_get("/network", network)
    app.router.add_get("/asks", asks)
    app.router.add_get("/record", record)
    app.router.add_get("/checkins", checkins)
    app.router.add_get("/healthz", healthz)


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def _matches(a: AlertInfo, f: dict[str, str]) -> bool:
    return (
        (not f.get("country") or a.country == f["country"])
        and (not f.get("type") or f["type"] in a.incident_types)
        and (not f.get("severity") or a.severity == f["severity"])
        and (not f.get("lang") or f["lang"] in a.languages)
    )


async def inbox(request: web.Request) -> web.Response:
    """What is asked of us first (soonest deadline first), then what we hold, then the rest."""
    c = ctx(request)
    org = c.deps.org
    every = await c.deps.ops.call("alert.list", ListArgs(), list[AlertInfo])
    f = {k: request.query.get(k, "") for k in _FILTERS}
    shown = [a for a in every if _matches(a, f)]
    asked = sorted(
        (a for a in shown if org in a.asked and org not in a.claimants),
        key=lambda a: (a.deadline_ms is None, a.deadline_ms or 0, a.raised_ms),
    )
    held = [a for a in shown if org in a.claimants]
    others = sorted(
        (a for a in shown if a not in asked and a not in held),
        key=lambda a: a.raised_ms,
        reverse=True,
    )
    return page(
        request,
        "inbox.html",
        title=lang_of(request).gettext("Inbox"),
        asked=asked,
        held=held,
        others=others,
        filters=f,
        countries=sorted({a.country for a in every}),
        langs=sorted({lang for a in every for lang in a.languages}),
        types=[str(t) for t in IncidentType],
        severities=[str(s) for s in Severity],
    )


async def alert(request: web.Request) -> web.Response:
    return await alert_page(request, details=None)


async def alert_page(
    request: web.Request,
    *,
    details: dict[str, str] | None,
    error: str | None = None,
    status: int = 200,
    proposing: Form | None = None,
) -> web.Response:
    """An alert as `rrn alert show` shows it, with what this node's people did to it, its
    collective actions, and (`proposing`) a propose form to show again as it was sent."""
    c = ctx(request)
    _, person = who(request)
    ref = request.match_info["alert"]
    if not ALERT_ID.fullmatch(ref):
        raise web.HTTPNotFound(text="no such alert")
    try:
        detail = await c.deps.ops.call("alert.show", ShowArgs(alert=ref), AlertDetail)
    except ControlError as exc:
        raise web.HTTPNotFound(text="no such alert on this node") from exc
    grid = await c.deps.ops.call("coverage.show", CoverageArgs(tz=c.deps.tz), CoverageGrid)
    members = await c.deps.ops.call("status", NoArgs(), StatusInfo)
    a = detail.alert
    listed = await c.deps.ops.call(
        "collective.list", CollectiveListArgs(alert=a.id), list[CollectiveInfo]
    )
    lang = lang_of(request)
    return page(
        request,
        "alert.html",
        title=lang.gettext("Alert %(ref)s", ref=a.id[:8]),
        a=a,
        detail=detail,
        details=details,
        origin_tz=grid.members.get(a.origin) or (c.deps.tz if a.origin == c.deps.org else "UTC"),
        actions=c.deps.sessions.actions(alert=a.id),
        members=[m for m in members.members if m != c.deps.org],
        mine=a.origin == c.deps.org,
        claimed=c.deps.org in a.claimants,
        may_open=may(person, "details") and bool(detail.sealed_to),
        vocab_action=[str(x) for x in ActionType],
        vocab_result=[str(x) for x in ActResult],
        vocab_outcome=[str(x) for x in Outcome],
        vocab_cancel=[str(x) for x in CancelReason],
        vocab_forget=[str(x) for x in TombstoneReason],
        vocab_severity=[str(x) for x in Severity],
        vocab_urgency=[str(x) for x in Urgency],
        vocab_member_role=[str(x) for x in MemberRole],
        proposals=listed,
        proposing=proposing if proposing is not None else MultiDictProxy(MultiDict()),
        deadlines=[
            (h, format_timedelta(datetime.timedelta(hours=h), locale=lang.locale))
            for h in DEADLINE_HOURS
        ],
        error=error,
        status=status,
    )


async def coverage(request: web.Request) -> web.Response:
    c = ctx(request)
    _, person = who(request)
    tz = person.tz or c.deps.tz
    grid = await c.deps.ops.call("coverage.show", CoverageArgs(tz=tz), CoverageGrid)
    hours = [(grid.start_ms + h * 3_600_000) for h in range(168)]
    return page(
        request,
        "coverage.html",
        title=lang_of(request).gettext("Coverage"),
        grid=grid,
        hours=hours,
    )


async def network(request: web.Request) -> web.Response:
    c = ctx(request)
    status = await c.deps.ops.call("status", NoArgs(), StatusInfo)
    peers = await c.deps.ops.call("peers", NoArgs(), list[PeerInfo])
    return page(
        request,
        "network.html",
        title=lang_of(request).gettext("Network"),
        node=status,
        peers=peers,
    )


async def asks(request: web.Request) -> web.Response:
    c = ctx(request)
    every = request.query.get("all") == "1"
    found = await c.deps.ops.call("asks.list", AsksArgs(all=every), list[AskInfo])
    return page(
        request,
        "asks.html",
        title=lang_of(request).gettext("Asks"),
        asks=found,
        every=every,
        now=now_ms(),
    )


async def record(request: web.Request) -> web.Response:
    c = ctx(request)
    _, person = who(request)
    if not may(person, "audit"):
        raise web.HTTPForbidden(text="only admins read the record of who did what")
    return page(
        request,
        "record.html",
        title=lang_of(request).gettext("Record"),
        actions=c.deps.sessions.actions(limit=500),
        people=c.deps.people.all(),
    )


async def checkins(request: web.Request) -> web.Response:
    return await checkins_page(request, done=request.query.get("done") == "1")


async def checkins_page(
    request: web.Request, *, done: bool = False, error: str | None = None, status: int = 200
) -> web.Response:
    """Check-in plans and their slots, as `rrn checkin list` shows them, and the form a
    responder records a defender's check-in with (at any member in the audience).
    A check-in with a duress code is answered exactly like any other."""
    c = ctx(request)
    plans = await c.deps.ops.call("checkin.list", PlansArgs(), list[PlanInfo])
    active = [p for p in plans if p.ended_ms is None and any(_open(s.state) for s in p.slots)]
    return page(
        request,
        "checkins.html",
        title=lang_of(request).gettext("Check-ins"),
        plans=sorted(plans, key=lambda p: (p.ended_ms is not None, p.plan)),
        active=active,
        done=done,
        error=error,
        status=status,
    )


def _open(state: str) -> bool:
    """A slot a check-in still answers (one already missed too: a late check-in ends it)."""
    return state not in ("checked_in", "ended")
