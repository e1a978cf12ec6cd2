"""Escalation on one node: publish due escalations, tell our own people when asked.

Owns the node's part in routing with no dispatcher. It keeps the open alerts in
memory from committed changes and looks at an alert when it changed or its next
step falls due (at all of them when liveness, the roster or the declarations
change): the ladder comes from the declarations in force when the alert was raised, the roster and
the roster's escalation policy (federation/escalation.py, the same on every
node); whether a step is due comes from the signed facts, this node's clock and
which members' heartbeats have stopped (node/peering/peers.py).

When an escalation is due, several live nodes would publish it at once. Each
node waits its turn first: live members are ranked by a hash of (alert, level,
org), and the member ranked k waits k stagger periods before it publishes, so
normally one node publishes and the others see its event arrive. Duplicates
are harmless: escalations to the same level merge into one state.

When this member becomes a target (first step, a later step, the fallback pool
or a hand-over), the node tells its people (node/alerting/notices.py); so it does
when an ask's turn comes to this member (node/alerting/offers.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient

from rrn.federation.alert_view import AlertView, claim_expiries, view
from rrn.federation.alerts import AlertState, AlertStatus
from rrn.federation.asks import overdue_by_role
from rrn.federation.coverage import Shift, shifts
from rrn.federation.escalation import Escalation, Ladder, Policy, ladder, next_escalation
from rrn.node.alerting.coverage import Declarations, load_declarations
from rrn.node.alerting.metrics import AlertingMetrics
from rrn.node.alerting.notices import Notifier
from rrn.node.alerting.offers import AskOffers
from rrn.node.home.clock import Clock, wait_set
from rrn.node.home.config import NotifyConfig
from rrn.node.peering.peering import Peering
from rrn.node.pipeline.ingest import Ingestor
from rrn.node.store.db import Store
from rrn.protocol.alerts import MAX_LEVEL, AlertEscalated
from rrn.protocol.errors import RrnError

__all__ = ["Escalator", "Routing"]

logger = logging.getLogger(__name__)

_TICK_S: Final = 1.0
_GATHER_S: Final = 0.3
_GAUGE_MS: Final = 15_000
_RETRY_MS: Final = 5_000


class Routing(msgspec.Struct, frozen=True, kw_only=True):
    """Whom an alert asks now and until when (for `rrn alert list` and `show`)."""

    asked: list[str]
    pool: bool
    #: When the current step runs out; None once claimed or ended.
    deadline_ms: int | None


@dataclass
class _Due:
    level: int
    since: float  # monotonic seconds this node first saw the step due


class Escalator:
    """Publishes escalations that are due and notifies this member's people."""

    def __init__(
        self,
        *,
        nc: NatsClient,
        ingestor: Ingestor,
        store: Store,
        peering: Peering,
        metrics: AlertingMetrics,
        clock: Clock,
        notify: NotifyConfig,
    ) -> None:
        self.nc = nc
        self.ingestor = ingestor
        self.store = store
        self.peering = peering
        self.metrics = metrics
        self.clock = clock
        self.notifier = Notifier(
            nc=nc, store=store, metrics=metrics, notify=notify, me=ingestor.me.org
        )
        self.offers = AskOffers(self.notifier, ingestor.me.org)
        self._wake = asyncio.Event()
        self._declarations: Declarations | None = None
        self._ladders: dict[tuple[bytes, int, int], Ladder] = {}
        self._decl_version = 0
        self._coverage_gen = 0
        #: Every open alert: its state and view, kept current from committed changes.
        self._open: dict[bytes, tuple[AlertState, AlertView]] = {}
        self._reload = True
        self._reloading = False
        #: Alerts to look at now, and when to look at the others again.
        self._changed: set[bytes] = set()
        self._next: dict[bytes, int] = {}
        self._queue: list[tuple[int, bytes]] = []
        self._seen: tuple[frozenset[str], int, int] | None = None  # down, roster, declarations
        self._gauge_ms = 0
        self._due: dict[bytes, _Due] = {}

    @property
    def me(self) -> str:
        return self.ingestor.me.org

    def alerts_changed(self, changes: list[tuple[AlertState, AlertView | None]] | None) -> None:
        """Alert states committed, with their views (None: rebuilt): look at them now."""
        if changes is None or self._reloading:
            self._reload = True
        else:
            for state, v in changes:
                self._track(state, v)
        self._wake.set()

    def coverage_changed(self) -> None:
        """A declaration arrived: recompute ladders and look at every open alert."""
        self._declarations = None
        self._coverage_gen += 1
        self._wake.set()

    def _track(self, state: AlertState, v: AlertView | None) -> None:
        if v is None or not v.status.is_open:
            self._open.pop(state.alert, None)
            self._next.pop(state.alert, None)
        else:
            self._open[state.alert] = (state, v)
            self._changed.add(state.alert)

    async def run(self) -> None:
        """Watch open alerts until cancelled."""
        await self.notifier.load()
        try:
            while True:
                try:
                    await self.tick()
                except RrnError as exc:
                    logger.warning("escalation check failed: %s", exc)
                except Exception:  # a bad alert or declaration must not stop the node
                    logger.exception("escalation check failed")
                wait = _TICK_S
                if self._queue:
                    wait = min(wait, max(0.0, (self._queue[0][0] - self.clock.now_ms()) / 1000))
                await wait_set(self._wake, wait)
                # Let changes gather: during a catch-up, alerts raised and closed
                # within moments are never looked at (nor paged for) one by one.
                await asyncio.sleep(_GATHER_S)
                self._wake.clear()
        finally:
            self.notifier.close()

    async def routing(self, v: AlertView) -> Routing:
        """Whom the alert asks at its current level, and the step's deadline."""
        policy = Policy.of(self.ingestor.network.roster)
        await self._load_declarations()
        step = self._ladder(v, policy).step(v.level)
        asked = list(v.targets) if v.level else list(step.targets)
        if v.handover_to is not None:
            asked = sorted({*asked, v.handover_to})
        running = v.status in (AlertStatus.OPEN, AlertStatus.ESCALATED)
        return Routing(
            asked=asked, pool=step.pool, deadline_ms=_deadline(v, policy) if running else None
        )

    async def ladder_of(self, v: AlertView) -> Ladder:
        """The alert's ladder, as this node escalates it (for `rrn drill report`)."""
        await self._load_declarations()
        return self._ladder(v, Policy.of(self.ingestor.network.roster))

    async def _load_declarations(self) -> None:
        # A declaration committed while the store is being read makes that read
        # stale (coverage_changed resets the cache meanwhile): read again.
        while self._declarations is None:
            wanted = self._coverage_gen
            roster = self.ingestor.network.roster
            found = await load_declarations(self.store, roster.orgs())
            if wanted == self._coverage_gen:
                self._declarations = found
                self._decl_version += 1
                self._ladders.clear()

    async def tick(self) -> None:
        """Look at the alerts that changed or fell due; at all of them when the world did."""
        if self._reload:
            self._reload = False
            self._reloading = True  # changes committed during the read: read again
            try:
                states = await self.store.open_alert_states()
            finally:
                self._reloading = False
            self._open.clear()
            for state in states:
                self._track(state, view(state, self.ingestor.network.authority))
        if not self.peering.peers.settled():
            # Just started: what this node holds may be long out of date (an alert it
            # last saw at level 1 is at level 6 by now). Catch up first, then act.
            self._seen = None
            return
        network = self.ingestor.network
        policy = Policy.of(network.roster)
        await self._load_declarations()
        now = self.clock.now_ms()
        down = self.peering.down()
        seen = (frozenset(down), network.roster_version, self._decl_version)
        if seen != self._seen:  # who is live, the policy or the ladders changed
            self._seen = seen
            self._changed |= set(self._open)
        todo, self._changed = self._changed, set()
        while self._queue and self._queue[0][0] <= now:
            at, alert = heapq.heappop(self._queue)
            if self._next.get(alert) == at:
                del self._next[alert]
                todo.add(alert)
        live = sorted(set(network.roster.orgs()) - down)
        for alert in todo:
            if alert in self._open:
                again = await self._examine(alert, policy, now, down, live)
                if again is not None:
                    self._next[alert] = again
                    heapq.heappush(self._queue, (again, alert))
        if now - self._gauge_ms >= _GAUGE_MS or todo:
            self._gauge_ms = now
            await self._count_late(policy, now)
            self._forget()
        await self.notifier.save()

    async def _examine(
        self, alert: bytes, policy: Policy, now: int, down: set[str], live: list[str]
    ) -> int | None:
        """Notify and escalate as due, tell of asks offered to this member; when to look at
        this alert again (None: on change)."""
        state, v = self._open[alert]
        try:
            offered = await self.offers.examine(state, v, self.ingestor.network, now)
        except Exception:  # telling of asks must never hold up escalation
            logger.exception("could not tell of the asks offered on alert %s", alert.hex()[:12])
            offered = now + _RETRY_MS
        again = await self._escalate(alert, policy, now, down, live)
        return min((t for t in (again, offered) if t is not None), default=None)

    async def _escalate(
        self, alert: bytes, policy: Policy, now: int, down: set[str], live: list[str]
    ) -> int | None:
        state, v = self._open[alert]
        steps = self._ladder(v, policy)
        await self.notifier.maybe_notify(v, steps, _deadline(v, policy))
        await self.notifier.escalated(v, _deadline(v, policy))
        expiries = claim_expiries(state)
        due = next_escalation(v, steps, policy, now_ms=now, down=down, claims_until=expiries)
        if due is None:
            self._due.pop(alert, None)
            if v.claimants:  # look again when the last claim runs out, if they all do
                ends = [u for u in expiries.values() if u is not None]
                return max(ends) if len(ends) == len(expiries) else None
            return _deadline(v, policy)
        wait_s = self._turn(alert, due, live)
        if wait_s > 0:
            return now + int(wait_s * 1000) + 1
        if await self._publish(v, due):
            return None  # the escalation comes back as a change
        return now + _RETRY_MS

    async def _count_late(self, policy: Policy, now: int) -> None:
        late: dict[str, int] = {}
        for _, v in self._open.values():
            first_deadline = v.raised_ms + policy.step_ms(v.urgency)
            if v.status is not AlertStatus.CLAIMED and now >= first_deadline:
                late[str(v.urgency)] = late.get(str(v.urgency), 0) + 1
                await self.notifier.unclaimed(v, first_deadline)
        self.metrics.set_unclaimed_late(late)
        views = [v for _, v in self._open.values()]
        self.metrics.set_asks_overdue(overdue_by_role(views, self.ingestor.network.roster, now))

    def _ladder(self, v: AlertView, policy: Policy) -> Ladder:
        key = (v.alert, self.ingestor.network.roster_version, self._decl_version)
        found = self._ladders.get(key)
        if found is None:
            assert self._declarations is not None
            decls = self._declarations.at(v.raised_ms)
            running: list[Shift] = [
                s
                for org, decl in sorted(decls.items())
                for s in shifts(org, decl, v.raised_ms, v.raised_ms + 1)
            ]
            found = self._ladders[key] = ladder(v, self.ingestor.network.roster, running, policy)
        return found

    def _turn(self, alert: bytes, due: Escalation, live: list[str]) -> float:
        """Seconds until this node's turn to publish the due step (0: now)."""
        now = self.peering.monotonic()
        seen = self._due.get(alert)
        if seen is None or seen.level != due.level:
            seen = self._due[alert] = _Due(due.level, now)
        rank = _rank(alert, due.level, live, self.me)
        return max(0.0, seen.since + rank * self._stagger_s() - now)

    def _stagger_s(self) -> float:
        return 2 * self.peering.config.heartbeat_s

    async def _publish(self, v: AlertView, due: Escalation) -> bool:
        if self.ingestor.appends_blocked is not None or not due.targets or due.level > MAX_LEVEL:
            return False
        event = AlertEscalated(
            alert=v.alert, level=due.level, targets=list(due.targets), cause=due.cause
        )
        try:
            await self.ingestor.append(event)
        except RrnError as exc:
            logger.warning("could not publish an escalation: %s", exc)
            return False
        self._due.pop(v.alert, None)
        self.metrics.escalations_published.labels(cause=str(due.cause)).inc()
        logger.info("alert %s escalated to level %d (%s)", v.alert.hex()[:12], due.level, due.cause)
        return True

    def _forget(self) -> None:
        """Drop bookkeeping of alerts that ended."""
        for alert in set(self._due) - self._open.keys():
            del self._due[alert]
        self.notifier.forget(self._open)
        for key in [k for k in self._ladders if k[0] not in self._open]:
            del self._ladders[key]


def _deadline(v: AlertView, policy: Policy) -> int:
    """When the alert's current step runs out unclaimed."""
    return v.level_since_ms + policy.step_ms(v.urgency)


def _rank(alert: bytes, level: int, live: Iterable[str], me: str) -> int:
    """This node's place among live members in the queue to publish one step."""

    def key(org: str) -> bytes:
        return hashlib.sha256(b"%b\x00%d\x00%b" % (alert, level, org.encode())).digest()

    order = sorted(live, key=key)
    return order.index(me) if me in order else len(order)
