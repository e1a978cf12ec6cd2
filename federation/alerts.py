"""Alert state: a join of the facts every node holds, and the view derived from it.

Owns how alert events combine. The state of an alert is the set of facts the
node has seen about it (the raise, updates, claims, endings); merging two states
is set union, so every order of arrival gives the same state on every node. What
the alert *is* (status, effective fields, claimants) is a pure function of that
set, `view`, which also applies the authorisation rules: only the origin updates
or cancels; the origin or a claimant resolves. Pure; imports protocol only.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable
from typing import Final, TypeVar

import msgspec

from rrn.protocol.alerts import (
    AlertActed,
    AlertClaimed,
    AlertEscalated,
    AlertFeedback,
    AlertPledged,
    AlertRaised,
    AlertReleased,
    AlertResolved,
    AlertShared,
    AlertTombstoned,
    AlertUpdated,
    Ask,
    EscalationCause,
    IncidentType,
    Severity,
    Urgency,
)
from rrn.protocol.envelope import Header
from rrn.protocol.errors import ProtocolError
from rrn.protocol.kinds import AlertPayload
from rrn.protocol.sealing import decode_sealed

__all__ = [
    "OPEN_STATUSES",
    "AlertState",
    "AlertStatus",
    "AlertView",
    "Tombstone",
    "alert_of",
    "claim_expiries",
    "decode_state",
    "encode_state",
    "fact",
    "join",
    "view",
]


class AlertStatus(enum.StrEnum):
    """Where an alert is in its life cycle."""

    OPEN = "open"
    ESCALATED = "escalated"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        """Not yet resolved or cancelled (open, escalated or claimed)."""
        return self in OPEN_STATUSES


#: Statuses of alerts that are not over.
OPEN_STATUSES: Final = frozenset({AlertStatus.OPEN, AlertStatus.ESCALATED, AlertStatus.CLAIMED})


class Pos(msgspec.Struct, array_like=True, frozen=True, order=True):
    """Where a fact came from: its origin's chain position, then its claimed time and id."""

    org: str
    epoch: int
    seq: int
    wall_ms: int
    id: bytes


