"""The alert projection kept by the ingest pipeline: states, views, open counts.

Owns the in-memory side of the `alerts` table: a bounded cache of alert states
(so a batch rarely has to read the store, and never reads a state that an
uncommitted batch is still writing), and the counts behind the open-alert gauge.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Final

from rrn.federation.alert_view import AlertView, view
from rrn.federation.alerts import AlertState, fact, join
from rrn.node.store.db import Store
from rrn.protocol.alerts import AlertRaised, AlertTombstoned
from rrn.protocol.envelope import Event
from rrn.protocol.kinds import AlertPayload, Payload

__all__ = ["Change", "OpenKey", "Projection"]

OpenKey = tuple[str, str, bool]  # severity, urgency, exercise
Change = tuple[AlertState | None, AlertState]  # one alert's state before and after a batch
_CAPACITY: Final = 20_000


def open_key(v: AlertView | None) -> OpenKey | None:
    """The open-alert gauge bucket of an alert, or None if it is not open."""
    if v is None or not v.status.is_open:
        return None
    return (str(v.severity), str(v.urgency), v.exercise)


class Projection:
    """Alert states in memory in front of the store, and open-alert counts."""

    def __init__(self, store: Store, capacity: int = _CAPACITY) -> None:
        self._store = store
        self._capacity = capacity
        self._cache: collections.OrderedDict[bytes, AlertState] = collections.OrderedDict()
        #: Every alert the store has a row for: a miss in the cache that is not in
        #: here needs no read (a new alert, the common case).
        self._stored: set[bytes] = set()
        self.open: collections.Counter[OpenKey] = collections.Counter()

    async def load(self) -> None:
        """Counts of open alerts, and which alerts exist, from the store."""
        self.open = collections.Counter(
            {(s, u, e): n for s, u, e, n in await self._store.open_alert_counts()}
        )
        self._stored = set(await self._store.alert_ids())

    async def state(self, alert: bytes) -> AlertState | None:
        """The current state of one alert, or None if nothing is known of it."""
        return (await self._states({alert})).get(alert)

    async def audience_of(self, payload: Payload) -> tuple[str, ...] | None:
        """The audience of the alert an event is about, if that alert is restricted."""
        if not isinstance(payload, AlertPayload) or isinstance(
            payload, AlertRaised | AlertTombstoned
        ):
            return None
        state = await self.state(payload.alert)
        if state is None or state.raised is None or not state.raised.audience:
            return None
        return state.raised.audience

    @property
    def open_total(self) -> int:
        return sum(self.open.values())

    async def apply(
        self, facts: Iterable[tuple[Event, AlertPayload, tuple[str, ...]]]
    ) -> tuple[dict[bytes, AlertState], dict[bytes, AlertView | None], list[Change]]:
        """Fold alert events into their states.

        Returns the new states and views to store, and each alert's state before
        and after (for the response-time metrics).
        """
        singles = [fact(e.header, e.id, p, to) for e, p, to in facts]
        ids = {s.alert for s in singles}
        states = await self._states(ids)
        old = {a: states.get(a) for a in ids}
        before = {a: open_key(view(states[a])) if a in states else None for a in ids}
        for single in singles:
            known = states.get(single.alert)
            states[single.alert] = single if known is None else join(known, single)
        views: dict[bytes, AlertView | None] = {}
        for alert in ids:
            v = views[alert] = view(states[alert])
            self._count(before[alert], open_key(v))
            self._remember(alert, states[alert])
        return {a: states[a] for a in ids}, views, [(old[a], states[a]) for a in ids]

    def _count(self, old: OpenKey | None, new: OpenKey | None) -> None:
        if old == new:
            return
        if old is not None:
            self.open[old] -= 1
        if new is not None:
            self.open[new] += 1

    async def _states(self, ids: set[bytes]) -> dict[bytes, AlertState]:
        found = {a: self._cache[a] for a in ids if a in self._cache}
        missing = (ids - found.keys()) & self._stored
        if missing:
            found.update(await self._store.alert_states(missing))
        return found

    def _remember(self, alert: bytes, state: AlertState) -> None:
        self._stored.add(alert)
        self._cache[alert] = state
        self._cache.move_to_end(alert)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)

    def rebuild(
        self, events: Iterable[tuple[Event, AlertPayload, tuple[str, ...]]]
    ) -> dict[bytes, AlertState]:
        """Start over from the given (applied) events; the complete set of states."""
        states: dict[bytes, AlertState] = {}
        for event, payload, audience in events:
            single = fact(event.header, event.id, payload, audience)
            known = states.get(single.alert)
            states[single.alert] = single if known is None else join(known, single)
        self._cache.clear()
        self._stored.clear()
        self.open = collections.Counter()
        for alert, state in states.items():
            self._count(None, open_key(view(state)))
            self._remember(alert, state)
        return states
