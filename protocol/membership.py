"""Roster changes carried as chain events: proposals and approvals.

Owns the payloads of `roster.proposed` and `roster.approved`. An approval is a
signature over the proposed roster's bytes (protocol/roster.py) and proves
itself, so any member's event may carry approvals collected from others, such as
a newcomer's proof of possession of its new key. Pure.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from protocol.roster import MAX_MEMBERS, Approval
from protocol.types import Hash32

__all__ = ["RosterApproved", "RosterProposed"]

Approvals = Annotated[list[Approval], Meta(max_length=2 * MAX_MEMBERS)]


class RosterProposed(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The full bytes of a proposed next roster version, with any approvals already made."""

    roster: Annotated[bytes, Meta(max_length=60 * 1024)]
    approvals: Approvals = []


class RosterApproved(msgspec.Struct, frozen=True, kw_only=True):
    """Approvals of the proposed roster with this roster id."""

    roster: Hash32
    approvals: Annotated[list[Approval], Meta(min_length=1, max_length=2 * MAX_MEMBERS)]
