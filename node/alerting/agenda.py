"""When the escalator looks at each open alert: at once when it changed, when its next
moment comes (a step's deadline, a claim's end, an ask's turn), and at every one when
the world changed (liveness, the roster, the declarations), a slice at a time.

Owns what the escalator keeps of an alert between looks: that it is open (its id),
its next moment in a heap keyed by time, and, until it is looked at, the newest state
and view of an alert that changed (of a bounded number: beyond, during a catch-up,
only the id). Nothing else: an alert's state is read from the store when its moment
comes, so memory does not grow with what each alert holds, and a look never walks
the alerts that neither changed nor fell due.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Final

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import AlertState

__all__ = ["Agenda"]

#: Heap entries per alert with a moment, at most, before the stale ones are dropped.
_STALE_FACTOR: Final = 2
#: Changed alerts kept with their state and view until looked at; beyond that (a
#: catch-up before the node acts) only the id is kept and the state read again.
_HELD: Final = 1024


class Agenda:
    """The open alerts, which changed, and when to look at each of the others again."""

    def __init__(self) -> None:
        #: Every open alert this node holds.
        self.open: set[bytes] = set()
        #: Alerts that ended since `take_ended` was last asked.
        self._ended: set[bytes] = set()
        self._changed: dict[bytes, tuple[AlertState, AlertView]] = {}
        #: Alerts that changed beyond `_HELD`: looked at as if due, read from the store.
        self._stale: set[bytes] = set()
        self._next: dict[bytes, int] = {}
        self._queue: list[tuple[int, bytes]] = []
        #: Open alerts still to look at in a look at all of them (popped from the end).
        self._sweep: list[bytes] = []

    def reset(self, ids: Iterable[bytes]) -> None:
        """Every open alert anew (from the store): each is looked at, none is changed."""
        self._ended |= self.open
        self.open = set(ids)
        self._ended -= self.open
        self._changed.clear()
        self._stale.clear()
        self._next.clear()
        self._queue.clear()
        self.look_at_all()

    def changed(self, state: AlertState, v: AlertView | None) -> None:
        """A committed change: an open alert is looked at with this state; one that
        ended is forgotten."""
        alert = state.alert
        if v is None or not v.status.is_open:
            if alert in self.open:
                self.open.discard(alert)
                self._ended.add(alert)
            self._changed.pop(alert, None)
            self._stale.discard(alert)
            self._next.pop(alert, None)
        else:
            self.open.add(alert)
            self._ended.discard(alert)
            if alert in self._changed or len(self._changed) < _HELD:
                self._changed[alert] = (state, v)
                self._stale.discard(alert)
            else:
                self._stale.add(alert)

    def look_at_all(self) -> None:
        """Look at every open alert (the world changed), a slice at a time."""
        self._sweep = list(self.open)

    def look_again(self, alerts: Iterable[bytes]) -> None:
        """Look at these alerts again soon (their states read from the store)."""
        self._stale.update(a for a in alerts if a in self.open and a not in self._changed)

    def at(self, alert: bytes, ms: int | None) -> None:
        """Look at `alert` again at `ms` (None: only when it changes)."""
        if ms is None or alert not in self.open:
            self._next.pop(alert, None)
        elif self._next.get(alert) != ms:
            self._next[alert] = ms
            heapq.heappush(self._queue, (ms, alert))
            if len(self._queue) > _STALE_FACTOR * len(self._next) + 64:
                self._queue = [(t, a) for a, t in self._next.items()]
                heapq.heapify(self._queue)

    def take_changed(self) -> list[tuple[AlertState, AlertView]]:
        """The alerts that changed, each with its newest state and view."""
        found = list(self._changed.values())
        self._changed.clear()
        return found

    def take_due(self, now_ms: int) -> list[bytes]:
        """The alerts whose moment came by `now_ms` and did not change meanwhile, and
        those that changed beyond what is held (their states are to be read)."""
        found, self._stale = self._stale, set()
        while self._queue and self._queue[0][0] <= now_ms:
            at, alert = heapq.heappop(self._queue)
            if self._next.get(alert) == at:
                del self._next[alert]
                if alert not in self._changed:
                    found.add(alert)
        return list(found)

    def take_sweep(self, n: int) -> list[bytes]:
        """Up to `n` more alerts of a look at all, still open and not changed since."""
        part = self._sweep[-n:]
        del self._sweep[-n:]
        return [a for a in part if not self.pending(a)]

    def take_ended(self) -> set[bytes]:
        """The alerts that ended since last asked."""
        found, self._ended = self._ended, set()
        return found

    def pending(self, alert: bytes) -> bool:
        """Whether a newer state of `alert` waits to be looked at (or it ended)."""
        return alert in self._changed or alert in self._stale or alert not in self.open

    @property
    def sweeping(self) -> bool:
        """Whether a look at all is under way."""
        return bool(self._sweep)

    def next_ms(self) -> int | None:
        """When the earliest moment comes (None: none is set)."""
        while self._queue and self._next.get(self._queue[0][1]) != self._queue[0][0]:
            heapq.heappop(self._queue)
        return self._queue[0][0] if self._queue else None
