"""What a person does from the console: raise, claim, act, release, resolve, cancel,
forget, pledge, and open sealed details.

Owns the POST handlers. Each calls the same operation `rrn alert …` calls
(node/console/context.py's `Operations`), after the person's role allows it, and
records who did it in this node's record (never on the network: the signed
event is the organisation's, as from the CLI). Sealed details are opened only
here, on an explicit request, for the response to that request alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import msgspec
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from multidict import MultiDict, MultiDictProxy

from rrn.node.console.auth import read_form
from rrn.node.console.context import ctx, lang_of, may, now_ms, page, who
from rrn.node.console.forms import ASK_ROWS, Form, parse_raise, parse_slots
from rrn.node.console.pages import ALERT_ID as _ALERT_ID
from rrn.node.console.pages import alert_page, checkins_page
from rrn.node.control.transit import open_reply
from rrn.node.ops.checkins import PlanArgs, PlanInfo, RecordArgs
from rrn.node.ops.defenders import DefenderInfo
from rrn.node.ops.types import (
    ActArgs,
    AlertDetail,
    AlertInfo,
    CancelArgs,
    ClaimArgs,
    ForgetArgs,
    NoArgs,
    PledgeArgs,
    ReleaseArgs,
    ResolveArgs,
    ShowArgs,
    StatusInfo,
    UpdateArgs,
)
from rrn.protocol.errors import ControlError, ProtocolError
from rrn.protocol.sealing import decode_details
from rrn.protocol.vocabulary import (
    ActionType,
    ActResult,
    Audience,
    CancelReason,
    Channel,
    ConsentSource,
    IncidentType,
    Outcome,
    Severity,
    SupporterRole,
    TombstoneReason,
    Urgency,
)

__all__ = ["routes"]

logger = logging.getLogger(__name__)

_MINUTE: Final = 60_000
_MAX_CLAIM_MINUTES: Final = 30 * 24 * 60
Build = Callable[[str, Form], object]


def _claim(ref: str, f: Form) -> object:
    minutes = str(f.get("minutes", "")).strip()[:6]
    if minutes and not (minutes.isdigit() and 0 < int(minutes) <= _MAX_CLAIM_MINUTES):
        raise ValueError("minutes")
    until = now_ms() + int(minutes) * _MINUTE if minutes else None
    return ClaimArgs(alert=ref, until_ms=until)


def _update(ref: str, f: Form) -> object:
    severity, urgency = str(f.get("severity", "")), str(f.get("urgency", ""))
    return UpdateArgs(
        alert=ref,
        severity=Severity(severity) if severity else None,
        urgency=Urgency(urgency) if urgency else None,
    )


def _pledge(ref: str, f: Form) -> object:
    return PledgeArgs(alert=ref, action=ActionType(str(f.get("action"))))


#: Action name -> (permission, operation, its arguments from the form).
_ACTIONS: Final[dict[str, tuple[str, str, Build]]] = {
    "claim": ("respond", "alert.claim", _claim),
    "act": (
        "respond",
        "alert.act",
        lambda ref, f: ActArgs(
            alert=ref,
            action=ActionType(str(f.get("action"))),
            channel=Channel(str(f.get("channel", "private"))),
            result=ActResult(str(f.get("result", "done"))),
        ),
    ),
    "release": (
        "respond",
        "alert.release",
        lambda ref, f: ReleaseArgs(alert=ref, handover_to=str(f.get("to", "")) or None),
    ),
    "resolve": (
        "respond",
        "alert.resolve",
        lambda ref, f: ResolveArgs(alert=ref, outcome=Outcome(str(f.get("outcome")))),
    ),
    "update": ("originate", "alert.update", _update),
    "cancel": (
        "originate",
        "alert.cancel",
        lambda ref, f: CancelArgs(alert=ref, reason=CancelReason(str(f.get("reason")))),
    ),
    "forget": (
        "originate",
        "alert.forget",
        lambda ref, f: ForgetArgs(alert=ref, reason=TombstoneReason(str(f.get("reason")))),
    ),
    "pledge": ("pledge", "alert.pledge", _pledge),
}


def routes(app: web.Application) -> None:
    app.router.add_get("/raise", raise_form)
    app.router.add_post("/raise", raise_alert)
    app.router.add_post("/alerts/{alert}/details", open_details)
    app.router.add_post("/alerts/{alert}/{action}", act)
    app.router.add_post("/checkins", record_checkin)
    app.router.add_get("/checkins/new", plan_form)
    app.router.add_post("/checkins/new", make_plan)


async def act(request: web.Request) -> web.Response:
    c = ctx(request)
    _, person = who(request)
    ref, name = request.match_info["alert"], request.match_info["action"]
    if name not in _ACTIONS or not _ALERT_ID.fullmatch(ref):
        raise web.HTTPNotFound(text="no such action")
    permission, op, build = _ACTIONS[name]
    lang = lang_of(request)
    if not may(person, permission):
        msg = lang.gettext("Your role (%(role)s) may not do that.", role=str(person.role))
        return await alert_page(request, details=None, error=msg, status=403)
    form = await read_form(request)
    try:
        args = build(ref, form)
        result: type[object] = int if name == "forget" else AlertInfo
        await c.deps.ops.call(op, args, result)
    except (ValueError, OverflowError, msgspec.ValidationError):
        msg = lang.gettext("Fill in every field of that form.")
        return await alert_page(request, details=None, error=msg, status=400)
    except ControlError as exc:
        return await alert_page(request, details=None, error=str(exc), status=409)
    c.deps.sessions.record(person.name, name, ref, now_ms())
    logger.info("console: %s did %s on alert %s", person.name, name, ref[:12])
    raise web.HTTPSeeOther("/" if name == "forget" else f"/alerts/{ref}")


async def open_details(request: web.Request) -> web.Response:
    """The sealed details, opened for this response only, and the opening recorded."""
    c = ctx(request)
    _, person = who(request)
    ref = request.match_info["alert"]
    lang = lang_of(request)
    if not _ALERT_ID.fullmatch(ref):
        raise web.HTTPNotFound(text="no such alert")
    if not may(person, "details"):
        msg = lang.gettext(
            "Your role (%(role)s) may not open sealed details.", role=str(person.role)
        )
        return await alert_page(request, details=None, error=msg, status=403)
    one_time = X25519PrivateKey.generate()
    args = ShowArgs(alert=ref, reply_to=one_time.public_key().public_bytes_raw())
    try:
        detail = await c.deps.ops.call("alert.show", args, AlertDetail)
    except ControlError as exc:
        raise web.HTTPNotFound(text="no such alert on this node") from exc
    if detail.sealed_details is None:
        msg = lang.gettext("This node cannot open these details: they are not sealed to it.")
        return await alert_page(request, details=None, error=msg, status=403)
    net = bytes.fromhex(str(c.deps.seal_info()["net"]))
    try:
        fields = decode_details(open_reply(detail.sealed_details, one_time, c.deps.org, net))
    except (ControlError, ProtocolError):
        msg = lang.gettext("The details did not open.")
        return await alert_page(request, details=None, error=msg, status=500)
    c.deps.sessions.record(person.name, "opened details", ref, now_ms())
    logger.info("console: %s opened the sealed details of alert %s", person.name, ref[:12])
    return await alert_page(request, details=fields.fields())


async def raise_form(request: web.Request) -> web.Response:
    return await _raise_page(request, form=None, problems=[])


async def _raise_page(
    request: web.Request,
    *,
    form: Form | None,
    problems: list[str],
    status: int = 200,
    plan: bool = False,
) -> web.Response:
    c = ctx(request)
    _, person = who(request)
    if not may(person, "raise"):
        raise web.HTTPForbidden(text="your role may not raise alerts")
    defenders = await c.deps.ops.call("defender.list", NoArgs(), list[DefenderInfo])
    status_info = await c.deps.ops.call("status", NoArgs(), StatusInfo)
    lang = lang_of(request)
    return page(
        request,
        "raise.html",
        title=lang.gettext("Make a check-in plan") if plan else lang.gettext("Raise an alert"),
        form=form if form is not None else MultiDictProxy(MultiDict()),
        problems=problems,
        pseudonyms=[d.pseudonym for d in defenders],
        members=[m for m in status_info.members if m != c.deps.org],
        countries=sorted(lang.locale.territories.items(), key=lambda kv: kv[1]),
        vocab={
            "type": [str(x) for x in IncidentType],
            "severity": [str(x) for x in Severity],
            "urgency": [str(x) for x in Urgency],
            "action": [str(x) for x in ActionType],
            "to": [str(x) for x in SupporterRole],
            "channel": [str(x) for x in Channel],
            "audience": [str(x) for x in Audience],
            "consent_by": [str(x) for x in ConsentSource],
        },
        ask_rows=range(ASK_ROWS),
        status=status,
        plan=plan,
    )


async def raise_alert(request: web.Request) -> web.Response:
    c = ctx(request)
    _, person = who(request)
    if not may(person, "raise"):
        raise web.HTTPForbidden(text="your role may not raise alerts")
    form = await read_form(request)
    lang = lang_of(request)
    args, problems = parse_raise(
        form, seal_info=c.deps.seal_info(), now_ms=now_ms(), _=lang.gettext
    )
    if args is None:
        return await _raise_page(request, form=form, problems=problems, status=400)
    try:
        info = await c.deps.ops.call("alert.raise", args, AlertInfo)
    except ControlError as exc:
        return await _raise_page(request, form=form, problems=[str(exc)], status=409)
    c.deps.sessions.record(person.name, "raised", info.id, now_ms())
    logger.info("console: %s raised alert %s", person.name, info.id[:12])
    raise web.HTTPSeeOther(f"/alerts/{info.id}")


async def record_checkin(request: web.Request) -> web.Response:
    """A defender's check-in, recorded with their code (`rrn checkin record`). What the
    person sees is the same for either code of the slot: nobody at this screen can
    tell a duress check-in (the planning member's node alone acts on it)."""
    c = ctx(request)
    _, person = who(request)
    lang = lang_of(request)
    if not may(person, "respond"):
        msg = lang.gettext("Your role (%(role)s) may not do that.", role=str(person.role))
        return await checkins_page(request, error=msg, status=403)
    form = await read_form(request)
    plan, slot = str(form.get("plan", "")).strip().lower(), str(form.get("slot", "")).strip()
    try:
        args = RecordArgs(
            plan=plan, slot=int(slot) if slot else None, code=str(form.get("code", ""))
        )
        await c.deps.ops.call("checkin.record", args, PlanInfo)
    except (ValueError, msgspec.ValidationError):
        msg = lang.gettext("Fill in every field of that form.")
        return await checkins_page(request, error=msg, status=400)
    except ControlError as exc:
        return await checkins_page(request, error=str(exc), status=409)
    c.deps.sessions.record(person.name, "recorded a check-in", plan, now_ms())
    logger.info("console: %s recorded a check-in for plan %s", person.name, plan[:12])
    raise web.HTTPSeeOther("/checkins?done=1")


async def plan_form(request: web.Request) -> web.Response:
    return await _raise_page(request, form=None, problems=[], plan=True)


async def make_plan(request: web.Request) -> web.Response:
    """A check-in plan (`rrn checkin plan`): the alert a missed check-in raises, as the
    raise form gives it, and the times; the answer is the code card, shown once."""
    c = ctx(request)
    _, person = who(request)
    if not may(person, "raise"):
        raise web.HTTPForbidden(text="your role may not make check-in plans")
    form = await read_form(request)
    lang = lang_of(request)
    alert, problems = parse_raise(
        form, seal_info=c.deps.seal_info(), now_ms=now_ms(), _=lang.gettext
    )
    tz = (person.tz if person and person.tz else "") or c.deps.tz
    times = parse_slots(form, tz, problems, lang.gettext)
    if alert is None or times is None:
        return await _raise_page(request, form=form, problems=problems, status=400, plan=True)
    slots, grace_ms = times
    try:
        info = await c.deps.ops.call(
            "checkin.plan", PlanArgs(alert=alert, slots_ms=slots, grace_ms=grace_ms), PlanInfo
        )
    except ControlError as exc:
        return await _raise_page(request, form=form, problems=[str(exc)], status=409, plan=True)
    c.deps.sessions.record(person.name, "made a check-in plan", info.plan, now_ms())
    logger.info("console: %s made check-in plan %s", person.name, info.plan[:12])
    return page(
        request, "checkin_card.html", title=lang.gettext("The defender's code card"), info=info
    )
