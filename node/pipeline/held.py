"""Verified events waiting to be placed: behind a gap in their chain, or until the time
they claim is near.

Owns the in-memory side of the `pending` table: one event per chain position
(a second, different one at the same position is fork evidence, never held),
bounded per origin by the roster's limits (events and payload bytes), so one
member cannot fill every node's memory and disk with events no one can place.
"""

from __future__ import annotations

import collections

from rrn.protocol.envelope import Event
from rrn.protocol.errors import ProtocolError, Reason
from rrn.protocol.policy import MemberLimits

__all__ = ["Held"]

ChainKey = tuple[str, int]


class Held:
    """Events waiting for their predecessors or their time, by chain and seq."""

    def __init__(self) -> None:
        self._chains: dict[ChainKey, dict[int, Event]] = collections.defaultdict(dict)
        #: Events and payload bytes held per origin.
        self._by_origin: collections.Counter[str] = collections.Counter()
        self._bytes: collections.Counter[str] = collections.Counter()

    @property
    def count(self) -> int:
        """Events held in all."""
        return sum(self._by_origin.values())

    def of(self, origin: str) -> tuple[int, int]:
        """Events and payload bytes held for one origin."""
        return self._by_origin[origin], self._bytes[origin]

    def add(self, event: Event, limits: MemberLimits) -> Event | None:
        """Hold a new event; the other event held at its position, if there is one.

        An event held already (same id) is a no-op. When another event is held at
        the same position, nothing is held and that event is returned: the two
        are fork evidence. Raises ProtocolError (gap_overflow) when the origin
        holds its limit of events or bytes.
        """
        h = event.header
        other = self._chains[h.origin, h.epoch].get(h.seq)
        if other is not None:
            return None if other.id == event.id else other
        count, size = self.of(h.origin)
        if count + 1 > limits.held_events or size + h.payload_len > limits.held_bytes:
            raise ProtocolError(
                f"{h.origin} has {count} events held behind gaps (limit {limits.held_events} "
                f"events, {limits.held_bytes} bytes)",
                Reason.GAP_OVERFLOW,
            )
        self.restore(event)
        return None

    def restore(self, event: Event) -> bool:
        """Hold an event read back from the store; False if its position is taken."""
        h = event.header
        chain = self._chains[h.origin, h.epoch]
        if h.seq in chain:
            return False
        chain[h.seq] = event
        self._by_origin[h.origin] += 1
        self._bytes[h.origin] += h.payload_len
        return True

    def holds(self, key: ChainKey) -> bool:
        """Whether anything waits in this chain."""
        return bool(self._chains.get(key))

    def at(self, key: ChainKey, seq: int) -> Event | None:
        """The event waiting at one position, if any."""
        chain = self._chains.get(key)
        return None if chain is None else chain.get(seq)

    def chains(self) -> list[ChainKey]:
        """The chains in which something waits."""
        return [key for key, chain in self._chains.items() if chain]

    def upto(self, key: ChainKey, after: int) -> int:
        """The last seq of the unbroken run held right after `after` (`after` if none)."""
        chain = self._chains.get(key, {})
        while after + 1 in chain:
            after += 1
        return after

    def take(self, key: ChainKey, seq: int) -> Event | None:
        """Remove and return what waits at one position."""
        chain = self._chains.get(key)
        event = None if chain is None else chain.pop(seq, None)
        if event is not None:
            self._removed([event])
        return event

    def take_through(self, key: ChainKey, seq: int) -> list[Event]:
        """Remove and return what waits at or before `seq` (it can no longer be placed)."""
        chain = self._chains.get(key, {})
        return self._removed([chain.pop(s) for s in [s for s in chain if s <= seq]])

    def take_all(self, key: ChainKey) -> list[Event]:
        """Remove and return everything waiting in one chain."""
        return self._removed(list(self._chains.pop(key, {}).values()))

    def _removed(self, events: list[Event]) -> list[Event]:
        for event in events:
            h = event.header
            self._by_origin[h.origin] -= 1
            self._bytes[h.origin] -= h.payload_len
        return events