class Raised(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    body: AlertRaised  # without its sealed blob, which stays in the event only
    sealed_to: tuple[str, ...] = ()
    #: The members the raise was sealed to as a whole (empty: the whole network).
    audience: tuple[str, ...] = ()


class Updated(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    body: AlertUpdated


class Claimed(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    body: AlertClaimed


class Escalated(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    body: AlertEscalated


class Released(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    body: AlertReleased


class Acted(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    body: AlertActed


class Shared(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    to: tuple[str, ...]  # the recipients of the new blob (the blob stays in the event)


class Pledged(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    body: AlertPledged


class Feedback(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    body: AlertFeedback


class Tombstone(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    body: AlertTombstoned


class Ended(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    status: AlertStatus  # RESOLVED or CANCELLED
    code: str  # the outcome or the cancel reason


class AlertState(msgspec.Struct, array_like=True, frozen=True):
    """Everything known about one alert; merge with `join`."""

    alert: bytes
    raised: Raised | None = None
    updates: tuple[Updated, ...] = ()
    claims: tuple[Claimed, ...] = ()
    ends: tuple[Ended, ...] = ()
    escalations: tuple[Escalated, ...] = ()
    releases: tuple[Released, ...] = ()
    actions: tuple[Acted, ...] = ()
    shares: tuple[Shared, ...] = ()
    pledges: tuple[Pledged, ...] = ()
    feedback: tuple[Feedback, ...] = ()
    tombstones: tuple[Tombstone, ...] = ()
    #: The origin, once a tombstone of the origin deleted the alert: every other
    #: fact is dropped then, and facts arriving later are dropped too.
    erased: str | None = None

    def positions(self) -> list[Pos]:
        """Where every fact in this state came from."""
        found = [self.raised.pos] if self.raised is not None else []
        found += [u.pos for u in self.updates]
        found += [c.pos for c in self.claims]
        found += [e.pos for e in self.ends]
        found += [e.pos for e in self.escalations]
        found += [r.pos for r in self.releases]
        found += [a.pos for a in self.actions]
        found += [s.pos for s in self.shares]
        found += [p.pos for p in self.pledges]
        found += [f.pos for f in self.feedback]
        found += [t.pos for t in self.tombstones]
        return found


class AlertView(msgspec.Struct, frozen=True, kw_only=True):
    """An alert as users see it, derived from its state."""

    alert: bytes
    origin: str
    status: AlertStatus
    country: str
    subdivision: str | None
    incident_types: list[IncidentType]
    severity: Severity
    urgency: Urgency
    asks: list[Ask]
    languages: list[str]
    pseudonym: str
    exercise: bool
    raised_ms: int
    updated_ms: int
    claimants: list[str]
    ended_by: str | None
    end_code: str | None
    #: Step of the escalation ladder the alert has reached (0: the first target).
    level: int = 0
    #: Members of that step, as published by whoever escalated (empty at level 0:
    #: every node computes the first step itself).
    targets: list[str] = []
    #: When the alert reached that level (the earliest signed escalation to it;
    #: the raise time at level 0): the level's deadline counts from here.
    level_since_ms: int = 0
    #: Why the alert reached that level (the earliest escalation to it), if it did.
    level_cause: EscalationCause | None = None
    #: Member a claimant handed the alert to, while nobody has claimed it since.
    handover_to: str | None = None
    #: Every member that ever claimed it (a claimant may resolve).
    claimed_by: list[str] = []
    #: When the first claim was made (the claimant's signed clock), if any.
    first_claim_ms: int | None = None
    #: Actions recorded on the alert: (member, action, channel), in order.
    actions: list[tuple[str, str, str]] = []
    #: When the first action was recorded (the actor's signed clock), if any.
    first_action_ms: int | None = None
    #: Members the sealed details are sealed or resealed to (empty: none sealed).
    sealed_to: list[str] = []
    #: Members that may hold the alert at all (empty: the whole network).
    audience: list[str] = []
    #: Pledges: (member, action, by_ms or None, signed time), in order.
    pledges: list[tuple[str, str, int | None, int]] = []
    #: Results recorded for actions: (member, action, result), in order.
    results: list[tuple[str, str, str]] = []
    #: Feedback the origin gave the defender: (type, signed time), in order.
    feedback: list[tuple[str, int]] = []


def alert_of(header: Header, eid: bytes, payload: AlertPayload) -> bytes:
    """The id of the alert an alert event belongs to."""
    return eid if isinstance(payload, AlertRaised) else payload.alert


def fact(
    header: Header, eid: bytes, payload: AlertPayload, audience: tuple[str, ...] = ()
) -> AlertState:
    """The state holding just this one event (`audience`: whom it was sealed to whole)."""
    pos = Pos(header.origin, header.epoch, header.seq, header.wall_ms, eid)
    alert = alert_of(header, eid, payload)
    match payload:
        case AlertRaised():
            to = _recipients(payload.sealed)
            body = msgspec.structs.replace(payload, sealed=None)
            state = AlertState(alert, raised=Raised(pos, body, to, audience))
        case AlertPledged():
            state = AlertState(alert, pledges=(Pledged(pos, payload),))
        case AlertFeedback():
            state = AlertState(alert, feedback=(Feedback(pos, payload),))
        case AlertTombstoned():
            state = AlertState(alert, tombstones=(Tombstone(pos, payload),))
        case AlertShared():
            state = AlertState(alert, shares=(Shared(pos, _recipients(payload.sealed)),))
        case AlertUpdated():
            state = AlertState(alert, updates=(Updated(pos, payload),))
        case AlertClaimed():
            state = AlertState(alert, claims=(Claimed(pos, payload),))
        case AlertResolved():
            ended = Ended(pos, AlertStatus.RESOLVED, str(payload.outcome))
            state = AlertState(alert, ends=(ended,))
        case AlertEscalated():
            state = AlertState(alert, escalations=(Escalated(pos, payload),))
        case AlertReleased():
            state = AlertState(alert, releases=(Released(pos, payload),))
        case AlertActed():
            state = AlertState(alert, actions=(Acted(pos, payload),))
        case _:
            ended = Ended(pos, AlertStatus.CANCELLED, str(payload.reason))
            state = AlertState(alert, ends=(ended,))
    return _erase(state)


def join(a: AlertState, b: AlertState) -> AlertState:
    """The union of two states of the same alert (commutative, idempotent).

    A tombstone signed by the alert's origin is the top of the order: the
    joined state keeps only the tombstones, whatever arrived before or after.
    """
    if a.alert != b.alert:
        raise ValueError("cannot join states of two different alerts")
    tombstones = _union(a.tombstones, b.tombstones)
    if a.erased is not None or b.erased is not None:
        return AlertState(a.alert, tombstones=tombstones, erased=a.erased or b.erased)
    raised = a.raised if a.raised is not None else b.raised
    if a.raised is not None and b.raised is not None and b.raised.pos < a.raised.pos:
        raised = b.raised  # two raises cannot share an id; keep the choice deterministic
    return _erase(
        AlertState(
            a.alert,
            raised=raised,
            updates=_union(a.updates, b.updates),
            claims=_union(a.claims, b.claims),
            ends=_union(a.ends, b.ends),
            escalations=_union(a.escalations, b.escalations),
            releases=_union(a.releases, b.releases),
            actions=_union(a.actions, b.actions),
            shares=_union(a.shares, b.shares),
            pledges=_union(a.pledges, b.pledges),
            feedback=_union(a.feedback, b.feedback),
            tombstones=tombstones,
        )
    )


def _erase(state: AlertState) -> AlertState:
    """The state with everything but its tombstones dropped, if its origin deleted it."""
    if state.raised is None or state.erased is not None:
        return state
    origin = state.raised.pos.org
    if not any(t.pos.org == origin for t in state.tombstones):
        return state
    return AlertState(state.alert, tombstones=state.tombstones, erased=origin)


F = TypeVar(
    "F", Updated, Claimed, Ended, Escalated, Released, Acted, Shared, Pledged, Feedback, Tombstone
)


def _union(x: tuple[F, ...], y: tuple[F, ...]) -> tuple[F, ...]:
    if not y:
        return x
    if not x:
        return y
    merged: dict[Pos, F] = {}
    for f in itertools.chain(x, y):
        merged[f.pos] = f
    return tuple(merged[p] for p in sorted(merged))


class Fields(msgspec.Struct, frozen=True):
    """The routable fields of an alert that updates may change."""

    subdivision: str | None
    incident_types: list[IncidentType]
    severity: Severity
    urgency: Urgency
    asks: list[Ask]
    languages: list[str]


_UPDATABLE: Final = tuple(Fields.__struct_fields__)


def view(state: AlertState) -> AlertView | None:
    """What the alert is now, or None while its raise has not arrived."""
    if state.raised is None:
        return None
    origin = state.raised.pos.org
    body = state.raised.body
    fields = Fields(**{name: getattr(body, name) for name in _UPDATABLE})
    for upd in state.updates:  # sorted by position: later updates win per field
        if upd.pos.org != origin:
            continue  # only the origin may change its alert
        changes = {n: v for n in _UPDATABLE if (v := getattr(upd.body, n)) is not None}
        sub = changes.get("subdivision")
        if isinstance(sub, str) and not sub.startswith(body.country + "-"):
            del changes["subdivision"]
        fields = msgspec.structs.replace(fields, **changes)
    claimed_by = sorted({c.pos.org for c in state.claims})
    claimants = active_claimants(state)
    end = _first_end(state, origin, set(claimed_by))
    level, targets, since, cause = _level(state)
    if end is not None:
        status = end.status
    elif claimants:
        status = AlertStatus.CLAIMED
    else:
        status = AlertStatus.ESCALATED if level else AlertStatus.OPEN
    updated_ms = max(p.wall_ms for p in state.positions())
    return AlertView(
        alert=state.alert,
        origin=origin,
        status=status,
        country=body.country,
        subdivision=fields.subdivision,
        incident_types=list(fields.incident_types),
        severity=fields.severity,
        urgency=fields.urgency,
        asks=list(fields.asks),
        languages=list(fields.languages),
        pseudonym=body.pseudonym,
        exercise=body.exercise,
        raised_ms=state.raised.pos.wall_ms,
        updated_ms=updated_ms,
        claimants=claimants,
        ended_by=end.pos.org if end is not None else None,
        end_code=end.code if end is not None else None,
        level=level,
        targets=targets,
        level_since_ms=since if level else state.raised.pos.wall_ms,
        level_cause=cause,
        handover_to=_handover(state, claimants),
        claimed_by=claimed_by,
        first_claim_ms=min((c.pos.wall_ms for c in state.claims), default=None),
        actions=[(a.pos.org, str(a.body.action), str(a.body.channel)) for a in state.actions],
        first_action_ms=min((a.pos.wall_ms for a in state.actions), default=None),
        sealed_to=sorted({*state.raised.sealed_to, *(o for s in state.shares for o in s.to)}),
        audience=list(state.raised.audience),
        pledges=[
            (p.pos.org, str(p.body.action), p.body.by_ms, p.pos.wall_ms) for p in state.pledges
        ],
        results=[(a.pos.org, str(a.body.action), str(a.body.result)) for a in state.actions],
        feedback=[
            (str(f.body.feedback), f.pos.wall_ms) for f in state.feedback if f.pos.org == origin
        ],
    )


def _recipients(blob: bytes | None) -> tuple[str, ...]:
    """Recipients of a sealed blob (already checked on receipt; a bad one counts none)."""
    if blob is None:
        return ()
    try:
        return tuple(decode_sealed(blob).recipients())
    except ProtocolError:
        return ()


def active_claimants(state: AlertState) -> list[str]:
    """Members whose claim stands: not released since, and not lapsed.

    A claim with `until_ms` lapses once an escalation with cause `claim_lapsed`
    was signed at or after that time (nodes publish one only then), so whether a
    claim stands depends on the facts alone, never on the reader's clock.
    Concurrent claims by several members all stand, and all are shown.
    """
    return sorted({c.pos.org for c in _standing(state)})


def claim_expiries(state: AlertState) -> dict[str, int | None]:
    """When each standing claim runs out (None: it does not), by claimant.

    A member with several standing claims holds the alert until the last ends.
    """
    until: dict[str, int | None] = {}
    for claim in _standing(state):
        org, new = claim.pos.org, claim.body.until_ms
        mine = until.get(org, 0)
        until[org] = None if mine is None or new is None else max(mine, new)
    return until


def _standing(state: AlertState) -> list[Claimed]:
    lapses = [
        e.pos.wall_ms for e in state.escalations if e.body.cause is EscalationCause.CLAIM_LAPSED
    ]
    standing = []
    for claim in state.claims:
        org = claim.pos.org
        released = any(
            r.pos.org == org and (r.pos.epoch, r.pos.seq) > (claim.pos.epoch, claim.pos.seq)
            for r in state.releases
        )
        until = claim.body.until_ms
        lapsed = until is not None and any(at >= until for at in lapses)
        if not released and not lapsed:
            standing.append(claim)
    return standing


def _level(state: AlertState) -> tuple[int, list[str], int, EscalationCause | None]:
    if not state.escalations:
        return 0, [], 0, None
    top = max(e.body.level for e in state.escalations)
    at_top = [e for e in state.escalations if e.body.level == top]
    targets = {t for e in at_top for t in e.body.targets}
    first = min(at_top, key=lambda e: (e.pos.wall_ms, e.pos.id))
    return top, sorted(targets), first.pos.wall_ms, first.body.cause


def _handover(state: AlertState, claimants: list[str]) -> str | None:
    """The member named by the latest hand-over, while nobody holds the alert."""
    if claimants or not state.releases:
        return None
    handed = [r for r in state.releases if r.body.handover_to is not None]
    latest = max(handed, key=lambda r: (r.pos.wall_ms, r.pos.id), default=None)
    return latest.body.handover_to if latest is not None else None


def _first_end(state: AlertState, origin: str, claimants: set[str]) -> Ended | None:
    """The earliest authorised ending: the origin resolves or cancels, a claimant resolves."""
    allowed = [
        e
        for e in state.ends
        if e.pos.org == origin or (e.status is AlertStatus.RESOLVED and e.pos.org in claimants)
    ]
    return min(allowed, key=lambda e: (e.pos.wall_ms, e.pos.id), default=None)


def encode_state(state: AlertState) -> bytes:
    """Bytes of a state for the local store (not a wire format)."""
    return _STATE_ENCODER.encode(state)


def decode_state(data: bytes) -> AlertState:
    """A state read back from the local store."""
    return _STATE_DECODER.decode(data)


def states_equal(states: Iterable[AlertState]) -> bool:
    """True when all given states are identical (used by tests and checks)."""
    encoded = {encode_state(s) for s in states}
    return len(encoded) <= 1


_STATE_ENCODER: Final = msgspec.msgpack.Encoder()
_STATE_DECODER: Final = msgspec.msgpack.Decoder(AlertState)
