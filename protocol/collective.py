"""Collective actions: conditional pledges that bind only when enough supporters join.

Owns the payloads of the collective kinds and their field rules (docs/PROTOCOL.md
4.9). Pure. A member proposes a collective action on an alert's ask (a joint letter,
a joint visit, a public statement), with a threshold per roster role, a deadline and
who may join; supporters join with a signed pledge that binds them only if the
threshold is met by the deadline; joiners then sign the final text's hash. Every
event names its alert, so it travels and is sealed like the alert's own events.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from rrn.protocol.alerts import SealedBlob
from rrn.protocol.roster import Role
from rrn.protocol.types import Hash32, NonNeg, OrgId
from rrn.protocol.vocabulary import ActionType, Channel

__all__ = [
    "CollectiveJoined",
    "CollectiveProposed",
    "CollectiveSigned",
    "CollectiveWithdrawn",
    "Quota",
    "check_proposal",
]


class Quota(msgspec.Struct, frozen=True, kw_only=True):
    """At least `count` joiners with roster role `role`."""

    role: Role
    count: Annotated[int, Meta(ge=1, le=64)]


class CollectiveProposed(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A collective action on an alert. Its event id is the proposal id."""

    alert: Hash32
    action: ActionType
    channel: Channel = Channel.PRIVATE
    #: Met when every quota is (each joiner counts for each of its roles).
    threshold: Annotated[list[Quota], Meta(min_length=1, max_length=5)]
    #: Joins signed after this count for nothing.
    deadline_ms: NonNeg
    #: Who may join: members with one of these roles, or these members. Both empty:
    #: members with a role the threshold names.
    roles: Annotated[list[Role], Meta(max_length=5)] = []
    members: Annotated[list[OrgId], Meta(max_length=64)] = []
    #: The text or its summary, sealed (protocol/sealing.py) to the alert's audience.
    sealed: SealedBlob | None = None


class CollectiveJoined(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A conditional pledge: the signer carries out the action if the threshold is met."""

    alert: Hash32
    proposal: Hash32


class CollectiveWithdrawn(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The signer withdraws its join (before the threshold: as if it never joined)."""

    alert: Hash32
    proposal: Hash32


class CollectiveSigned(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A committed joiner signs a version of the joint text: SHA-256 of its bytes."""

    alert: Hash32
    proposal: Hash32
    text: Hash32


def check_proposal(p: CollectiveProposed) -> str | None:
    """What makes a proposal malformed, if anything."""
    roles = [q.role for q in p.threshold]
    if len(set(roles)) != len(roles):
        return "threshold names a role twice"
    if len(set(p.roles)) != len(p.roles) or len(set(p.members)) != len(p.members):
        return "roles and members must not repeat"
    return None
