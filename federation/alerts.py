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

from protocol.alerts import (
    AlertClaimed,
    AlertRaised,
    AlertResolved,
    AlertUpdated,
    Ask,
    IncidentType,
    Severity,
    Urgency,
)
from protocol.envelope import Header
from protocol.kinds import AlertPayload

__all__ = [
    "AlertState",
    "AlertStatus",
    "AlertView",
    "alert_of",
    "decode_state",
    "encode_state",
    "fact",
    "join",
    "view",
]


class AlertStatus(enum.StrEnum):
    """Where an alert is in its life cycle."""

    OPEN = "open"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


class Pos(msgspec.Struct, array_like=True, frozen=True, order=True):
    """Where a fact came from: its origin's chain position, then its claimed time and id."""

    org: str
    epoch: int
    seq: int
    wall_ms: int
    id: bytes


class Raised(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    body: AlertRaised


class Updated(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    body: AlertUpdated


class Claimed(msgspec.Struct, array_like=True, frozen=True):
    pos: Pos
    body: AlertClaimed


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

    def positions(self) -> list[Pos]:
        """Where every fact in this state came from."""
        found = [self.raised.pos] if self.raised is not None else []
        found += [u.pos for u in self.updates]
        found += [c.pos for c in self.claims]
        found += [e.pos for e in self.ends]
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


def alert_of(header: Header, eid: bytes, payload: AlertPayload) -> bytes:
    """The id of the alert an alert event belongs to."""
    return eid if isinstance(payload, AlertRaised) else payload.alert


def fact(header: Header, eid: bytes, payload: AlertPayload) -> AlertState:
    """The state holding just this one event."""
    pos = Pos(header.origin, header.epoch, header.seq, header.wall_ms, eid)
    alert = alert_of(header, eid, payload)
    if isinstance(payload, AlertRaised):
        return AlertState(alert, raised=Raised(pos, payload))
    if isinstance(payload, AlertUpdated):
        return AlertState(alert, updates=(Updated(pos, payload),))
    if isinstance(payload, AlertClaimed):
        return AlertState(alert, claims=(Claimed(pos, payload),))
    if isinstance(payload, AlertResolved):
        return AlertState(alert, ends=(Ended(pos, AlertStatus.RESOLVED, str(payload.outcome)),))
    return AlertState(alert, ends=(Ended(pos, AlertStatus.CANCELLED, str(payload.reason)),))


def join(a: AlertState, b: AlertState) -> AlertState:
    """The union of two states of the same alert (commutative, idempotent)."""
    if a.alert != b.alert:
        raise ValueError("cannot join states of two different alerts")
    raised = a.raised if a.raised is not None else b.raised
    if a.raised is not None and b.raised is not None and b.raised.pos < a.raised.pos:
        raised = b.raised  # two raises cannot share an id; keep the choice deterministic
    return AlertState(
        a.alert,
        raised=raised,
        updates=_union(a.updates, b.updates),
        claims=_union(a.claims, b.claims),
        ends=_union(a.ends, b.ends),
    )


F = TypeVar("F", Updated, Claimed, Ended)


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
    claimants = sorted({c.pos.org for c in state.claims})
    end = _first_end(state, origin, set(claimants))
    if end is not None:
        status = end.status
    else:
        status = AlertStatus.CLAIMED if claimants else AlertStatus.OPEN
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
    )


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
