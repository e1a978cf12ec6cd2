"""The facts an alert state keeps of check-ins and collective actions, and where any
fact came from.

Owns `Pos` (an event's place: origin, chain position, claimed time, id) and the
shapes of the check-in plan and collective-action facts (federation/checkins.py,
federation/collective.py read them); federation/alerts.py holds them in its
states. Pure.
"""

from __future__ import annotations

from typing import Final

import msgspec

from rrn.protocol.checkins import CheckinPlanned
from rrn.protocol.collective import (
    CollectiveJoined,
    CollectiveProposed,
    CollectiveSigned,
    CollectiveWithdrawn,
)

__all__ = ["CollectiveFact", "PlanFact", "PlanSlot", "Pos", "collective_fact"]


class Pos(msgspec.Struct, array_like=True, frozen=True, order=True):
    """Where a fact came from: its origin's chain position, then its claimed time and id."""

    org: str
    epoch: int
    seq: int
    wall_ms: int
    id: bytes


class PlanSlot(msgspec.Struct, array_like=True, frozen=True):
    """Where the alert of a missed check-in comes from (federation/checkins.py)."""

    plan: bytes
    slot: int
    deadline_ms: int
    codes: tuple[bytes, ...]  # the commitments of the slot's two codes
    duress: bool
    #: When the plan was signed: a slot due before it, or over a year after, raises
    #: nothing (a plan cannot make the others sign misses for the past).
    planned_ms: int = 0


class PlanFact(msgspec.Struct, array_like=True, frozen=True):
    """A check-in plan, without its sealed blobs (they stay in the event)."""

    pos: Pos
    body: CheckinPlanned
    audience: tuple[str, ...]
    sealed_to: tuple[str, ...]


class CollectiveFact(msgspec.Struct, array_like=True, frozen=True):
    """A collective proposal, join, withdrawal or signature (federation/collective.py)."""

    pos: Pos
    kind: str  # proposed, joined, withdrawn, signed
    proposal: bytes
    #: The proposal itself (without its sealed text), for `proposed`.
    proposed: CollectiveProposed | None = None
    #: The signed text's hash, for `signed`.
    text: bytes = b""
    #: Whom the proposal's text was sealed to, for `proposed`.
    sealed_to: tuple[str, ...] = ()
    #: The joiner's roster roles, for an allowed `joined` (set by the rules, never
    #: received: federation/collective.py `judge`).
    roles: tuple[str, ...] = ()


def collective_fact(
    pos: Pos,
    eid: bytes,
    payload: CollectiveProposed | CollectiveJoined | CollectiveWithdrawn | CollectiveSigned,
    recipients: tuple[str, ...],
) -> CollectiveFact:
    """The fact a collective event gives (`recipients`: whom a proposal's text is sealed to)."""
    if isinstance(payload, CollectiveProposed):
        bare = msgspec.structs.replace(payload, sealed=None)
        return CollectiveFact(pos, "proposed", eid, bare, sealed_to=recipients)
    text = payload.text if isinstance(payload, CollectiveSigned) else b""
    return CollectiveFact(pos, _COLLECTIVE_KIND[type(payload)], payload.proposal, text=text)


_COLLECTIVE_KIND: Final = {
    CollectiveJoined: "joined",
    CollectiveWithdrawn: "withdrawn",
    CollectiveSigned: "signed",
}
