"""The alert projection kept by the ingest pipeline: states, views, open counts.

Owns the in-memory side of the `alerts` table: a bounded cache of alert states
(so a batch rarely has to read the store, and never reads a state that an
uncommitted batch is still writing), and the counts behind the open-alert gauge.
The cache holds each state encoded (half a kilobyte, decoded in microseconds): as
objects, twenty thousand states are a million containers that every full pass of
the garbage collector walks, stopping the event loop for half a second.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import Final, NamedTuple

from rrn.federation.alert_view import AlertView, derive, view
from rrn.federation.alerts import AlertState, Pos, decode_state, encode_state, fact, join
from rrn.federation.authority import Authority, Refused, authorise
from rrn.federation.checkins import checkin_facts, slot_alerts
from rrn.node.home.clock import Slicer
from rrn.node.pipeline.batch import Change, Work
from rrn.node.pipeline.erasure import erased_payloads
from rrn.node.pipeline.facts import Fact, stored_facts
from rrn.node.pipeline.metrics import AlertStateMetrics
from rrn.node.pipeline.own import Identity
from rrn.node.store.db import Store
from rrn.node.store.writes import Batch
from rrn.protocol.alerts import AlertRaised, AlertTombstoned
from rrn.protocol.checkins import CheckinEnded, CheckinPlanned
from rrn.protocol.kinds import AlertPayload, CheckinPayload, Payload

__all__ = ["Applied", "OpenKey", "Projection"]

OpenKey = tuple[str, str, bool]  # severity, urgency, exercise


class Applied(NamedTuple):
    """What a batch's facts did to the alerts they touch."""

    states: dict[bytes, AlertState]
    views: dict[bytes, AlertView | None]
    changes: list[Change]
    #: Facts the rules refuse now and did not before (newly arrived, or judged anew).
    refused: list[Refused]


_CAPACITY: Final = 20_000
#: A cached state judged: its open-alert bucket, and the facts the rules refuse.
#: (A tuple, not a set: with nothing refused, an entry then holds no container the
#: garbage collector must track.)
Judged = tuple[OpenKey | None, tuple[Pos, ...]]


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
        #: alert -> its state encoded, and how it was judged (if it was) so the state
        #: before a batch is not judged again.
        self._cache: collections.OrderedDict[bytes, tuple[bytes, Judged | None]] = (
            collections.OrderedDict()
        )
        self.open: collections.Counter[OpenKey] = collections.Counter()
        #: Batches projected and not yet committed, oldest first, each with the states
        #: of the alerts it changes as they were before it: what readers are shown.
        self._inflight: collections.deque[tuple[Work, dict[bytes, AlertState | None]]] = (
            collections.deque()
        )

    async def load(self) -> None:
        """Counts of open alerts, from the store."""
        self.open = collections.Counter(
            {(s, u, e): n for s, u, e, n in await self._store.open_alert_counts()}
        )

    async def state(self, alert: bytes) -> AlertState | None:
        """The current state of one alert, or None if nothing is known of it."""
        return (await self._states({alert})).get(alert)

    async def committed_state(self, alert: bytes) -> AlertState | None:
        """The state of one alert as the store holds it: what a reader may be shown.
        The pipeline projects the next batch while the last commits; until a batch is
        durable (it may yet fail, or the node die), nobody outside sees it."""
        for _, before in self._inflight:
            if alert in before:
                return before[alert]
        return await self.state(alert)

    def committed(self, work: Work) -> None:
        """A batch is durable: readers see what it changed."""
        if self._inflight and self._inflight[0][0] is work:
            self._inflight.popleft()

    async def audience_of(self, payload: Payload) -> tuple[str, ...] | None:
        """The audience of the alert (or check-in plan) an event is about, if that alert
        is restricted."""
        if isinstance(payload, CheckinPayload) and not isinstance(payload, CheckinPlanned):
            plan = await self.state(payload.plan)
            return plan.plan.audience or None if plan is not None and plan.plan else None
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

    async def project(
        self, work: Work, facts: list[Fact], authority: Authority, metrics: AlertStateMetrics
    ) -> None:
        """Fold a batch's alert facts in: the states and views it writes, the changes it
        announces, the events the rules refuse (counted, not passed on), what it erases."""
        applied = await self.apply(facts, authority, work.slicer)
        work.batch.alerts, work.batch.views = applied.states, applied.views
        work.changes = applied.changes
        self._inflight.append((work, {new.alert: old for old, new in applied.changes}))
        for refused in applied.refused:
            metrics.refused(refused.pos.org, refused.kind, refused.reason)
            work.quiet.add(refused.pos.id)
        work.batch.drop_payloads = await erased_payloads(facts, work, self._store)

    async def rebuilt(self, me: Identity, net: bytes, authority: Authority) -> None:
        """Recompute every alert from the applied events in the store, and store it."""
        facts = [f async for f in stored_facts(self._store, me, net)]
        states, views = self.rebuild(facts, authority)
        await self._erased_again(states)
        await self._store.commit(Batch(alerts=states, views=views, replace_alerts=True))

    async def _erased_again(self, states: dict[bytes, AlertState]) -> None:
        """A tombstone deleted the raise's payload, so the rebuild cannot see whose alert
        it was; the raise's header (kept, signed) says: its origin's tombstone erases it,
        as on every node that saw it happen (federation/alerts.py, `_erase`)."""
        bare = [a for a, s in states.items() if s.raised is None and s.tombstones]
        for alert, place in (await self._store.find_events(bare)).items():
            state = states[alert]
            if state.erased is None and any(t.pos.org == place.origin for t in state.tombstones):
                states[alert] = AlertState(alert, tombstones=state.tombstones, erased=place.origin)
                self._remember(alert, states[alert])

    async def apply(
        self, facts: Iterable[Fact], authority: Authority, slicer: Slicer | None = None
    ) -> Applied:
        """Fold alert events into their states, and view them under the rules of `authority`.

        Returns the new states and views to store, each alert's state before and
        after (for the response-time metrics), and the facts the rules refuse now
        that they did not before.
        """
        facts = list(facts)
        slicer = slicer or Slicer()
        refer = {
            p.plan
            for _, p, _ in facts
            if isinstance(p, CheckinPayload) and not isinstance(p, CheckinPlanned)
        }
        plans = await self._states(refer)
        held = await self._held(slot_candidates(facts, plans))
        singles = singles_of(facts, plans, held.__contains__)
        ids = {s.alert for s in singles}
        judged = {a: j for a in ids if a in self._cache and (j := self._cache[a][1]) is not None}
        states = await self._states(ids, slicer)
        old = {a: states.get(a) for a in ids}
        for single in singles:
            known = states.get(single.alert)
            states[single.alert] = single if known is None else join(known, single)
            await slicer.step()
        views: dict[bytes, AlertView | None] = {}
        refused: list[Refused] = []
        for alert in ids:
            await slicer.step()
            before, was_refused = judged.get(alert) or _judge(old[alert], authority)
            allowed, now_refused = authorise(states[alert], authority)
            v = views[alert] = derive(allowed)
            self._count(before, open_key(v))
            refused += [r for r in now_refused if r.pos not in was_refused]
            judgement = (open_key(v), tuple(r.pos for r in now_refused))
            self._remember(alert, states[alert], judgement)
        changes = [(old[a], states[a]) for a in ids]
        return Applied({a: states[a] for a in ids}, views, changes, refused)

    def _count(self, old: OpenKey | None, new: OpenKey | None) -> None:
        if old == new:
            return
        if old is not None:
            self.open[old] -= 1
        if new is not None:
            self.open[new] += 1

    async def _states(
        self, ids: set[bytes], slicer: Slicer | None = None
    ) -> dict[bytes, AlertState]:
        found = {}
        for a in ids:
            if a in self._cache:
                found[a] = decode_state(self._cache[a][0])
                if slicer is not None:
                    await slicer.step()
        missing = ids - found.keys()
        if missing:
            found.update(await self._store.alert_states(missing))
        return found

    async def _held(self, ids: set[bytes]) -> set[bytes]:
        """Which of these alerts have a state (cached, or in the store): asked of the
        few a batch's check-in events may reach, not kept for every alert (a set of
        every alert id grew with the history: 24 MB at 266,667 alerts)."""
        cached = {a for a in ids if a in self._cache}
        return cached | await self._store.alert_ids_present(ids - cached)

    def _remember(self, alert: bytes, state: AlertState, judged: Judged | None = None) -> None:
        self._cache[alert] = (encode_state(state), judged)
        self._cache.move_to_end(alert)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)

    def rebuild(
        self, events: Iterable[Fact], authority: Authority
    ) -> tuple[dict[bytes, AlertState], dict[bytes, AlertView | None]]:
        """Start over from the given (applied) events: every state, and its view."""
        states: dict[bytes, AlertState] = {}
        for single in singles_of(list(events), states, lambda a: a in states):
            known = states.get(single.alert)
            states[single.alert] = single if known is None else join(known, single)
        self._cache.clear()
        self.open = collections.Counter()
        views = {}
        for alert, state in states.items():
            views[alert] = v = view(state, authority)
            self._count(None, open_key(v))
            self._remember(alert, state)
        return states, views


