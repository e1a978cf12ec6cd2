"""Collective actions at this node: telling its people, and the network's measures.

Owns what the node does as collective proposals change (PROTOCOL 4.9): a
`collective` notice to this member's people when a proposal it may join is made
(reason `proposed`), and when a proposal it joined or made is met (reason `met`,
naming every committed member, the same moment at every joiner's node); and the
metrics of collective action: proposals open, proposals and thresholds met, time
to threshold, joins by role. Each is observed once per node, whatever order the
events came in and across restarts (the marks are kept in the store).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Final

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rrn.federation.alert_view import AlertView, view
from rrn.federation.collective import CollectiveView
from rrn.node.alerting.notices import Notifier
from rrn.node.home.clock import Slicer
from rrn.node.pipeline.ingest import AlertChanges, Ingestor
from rrn.node.pipeline.queue import Pending
from rrn.node.store.db import Store

__all__ = ["PAGES_PER_PROPOSER", "CollectiveMetrics", "CollectiveWatcher"]

logger = logging.getLogger(__name__)

_MARKS_KEY: Final = "collective.marks"
#: Time to threshold: ten minutes to a month.
_BUCKETS: Final = tuple(60 * m for m in (10, 30, 60, 180, 360, 720, 1440, 4320, 10080, 43200))

#: Open alerts read from the store at a time by the start-up scan.
_SLICE: Final = 256
#: Proposals by one member that may page this member's people in an hour.
PAGES_PER_PROPOSER: Final = 3
_HOUR_MS: Final = 3_600_000


class CollectiveMetrics:
    """How supporters act together, measured alike on every node."""

    def __init__(self, registry: CollectorRegistry, now_ms: Callable[[], int]) -> None:
        r = registry
        self.proposals = Counter(
            "rrn_collective_proposals_total", "Collective actions proposed.", registry=r
        )
        self.met = Counter(
            "rrn_collective_thresholds_met_total",
            "Collective actions whose threshold was met (every joiner committed), by action.",
            ["action"],
            registry=r,
        )
        self.time_to_threshold = Histogram(
            "rrn_collective_time_to_threshold_seconds",
            "From a collective proposal to its threshold being met (signed times).",
            buckets=_BUCKETS,
            registry=r,
        )
        self.joins = Counter(
            "rrn_collective_joins_total",
            "Joins of collective actions the rules allow, by the joiner's role (each role it "
            "holds).",
            ["role"],
            registry=r,
        )
        self.held = Counter(
            "rrn_collective_notices_held_total",
            "Proposals not paged because their proposer's proposals had paged this "
            f"member's people {PAGES_PER_PROPOSER} times in the last hour.",
            registry=r,
        )
        self.open = Gauge(
            "rrn_collective_proposals_open",
            "Collective proposals on open alerts, not met, before their deadline.",
            registry=r,
        )
        #: proposal -> deadline, while on an open alert and not met
        self.waiting: dict[bytes, int] = {}
        self.open.set_function(lambda: sum(d >= now_ms() for d in self.waiting.values()))


class CollectiveWatcher:
    """Notices and measures of collective proposals as alert views change."""

    def __init__(self, ingestor: Ingestor, notifier: Notifier, *, registry: CollectorRegistry):
        self._ingestor = ingestor
        self._notifier = notifier
        self._store: Store = ingestor.store
        self._now_ms = ingestor.clock.now_ms
        self.metrics = CollectiveMetrics(registry, self._now_ms)
        self._me = ingestor.me.org
        #: (proposal, mark): seen, met, notified.proposed, notified.met, join:<org>
        self._marks: set[tuple[bytes, str]] = set()
        #: Alerts with proposals to look at (only ids: node/pipeline/queue.py).
        self._pending = Pending()
        #: proposer -> when its proposals paged this member's people in the last hour
        self._pages: dict[str, list[int]] = {}

    async def load(self) -> None:
        raw = await self._store.get_meta(_MARKS_KEY)
        if raw:
            with contextlib.suppress(msgspec.DecodeError):
                self._marks = set(msgspec.msgpack.decode(raw, type=list[tuple[bytes, str]]))

    def alerts_changed(self, changes: AlertChanges) -> None:
        """Committed alert changes: look at those with collective proposals."""
        for state, v in changes or []:
            if v is not None and v.collectives:
                self._pending.add(state.alert)

    async def run(self) -> None:
        """Look at changed alerts until cancelled (first at every open one)."""
        await self.load()
        await self._scan()
        while True:
            alert = await self._pending.next()
            if alert is None:
                continue
            before = len(self._marks)
            try:
                state = await self._ingestor.projection.committed_state(alert)
                v = view(state, self._ingestor.network.authority) if state else None
                if v is not None:
                    for c in v.collectives:
                        await self._look(v, c)
            except Exception:  # one bad view must not stop the watch
                logger.exception("collective watch of alert %s failed", alert.hex()[:12])
            if len(self._marks) != before:
                await self._store.set_meta(_MARKS_KEY, msgspec.msgpack.encode(sorted(self._marks)))

    async def _scan(self) -> None:
        """Look at every open alert holding collective facts: the states are read a
        slice at a time, and only their ids kept (each is viewed when looked at)."""
        ids = await self._store.open_alert_ids()
        slicer = Slicer()
        for start in range(0, len(ids), _SLICE):
            states = await self._store.alert_states(ids[start : start + _SLICE])
            for state in states.values():
                if state.collective:
                    self._pending.add(state.alert)
                await slicer.step()

    async def _look(self, v: AlertView, c: CollectiveView) -> None:
        m = self.metrics
        if not v.status.is_open:  # nothing more is told or counted of a closed alert's
            m.waiting.pop(c.proposal, None)
            self._marks = {mark for mark in self._marks if mark[0] != c.proposal}
            return
        if self._first(c.proposal, "seen"):
            m.proposals.inc()
        roster = self._ingestor.network.roster
        roles = {x.org: frozenset(str(r) for r in x.roles) for x in roster.members}
        for org in c.joined + c.committed:
            if self._first(c.proposal, f"join:{org}"):
                for role in sorted(roles.get(org, ())):
                    m.joins.labels(role=role).inc()
        if c.met_ms is not None and self._first(c.proposal, "met"):
            m.met.labels(action=c.action).inc()
            m.time_to_threshold.observe(max(0, c.met_ms - c.proposed_ms) / 1000)
        if c.met_ms is None:
            m.waiting[c.proposal] = c.deadline_ms
        else:
            m.waiting.pop(c.proposal, None)
        me = self._me
        if c.met_ms is not None and (me in c.committed or me == c.proposer):
            if self._first(c.proposal, "notified.met"):
                await self._notifier.collective(v, c, "met")
        elif (
            c.met_ms is None
            and me != c.proposer
            and me not in c.joined
            and (not v.audience or me in v.audience)
            and c.may_join(me, roles)
            and self._now_ms() <= c.deadline_ms
            and self._first(c.proposal, "notified.proposed")
            and self._may_page(c.proposer)
        ):
            await self._notifier.collective(v, c, "proposed")

    def _may_page(self, proposer: str) -> bool:
        """Whether a proposal by `proposer` may page this member's people: at most
        `PAGES_PER_PROPOSER` an hour, so a member that proposes on every alert it sees
        cannot ring every supporter's pager at will. The rest are on the console and in
        `rrn collective list`; each held back is counted."""
        now = self._now_ms()
        recent = [t for t in self._pages.get(proposer, []) if t > now - _HOUR_MS]
        if len(recent) >= PAGES_PER_PROPOSER:
            self.metrics.held.inc()
            logger.warning(
                "a collective proposal by %s was not paged: %d proposals by it were paged "
                "in the last hour (see `rrn collective list`)",
                proposer,
                len(recent),
            )
            return False
        self._pages[proposer] = [*recent, now]
        return True

    def _first(self, proposal: bytes, mark: str) -> bool:
        if (proposal, mark) in self._marks:
            return False
        self._marks.add((proposal, mark))
        return True
