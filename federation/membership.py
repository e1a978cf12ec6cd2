"""Roster proposals and approvals seen in the chains, and when one becomes valid.

Owns the assembly of a roster certificate from `roster.proposed` and
`roster.approved` events: approvals are signatures that prove themselves, so
they count wherever they come from (a newcomer's proof of possession usually
arrives inside an existing member's event). A proposal for version N+1 becomes
the roster as soon as `verify_next` accepts it with the approvals collected.
Every node applies the same rule to the same events, so all adopt the same
version. Pure; time plays no part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rrn.federation.roster import verify_next
from rrn.protocol.errors import FederationError, ProtocolError
from rrn.protocol.roster import Approval, Roster, RosterCert, decode_roster, roster_id

__all__ = ["Pending", "Proposals"]


@dataclass
class Pending:
    """What is known about one proposed roster."""

    roster_id: bytes
    roster_bytes: bytes | None = None
    approvals: dict[tuple[str, int, bytes], Approval] = field(default_factory=dict)
    proposed_by: str | None = None
    #: Why it is not (yet) valid, from the last check.
    problem: str | None = None

    version: int | None = None


class Proposals:
    """Pending roster changes on top of the current roster."""

    def __init__(self, current: Roster, current_bytes: bytes) -> None:
        self.current = current
        self.current_bytes = current_bytes
        self._pending: dict[bytes, Pending] = {}

    def pending(self) -> list[Pending]:
        """Proposals for the next version, oldest id first."""
        return sorted(
            (p for p in self._pending.values() if p.version == self.current.version + 1),
            key=lambda p: p.roster_id,
        )

    def get(self, rid: bytes) -> Pending | None:
        return self._pending.get(rid)

    def propose(self, roster_bytes: bytes, approvals: list[Approval], by: str) -> bytes:
        """Record a proposal (idempotent); its roster id."""
        rid = roster_id(roster_bytes)
        entry = self._pending.setdefault(rid, Pending(rid))
        if entry.roster_bytes is None:
            entry.roster_bytes = roster_bytes
            entry.version = decode_roster(roster_bytes).version
            entry.proposed_by = by
        self.approve(rid, approvals)
        return rid

    def approve(self, rid: bytes, approvals: list[Approval]) -> None:
        """Record approvals of a roster id (before or after its proposal arrives)."""
        entry = self._pending.setdefault(rid, Pending(rid))
        for a in approvals:
            entry.approvals.setdefault((a.org, a.epoch, a.sig), a)

    def ready(self) -> RosterCert | None:
        """A certificate for the next version if some proposal is now valid."""
        valid: list[RosterCert] = []
        for entry in self.pending():
            assert entry.roster_bytes is not None
            cert = RosterCert(roster=entry.roster_bytes, approvals=list(entry.approvals.values()))
            try:
                verify_next(self.current, self.current_bytes, cert)
            except (FederationError, ProtocolError) as exc:
                entry.problem = str(exc)
                continue
            entry.problem = None
            valid.append(cert)
        # Two valid proposals for one version need a member that approved both:
        # the threshold makes that impossible among honest members. If it happens
        # anyway, every node picks the same one.
        return valid[0] if valid else None

    def advance(self, roster: Roster, roster_bytes: bytes) -> None:
        """Move on to a newly adopted roster; forget proposals it made obsolete."""
        self.current, self.current_bytes = roster, roster_bytes
        self._pending = {
            rid: p
            for rid, p in self._pending.items()
            if p.version is None or p.version > roster.version
        }
