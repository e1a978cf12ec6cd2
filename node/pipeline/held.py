"""Verified events held behind a gap in their chain, until the events before them come.

Owns the in-memory side of the `pending` table, bounded per chain: a chain's
holds are placed when the gap closes, or dropped when they can no longer fit.
"""

from __future__ import annotations

import collections

from rrn.protocol.envelope import Event
from rrn.protocol.errors import ProtocolError, Reason

__all__ = ["Held"]

ChainKey = tuple[str, int]


class Held:
    """Events waiting for their predecessors, by chain and seq."""

    def __init__(self, limit_per_chain: int) -> None:
        self.limit = limit_per_chain
        self._chains: dict[ChainKey, dict[int, list[Event]]] = collections.defaultdict(dict)
        self.count = 0

    def add(self, event: Event) -> bool:
        """Hold a new event; False if it is held already.

        Raises ProtocolError (gap_overflow) when its chain holds its limit.
        """
        h = event.header
        chain = self._chains[h.origin, h.epoch]
        if any(e.id == event.id for e in chain.get(h.seq, [])):
            return False
        if sum(len(v) for v in chain.values()) >= self.limit:
            raise ProtocolError("too many events held behind a gap", Reason.GAP_OVERFLOW)
        self.restore(event)
        return True

    def restore(self, event: Event) -> None:
        """Hold an event read back from the store (no limit: it was within it)."""
        h = event.header
        self._chains[h.origin, h.epoch].setdefault(h.seq, []).append(event)
        self.count += 1

    def holds(self, key: ChainKey) -> bool:
        """Whether anything waits in this chain."""
        return bool(self._chains.get(key))

    def take(self, key: ChainKey, seq: int) -> list[Event]:
        """Remove and return what waits at one seq."""
        return self._removed(self._chains[key].pop(seq, []))

    def take_through(self, key: ChainKey, seq: int) -> list[Event]:
        """Remove and return what waits at or before `seq` (it can no longer be placed)."""
        chain = self._chains[key]
        return self._removed([e for s in [s for s in chain if s <= seq] for e in chain.pop(s)])

    def take_all(self, key: ChainKey) -> list[Event]:
        """Remove and return everything waiting in one chain."""
        chain = self._chains.pop(key, {})
        return self._removed([e for events in chain.values() for e in events])

    def _removed(self, events: list[Event]) -> list[Event]:
        self.count -= len(events)
        return events
