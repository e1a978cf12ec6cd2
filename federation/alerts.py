"""Alert state: a join of the facts every node holds, and the view derived from it.

Owns how alert events combine. The state of an alert is the set of facts the
node has seen about it (the raise, updates, claims, endings); merging two states
is set union, so every order of arrival gives the same state on every node. What
the alert *is* (status, effective fields, claimants) is a pure function of that
set, `view` (federation/alert_view.py), which also applies the authorisation
rules. Pure; imports protocol only.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

import msgspec

from rrn.federation.facts import (
    CollectiveFact,
    PlanFact,
    PlanSlot,
    Pos,
    collective_fact,
)
from rrn.protocol.alerts import (
    AlertActed,
    AlertCancelled,
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
)
from rrn.protocol.collective import (
    CollectiveJoined,
    CollectiveProposed,
    CollectiveSigned,
    CollectiveWithdrawn,
)
from rrn.protocol.envelope import Header
from rrn.protocol.errors import ProtocolError
from rrn.protocol.kinds import AlertPayload
from rrn.protocol.sealing import decode_sealed

__all__ = [
    "OPEN_STATUSES",
    "AlertState",
    "AlertStatus",
    "CollectiveFact",
    "PlanFact",
    "PlanSlot",
    "Pos",
    "Tombstone",
    "alert_of",
    "decode_state",
    "encode_state",
    "fact",
    "join",
    "recipients",
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


class Raised(msgspec.Struct, array_like=True, frozen=True, gc=False):
    pos: Pos
    body: AlertRaised  # without its sealed blob, which stays in the event only
    sealed_to: tuple[str, ...] = ()
    #: The members the raise was sealed to as a whole (empty: the whole network).
    audience: tuple[str, ...] = ()
    #: For the alert of a missed check-in: its plan and slot (its raise is made
    #: from the plan; `pos` is the plan's origin and chain position at the deadline).
    slot: PlanSlot | None = None


class Updated(msgspec.Struct, array_like=True, frozen=True, gc=False):
    pos: Pos
    body: AlertUpdated


class Claimed(msgspec.Struct, array_like=True, frozen=True, gc=False):
    pos: Pos
    body: AlertClaimed


class Escalated(msgspec.Struct, array_like=True, frozen=True, gc=False):
    pos: Pos
    body: AlertEscalated


class Released(msgspec.Struct, array_like=True, frozen=True, gc=False):
    pos: Pos
    body: AlertReleased


class Acted(msgspec.Struct, array_like=True, frozen=True, gc=False):
    pos: Pos
    body: AlertActed


class Shared(msgspec.Struct, array_like=True, frozen=True, gc=False):
    pos: Pos
    to: tuple[str, ...]  # the recipients of the new blob (the blob stays in the event)


class Pledged(msgspec.Struct, array_like=True, frozen=True, gc=False):
    pos: Pos
    body: AlertPledged


class Feedback(msgspec.Struct, array_like=True, frozen=True, gc=False):
    pos: Pos
    body: AlertFeedback


class Tombstone(msgspec.Struct, array_like=True, frozen=True, gc=False):
    pos: Pos
    body: AlertTombstoned


class Ended(msgspec.Struct, array_like=True, frozen=True, gc=False):
    pos: Pos
    status: AlertStatus  # RESOLVED or CANCELLED
    code: str  # the outcome or the cancel reason


class AlertState(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """Everything known about one alert; merge with `join`.

    This and its parts are immutable and without cycles, so the garbage collector
    does not track them (`gc=False`): a node catching up holds thousands, and each
    full pass of the collector walked them all (federation/alert_view.py)."""

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
    #: A check-in plan's own state holds the plan (and nothing is viewed of it).
    plan: PlanFact | None = None
    #: `checkin.missed` events for this alert's slot, whoever signed them.
    misses: tuple[Pos, ...] = ()
    #: Check-ins for this alert's slot, with the code each gave ("" for none).
    checkins: tuple[tuple[Pos, str], ...] = ()
    #: `checkin.ended` events of the plan.
    plan_ends: tuple[Pos, ...] = ()
    #: Collective proposals on the alert, and their joins, withdrawals, signatures.
    collective: tuple[CollectiveFact, ...] = ()

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
        found += [self.plan.pos] if self.plan is not None else []
        found += [*self.misses, *(p for p, _ in self.checkins), *self.plan_ends]
        found += [c.pos for c in self.collective]
        return found


def alert_of(header: Header, eid: bytes, payload: AlertPayload) -> bytes:
    """The id of the alert an alert event belongs to."""
    return eid if isinstance(payload, AlertRaised) else payload.alert


def fact(
    header: Header, eid: bytes, payload: AlertPayload, audience: tuple[str, ...] = ()
) -> AlertState:
    """The state holding just this one event (`audience`: whom it was sealed to whole)."""
    pos = Pos(header.origin, header.epoch, header.seq, header.wall_ms, eid)
    alert = alert_of(header, eid, payload)
    wrap = _FACTS.get(type(payload))
    if wrap is not None:  # a fact kept as it came, in the state's field for its kind
        field, make = wrap
        return _erase(msgspec.structs.replace(AlertState(alert), **{field: (make(pos, payload),)}))
    match payload:
        case AlertRaised():
            to = recipients(payload.sealed)
            body = msgspec.structs.replace(payload, sealed=None)
            state = AlertState(alert, raised=Raised(pos, body, to, audience))
        case AlertShared():
            state = AlertState(alert, shares=(Shared(pos, recipients(payload.sealed)),))
        case CollectiveProposed() | CollectiveJoined() | CollectiveWithdrawn() | CollectiveSigned():
            to = recipients(payload.sealed) if isinstance(payload, CollectiveProposed) else ()
            state = AlertState(alert, collective=(collective_fact(pos, eid, payload, to),))
        case AlertResolved():
            ended = Ended(pos, AlertStatus.RESOLVED, str(payload.outcome))
            state = AlertState(alert, ends=(ended,))
        case _:
            assert isinstance(payload, AlertCancelled)
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
            plan=a.plan if a.plan is not None else b.plan,
            misses=_union_pos(a.misses, b.misses),
            checkins=tuple(sorted({*a.checkins, *b.checkins})),
            plan_ends=_union_pos(a.plan_ends, b.plan_ends),
            collective=_union(a.collective, b.collective),
        )
    )


def _union_pos(x: tuple[Pos, ...], y: tuple[Pos, ...]) -> tuple[Pos, ...]:
    return tuple(sorted({*x, *y})) if y else x


def _erase(state: AlertState) -> AlertState:
    """The state with everything but its tombstones dropped, if its origin deleted it
    (the origin of an alert, or of a check-in plan)."""
    if state.erased is not None:
        return state
    if state.raised is not None:
        origin = state.raised.pos.org
    elif state.plan is not None:
        origin = state.plan.pos.org
    else:
        return state
    if not any(t.pos.org == origin for t in state.tombstones):
        return state
    return AlertState(state.alert, tombstones=state.tombstones, erased=origin)


F = TypeVar(
    "F",
    Updated,
    Claimed,
    Ended,
    Escalated,
    Released,
    Acted,
    Shared,
    Pledged,
    Feedback,
    Tombstone,
    CollectiveFact,
)
#: Alert facts kept as they came: the state's field for each, and its wrapper.
_FACTS: Final[dict[type, tuple[str, Callable[[Pos, Any], object]]]] = {
    AlertUpdated: ("updates", Updated),
    AlertClaimed: ("claims", Claimed),
    AlertEscalated: ("escalations", Escalated),
    AlertReleased: ("releases", Released),
    AlertActed: ("actions", Acted),
    AlertPledged: ("pledges", Pledged),
    AlertFeedback: ("feedback", Feedback),
    AlertTombstoned: ("tombstones", Tombstone),
}


def _union(x: tuple[F, ...], y: tuple[F, ...]) -> tuple[F, ...]:
    if not y:
        return x
    if not x:
        return y
    merged: dict[Pos, F] = {}
    for f in itertools.chain(x, y):
        merged[f.pos] = f
    return tuple(merged[p] for p in sorted(merged))


def recipients(blob: bytes | None) -> tuple[str, ...]:
    """Recipients of a sealed blob (already checked on receipt; a bad one counts none)."""
    if blob is None:
        return ()
    try:
        return tuple(decode_sealed(blob).recipients())
    except ProtocolError:
        return ()


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
