"""A node restored from a backup signs nothing until its peers confirm its own chain.

Owns that wait. `rrn restore` marks the store (node/ops/backup.py); while the mark
is there, own events are blocked. The node still hears peers and pulls what they
hold of its own chain beyond the copy (sync treats it like any other chain). Each
peer whose heartbeat, heard since the start, claims no more of this node's chain
than the node now holds confirms it; once more than half of the other current
members have, the block lifts and the mark is cleared. A majority, as for roster
changes: a peer that lies cannot lift it alone, and one that is gone cannot hold
it forever.
"""

from __future__ import annotations

import logging

from rrn.node.pipeline.ingest import Ingestor
from rrn.node.store.db import Store
from rrn.protocol.messages import Heartbeat

__all__ = ["RESTORED_META", "Restored"]

logger = logging.getLogger(__name__)

#: The store's meta key `rrn restore` sets (an empty value: cleared).
RESTORED_META = "restored"
_CAUSE = "restored"


class Restored:
    """The wait of a node whose store came back from a backup."""

    def __init__(self, *, ingestor: Ingestor, store: Store) -> None:
        self.ingestor = ingestor
        self.store = store
        self.waiting = False
        self._confirmed: set[str] = set()

    async def load(self) -> None:
        """Block own events if the store was restored and not yet confirmed."""
        if await self.store.get_meta(RESTORED_META):
            self.waiting = True
            self._block()

    def _needed(self) -> int:
        others = [m for m in self.ingestor.network.roster.orgs() if m != self.ingestor.me.org]
        return len(others) // 2 + 1 if others else 0

    def _block(self) -> None:
        self.ingestor.own.block(
            _CAUSE,
            "restored from a backup: signing nothing until peers confirm this node holds "
            f"its whole own chain ({len(self._confirmed)} of {self._needed()} confirmed)",
        )

    async def heard(self, org: str, hb: Heartbeat) -> None:
        """A peer's verified heartbeat: does it hold more of our chain than we do?"""
        if not self.waiting:
            return
        me = self.ingestor.me
        claimed = max(
            (h.seq for h in hb.heads if (h.origin, h.epoch) == (me.org, me.epoch)), default=0
        )
        head = self.ingestor.heads.get((me.org, me.epoch))
        if claimed <= (head.seq if head else 0):
            self._confirmed.add(org)
        else:
            self._confirmed.discard(org)  # it holds more: sync pulls it, then it confirms
        if len(self._confirmed) < self._needed():
            self._block()  # the message says how many so far
            return
        self.waiting = False
        self.ingestor.own.unblock(_CAUSE)
        await self.store.set_meta(RESTORED_META, b"")
        logger.info(
            "restored store confirmed by %s: own events are signed again",
            ", ".join(sorted(self._confirmed)),
        )
