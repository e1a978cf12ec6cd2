"""`rrn drill schedule|list|report`: drills, and how the network answered them.

Owns the drill operations: scheduling one (a fresh secret, its commitment signed,
the secret itself sealed to this member as the drill is signed; this node's
DrillRunner raises the exercise alerts), listing the drills known here, and a
drill's report: each exercise alert against the moment the revealed secret gives
it, and per member and per hour of the week how the alerts were answered.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
from collections.abc import Awaitable, Callable
from typing import Annotated

import msgspec
from msgspec import Meta

from rrn.federation.alert_view import AlertView, derive
from rrn.federation.alerts import AlertState
from rrn.federation.authority import authorise
from rrn.federation.escalation import Ladder
from rrn.node.control.channel import handler
from rrn.node.ops.book import AlertBook
from rrn.node.ops.types import NoArgs
from rrn.protocol.drills import (
    MAX_DRILL_ALERTS,
    DrillRevealed,
    DrillScheduled,
    moments,
    secret_commitment,
)
from rrn.protocol.errors import ControlError
from rrn.protocol.kinds import Kind, decode_payload
from rrn.protocol.vocabulary import EscalationCause, IncidentType, Urgency

__all__ = ["DrillArgs", "DrillInfo", "DrillOps", "DrillRef", "DrillReport"]

#: The drill runner's wake-up, and how this node escalates an alert (its ladder).
DrillHooks = tuple[Callable[[], None], Callable[[AlertView], Awaitable[Ladder]]]
#: An exercise alert raised more than this before its moment was not unforeseen.
EARLY_MS = 60_000


class DrillArgs(msgspec.Struct, frozen=True, kw_only=True):
    start_ms: int
    end_ms: int
    #: Members in scope besides this one.
    scope: list[str]
    urgencies: Annotated[list[Urgency], Meta(min_length=1, max_length=MAX_DRILL_ALERTS)]
    country: str
    incident_types: list[IncidentType]
    languages: list[str] = []


class DrillRef(msgspec.Struct, frozen=True, kw_only=True):
    drill: Annotated[str, Meta(pattern=r"^[0-9a-f]{6,64}$")]


class DrillInfo(msgspec.Struct, frozen=True, kw_only=True):
    drill: str
    origin: str
    start_ms: int
    end_ms: int
    scope: list[str]
    urgencies: list[str]
    #: Exercise alerts of it this node holds.
    raised: int
    revealed: bool


class DrillAlertRow(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    urgency: str
    raised_ms: int
    #: When the revealed secret says it was due (None before the reveal).
    moment_ms: int | None
    #: Raised more than a minute before its moment: it was not unforeseen.
    early: bool
    level: int
    status: str
    first_claim_by: str | None
    time_to_claim_s: float | None


class DrillMemberRow(msgspec.Struct, frozen=True, kw_only=True):
    org: str
    #: Exercise alerts that asked it (directly, or in the pool).
    asked: int
    #: Median seconds from the raise to its first being asked.
    median_notice_s: float | None
    claimed: int
    #: Median seconds from its being asked to its claim.
    median_claim_s: float | None
    #: Median escalation level the alerts it claimed had reached.
    median_level_at_claim: float | None
    #: Direct steps that named it and ran out (escalated past it) without its claim.
    missed_steps: int


class DrillHourRow(msgspec.Struct, frozen=True, kw_only=True):
    #: Hour of the week, UTC: 0 is Monday 00:00.
    hour: int
    label: str
    alerts: int
    claimed_in_first_step: int
    max_level: int


class DrillReport(msgspec.Struct, frozen=True, kw_only=True):
    drill: DrillInfo
    #: The reveal matches the commitment (None: not revealed yet).
    verified: bool | None
    alerts: list[DrillAlertRow]
    members: list[DrillMemberRow]
    hours: list[DrillHourRow]


class DrillOps:
    """The drill operations of one node."""

    def __init__(self, book: AlertBook, hooks: DrillHooks | None) -> None:
        self._book = book
        self._hooks = hooks

    def handlers(self) -> dict[str, Callable[[bytes], Awaitable[object]]]:
        return {
            "drill.schedule": handler(DrillArgs, self.schedule),
            "drill.list": handler(NoArgs, lambda _: self.list_drills()),
            "drill.report": handler(DrillRef, self.report),
        }

    async def schedule(self, args: DrillArgs) -> DrillInfo:
        ingestor = self._book.ingestor
        me, members = ingestor.me.org, ingestor.network.roster.orgs()
        unknown = [o for o in args.scope if o not in members]
        if unknown:
            raise ControlError(f"not current members: {', '.join(unknown)}")
        if args.start_ms < ingestor.clock.now_ms() - 60_000:
            raise ControlError("a drill starts now or later")
        secret = os.urandom(32)
        drill = DrillScheduled(
            start_ms=args.start_ms,
            end_ms=args.end_ms,
            scope=sorted({*args.scope, me}),
            urgencies=list(args.urgencies),
            country=args.country,
            incident_types=list(args.incident_types),
            languages=list(args.languages),
            commitment=secret_commitment(secret),
            secret=secret,  # sealed to this member as it is signed
        )
        event = await self._book.append(drill)
        if self._hooks is not None:
            self._hooks[0]()
        return (await self._drills(event.id.hex()))[0][0]

    async def list_drills(self) -> list[DrillInfo]:
        return [info for info, _, _ in await self._drills("")]

    async def _drills(self, ref: str) -> list[tuple[DrillInfo, DrillScheduled, bytes | None]]:
        store = self._book.store
        reveals = {}
        for e in await store.events_of_kinds([str(Kind.DRILL_REVEALED)]):
            p = decode_payload(e.header.kind, e.payload or b"")
            if isinstance(p, DrillRevealed):
                reveals[(e.header.origin, p.drill)] = p.secret
        scheduled = await store.events_of_kinds([str(Kind.DRILL_SCHEDULED)])
        counts = _count(await self._exercises(None, {e.id: e.header.origin for e in scheduled}))
        found = []
        for e in scheduled:
            if e.payload is None or not e.id.hex().startswith(ref):
                continue
            d = decode_payload(e.header.kind, e.payload)
            assert isinstance(d, DrillScheduled)
            secret = reveals.get((e.header.origin, e.id))
            info = DrillInfo(
                drill=e.id.hex(),
                origin=e.header.origin,
                start_ms=d.start_ms,
                end_ms=d.end_ms,
                scope=list(d.scope),
                urgencies=[str(u) for u in d.urgencies],
                raised=counts.get(e.id, 0),
                revealed=secret is not None,
            )
            found.append((info, d, secret))
        if ref and len(found) != 1:
            raise ControlError(f"no drill with id {ref}" if not found else "give more of the id")
        return sorted(found, key=lambda f: f[0].start_ms)

    async def _exercises(
        self, drill: bytes | None, origins: dict[bytes, str] | None = None
    ) -> list[tuple[AlertState, AlertView]]:
        """The exercise alerts held here (of one drill), authorised, with their views;
        with `origins` (drill -> its member), only those that member raised."""
        store, authority = self._book.store, self._book.ingestor.network.authority
        found = []
        ids = await store.alert_ids()
        for at in range(0, len(ids), 500):
            for state in (await store.alert_states(ids[at : at + 500])).values():
                r = state.raised
                if r is None or r.body.drill is None or drill not in (None, r.body.drill):
                    continue
                if origins is not None and origins.get(r.body.drill) != r.pos.org:
                    continue  # only the drill's own member raises its exercise alerts
                allowed, _ = authorise(state, authority)
                v = derive(allowed)
                if v is not None:
                    found.append((allowed, v))
        return found

    async def report(self, args: DrillRef) -> DrillReport:
        (info, d, secret), *_ = await self._drills(args.drill)
        drill = bytes.fromhex(info.drill)
        due = moments(secret, d.start_ms, d.end_ms, len(d.urgencies)) if secret else None
        rows, members = [], _Tally()
        hours: dict[int, DrillHourRow] = {}
        seen: set[int] = set()
        found = await self._exercises(drill, {drill: info.origin})
        for state, v in sorted(found, key=lambda a: a[1].raised_ms):
            assert state.raised is not None and state.raised.body.drill_index is not None
            i = state.raised.body.drill_index
            if i >= len(d.urgencies) or i in seen:
                continue  # not one of the drill's alerts, or a second copy of one
            seen.add(i)
            ladder = await self._hooks[1](v) if self._hooks is not None else None
            rows.append(_row(state, v, i, due[i] if due and i < len(due) else None))
            members.add(state, v, ladder)
            _hour(hours, v, state)
        return DrillReport(
            drill=info,
            verified=None if secret is None else secret_commitment(secret) == d.commitment,
            alerts=rows,
            members=members.rows(),
            hours=[hours[h] for h in sorted(hours)],
        )


def _count(alerts: list[tuple[AlertState, AlertView]]) -> dict[bytes, int]:
    found: dict[bytes, int] = {}
    for state, _ in alerts:
        if state.raised is not None and state.raised.body.drill is not None:
            found[state.raised.body.drill] = found.get(state.raised.body.drill, 0) + 1
    return found


def _first_claim(state: AlertState) -> tuple[int, str] | None:
    return min(((c.pos.wall_ms, c.pos.org) for c in state.claims), default=None)


def _row(state: AlertState, v: AlertView, i: int, moment: int | None) -> DrillAlertRow:
    first = _first_claim(state)
    return DrillAlertRow(
        index=i,
        urgency=str(v.urgency),
        raised_ms=v.raised_ms,
        moment_ms=moment,
        early=moment is not None and v.raised_ms < moment - EARLY_MS,
        level=v.level,
        status=str(v.status),
        first_claim_by=first[1] if first else None,
        time_to_claim_s=(first[0] - v.raised_ms) / 1000 if first else None,
    )


def _hour(hours: dict[int, DrillHourRow], v: AlertView, state: AlertState) -> None:
    at = dt.datetime.fromtimestamp(v.raised_ms / 1000, dt.UTC)
    h = at.weekday() * 24 + at.hour
    first = _first_claim(state)
    early = [e.body.level for e in state.escalations if first and e.pos.wall_ms <= first[0]]
    in_first = first is not None and not early
    old = hours.get(h) or DrillHourRow(
        hour=h, label=at.strftime("%a %H:00 UTC"), alerts=0, claimed_in_first_step=0, max_level=0
    )
    hours[h] = msgspec.structs.replace(
        old,
        alerts=old.alerts + 1,
        claimed_in_first_step=old.claimed_in_first_step + in_first,
        max_level=max(old.max_level, v.level),
    )


class _Tally:
    """Per member: when it was asked, when it claimed, the steps it let run out."""

    def __init__(self) -> None:
        self.notice: dict[str, list[float]] = {}
        self.claim: dict[str, list[float]] = {}
        self.level: dict[str, list[int]] = {}
        self.missed: dict[str, int] = {}

    def add(self, state: AlertState, v: AlertView, ladder: Ladder | None) -> None:
        asked: dict[str, int] = {}  # member -> when first asked
        steps = sorted(state.escalations, key=lambda e: (e.body.level, e.pos.wall_ms))
        if ladder is not None:
            for org in ladder.step(0).targets:
                asked.setdefault(org, v.raised_ms)
        for e in steps:
            for org in e.body.targets:
                asked[org] = min(asked.get(org, e.pos.wall_ms), e.pos.wall_ms)
        claims = {
            c.pos.org: c.pos.wall_ms
            for c in sorted(state.claims, key=lambda c: c.pos.wall_ms, reverse=True)
        }
        for org, at in asked.items():
            self.notice.setdefault(org, []).append((at - v.raised_ms) / 1000)
            if org in claims:
                self.claim.setdefault(org, []).append(max(0, claims[org] - at) / 1000)
                reached = [e.body.level for e in steps if e.pos.wall_ms <= claims[org]]
                self.level.setdefault(org, []).append(max(reached, default=0))
        for e in steps:  # a direct step past which the alert moved on: who let it go
            before = [p for p in steps if p.body.level == e.body.level - 1]
            named = before[0].body.targets if before else (ladder.step(0).targets if ladder else ())
            if e.body.cause is not EscalationCause.CLAIM_LAPSED and len(named) == 1:
                org = named[0]
                if claims.get(org, e.pos.wall_ms + 1) > e.pos.wall_ms:
                    self.missed[org] = self.missed.get(org, 0) + 1

    def rows(self) -> list[DrillMemberRow]:
        def median(xs: list[float] | list[int] | None) -> float | None:
            return float(statistics.median(xs)) if xs else None

        return [
            DrillMemberRow(
                org=org,
                asked=len(self.notice[org]),
                median_notice_s=median(self.notice[org]),
                claimed=len(self.claim.get(org, [])),
                median_claim_s=median(self.claim.get(org)),
                median_level_at_claim=median(self.level.get(org)),
                missed_steps=self.missed.get(org, 0),
            )
            for org in sorted(self.notice)
        ]