def _judge(state: AlertState | None, authority: Authority) -> Judged:
    """How a state not judged before stands: its open-alert bucket, the facts refused."""
    if state is None:
        return None, ()
    allowed, refused = authorise(state, authority)
    return open_key(derive(allowed)), tuple(r.pos for r in refused)


def slot_candidates(facts: list[Fact], plans: dict[bytes, AlertState]) -> set[bytes]:
    """The slot alerts a run of events may reach without naming them: those of each plan
    it brings (misses may have come first) or ends (its plan held, in `plans`)."""
    found: set[bytes] = set()
    for e, p, _ in facts:
        if isinstance(p, CheckinPlanned):
            found.update(a for a, _, _ in slot_alerts(e.id, len(p.slots)))
        elif isinstance(p, CheckinEnded) and (plan := plans.get(p.plan)) and plan.plan:
            found.update(a for a, _, _ in slot_alerts(p.plan, len(plan.plan.body.slots)))
    return found


def singles_of(
    facts: list[Fact], plans: dict[bytes, AlertState], held: Callable[[bytes], bool]
) -> list[AlertState]:
    """The single-fact states of a run of events, in order. A check-in event reads the
    state of its plan from `plans` (updated here as plans and their ends go by: a
    later event of the run sees them); `held` says which alert states exist already."""
    singles: list[AlertState] = []
    made: set[bytes] = set()
    for e, p, to in facts:
        if not isinstance(p, CheckinPayload):
            singles.append(fact(e.header, e.id, p, to))
            continue
        key = e.id if isinstance(p, CheckinPlanned) else p.plan
        found = checkin_facts(
            e.header, e.id, p, to, plan=plans.get(key), exists=lambda a: a in made or held(a)
        )
        if isinstance(p, CheckinPlanned | CheckinEnded):
            known = plans.get(key)
            plans[key] = found[0] if known is None else join(known, found[0])
        made.update(s.alert for s in found)
        singles += found
    return singles
