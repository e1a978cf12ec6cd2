"""Roster changes on a running node: from chain events to an adopted version.

Owns the node side of membership. It reads `roster.proposed` and
`roster.approved` events as they are committed (and, at start, from the store),
hands them to federation/membership.py, and when a proposal becomes valid asks
the ingest pipeline to adopt it, in order with the events, then tells the daemon
so it can regenerate and reload the nats-server configuration.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from rrn.federation.membership import Pending, Proposals
from rrn.federation.roster import verify_next
from rrn.node.pipeline.ingest import Ingestor
from rrn.node.store.db import Store
from rrn.node.store.network import Network, verify_chain
from rrn.node.store.rows import RosterRow
from rrn.protocol.envelope import Event
from rrn.protocol.errors import PayloadError, ProtocolError
from rrn.protocol.kinds import Kind, decode_payload
from rrn.protocol.membership import RosterApproved, RosterProposed
from rrn.protocol.roster import RosterCert, decode_cert, decode_roster, encode_cert, roster_id

__all__ = ["RosterKeeper"]

logger = logging.getLogger(__name__)

#: Told about each adopted version and its certificate.
Adopted = Callable[[Network, bytes], Awaitable[None]]
_KINDS = (str(Kind.ROSTER_PROPOSED), str(Kind.ROSTER_APPROVED))


class RosterKeeper:
    """Pending roster changes of one node, and their adoption."""

    def __init__(self, *, ingestor: Ingestor, store: Store, on_adopted: Adopted) -> None:
        self._ingestor = ingestor
        self._store = store
        self._on_adopted = on_adopted
        network = ingestor.network
        self.proposals = Proposals(network.roster, network.roster_bytes)
        self._changed = asyncio.Event()
        self._adopting = asyncio.Lock()

    async def run(self) -> None:
        """Pick up what the store holds, then adopt versions as they become valid.

        Adoption goes through the ingest pipeline, so it runs here, never inside
        the pipeline's own post-commit hook (that would wait on itself).
        """
        for event in await self._store.events_of_kinds(_KINDS):
            self._note(event)
        while True:
            await self._maybe_adopt()
            await self._changed.wait()
            self._changed.clear()

    async def committed(self, events: list[tuple[Event, str]]) -> None:
        """Look at newly committed events for roster changes (post-commit hook)."""
        if any(e.header.kind in _KINDS and self._note(e) for e, _ in events):
            self._changed.set()

    def pending(self) -> list[Pending]:
        """Proposals for the next version."""
        return self.proposals.pending()

    def _note(self, event: Event) -> bool:
        if event.payload is None:
            return False
        try:
            payload = decode_payload(event.header.kind, event.payload)
        except (PayloadError, ProtocolError):
            return False
        if isinstance(payload, RosterProposed):
            self.proposals.propose(payload.roster, list(payload.approvals), by=event.header.origin)
            return True
        if isinstance(payload, RosterApproved):
            self.proposals.approve(payload.roster, list(payload.approvals))
            return True
        return False

    async def offered(self, data: bytes) -> None:
        """A roster certificate a peer says it adopted: adopt it if it is the next valid one.

        Raises FederationError/ProtocolError (with a reason) if it is not valid.
        """
        cert = decode_cert(data)
        roster = decode_roster(cert.roster)
        current = self._ingestor.network
        if roster.version != current.roster_version + 1:
            return  # not the next one: chain sync brings what leads up to it
        verify_next(current.roster, current.roster_bytes, cert)
        await self._adopt(cert)

    async def _maybe_adopt(self) -> None:
        while (cert := self.proposals.ready()) is not None:
            await self._adopt(cert)

    async def _adopt(self, cert: RosterCert) -> None:
        async with self._adopting:
            await self._adopt_locked(cert)

    async def _adopt_locked(self, cert: RosterCert) -> None:
        if decode_roster(cert.roster).version != self._ingestor.network.roster_version + 1:
            return  # adopted meanwhile, from another path
        rows = await self._store.rosters()
        version = rows[-1].version + 1
        row = RosterRow(version, roster_id(cert.roster), cert.roster, encode_cert(cert))
        network = verify_chain([*rows, row])
        await self._ingestor.adopt(network, [row])
        self.proposals.advance(network.roster, network.roster_bytes)
        logger.info(
            "roster version %d adopted: %d member(s), threshold %d",
            version,
            len(network.roster.members),
            network.roster.threshold,
        )
        await self._on_adopted(self._ingestor.network, row.cert)  # with the key rotations
