"""Escalation on one node: publish due escalations, tell our own people when asked.

Owns the node's part in routing with no dispatcher. It looks at an alert when it
changed or its next moment comes (node/alerting/agenda.py keeps which, and reads
nothing else of an alert until then); at all of them, a slice at a time, when the
roster or the declarations change; and when liveness changes, at those it concerns
(an unclaimed alert at a direct step, one waiting its turn to publish). The ladder
comes from the declarations in force when the alert was raised, the roster and the
roster's escalation policy (node/alerting/ladders.py, federation/escalation.py, the
same on every node); whether a step is due comes from the signed facts, this node's
clock and which members' heartbeats have stopped (node/peering/peers.py).

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
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple

import msgspec
from nats.aio.client import Client as NatsClient

from rrn.federation.alert_view import AlertView, claim_expiries, view
from rrn.federation.alerts import AlertState, AlertStatus
from rrn.federation.escalation import Escalation, Ladder, Policy, next_escalation
from rrn.node.alerting.agenda import Agenda
from rrn.node.alerting.ladders import Ladders
from rrn.node.alerting.lingering import Lingering
from rrn.node.alerting.metrics import AlertingMetrics
from rrn.node.alerting.notices import Notifier
from rrn.node.alerting.offers import AskOffers
from rrn.node.home.clock import Clock, Slicer, wait_set
from rrn.node.home.config import NotifyConfig
from rrn.node.peering.peering import Peering
from rrn.node.pipeline.ingest import AlertChanges, Ingestor
from rrn.node.store.db import Store
from rrn.protocol.alerts import MAX_LEVEL, AlertEscalated
from rrn.protocol.errors import RrnError

__all__ = ["Escalator", "Routing"]

logger = logging.getLogger(__name__)

_TICK_S: Final = 1.0
_GATHER_S: Final = 0.3
_RETRY_MS: Final = 5_000
#: Alerts read from the store and looked at between two looks at what changed.
_SLICE: Final = 256
#: How often a long pass saves what it sent so far.
_SAVE_S: Final = 2.0


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


class _World(NamedTuple):
    """What every look in one pass shares: the policy, the time, who is down and live."""

    policy: Policy
    now: int
    down: set[str]
    live: list[str]


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
        self.ladders = Ladders(ingestor, store)
        self._agenda = Agenda()
        self._lingering = Lingering(metrics)
        self._reload = True
        self._reloading = False
        self._seen: tuple[frozenset[str], int, int] | None = None  # down, roster, declarations
        self._due: dict[bytes, _Due] = {}
        #: Unclaimed alerts at a direct step: its members (whom liveness concerns).
        self._direct: dict[bytes, tuple[str, ...]] = {}

    @property
    def me(self) -> str:
        return self.ingestor.me.org

    def alerts_changed(self, changes: AlertChanges) -> None:
        """Alert states committed, with their views (None: rebuilt): look at them now."""
        if changes is None or self._reloading:
            self._reload = True
        else:
            for state, v in changes:
                self._agenda.changed(state, v)
        self._wake.set()

    def coverage_changed(self) -> None:
        """A declaration arrived: recompute ladders and look at every open alert."""
        self.ladders.coverage_changed()
        self._wake.set()

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
                at = self._agenda.next_ms()
                if at is not None:
                    wait = min(wait, max(0.0, (at - self.clock.now_ms()) / 1000))
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
        await self.ladders.load()
        step = self.ladders.of(v, policy).step(v.level)
        asked = list(v.targets) if v.level else list(step.targets)
        if v.handover_to is not None:
            asked = sorted({*asked, v.handover_to})
        running = v.status in (AlertStatus.OPEN, AlertStatus.ESCALATED)
        return Routing(
            asked=asked, pool=step.pool, deadline_ms=_deadline(v, policy) if running else None
        )

    async def ladder_of(self, v: AlertView) -> Ladder:
        """The alert's ladder, as this node escalates it (for `rrn drill report`)."""
        await self.ladders.load()
        return self.ladders.of(v, Policy.of(self.ingestor.network.roster))

    async def tick(self) -> None:
        """Look at the alerts that changed or fell due; at all of them when the world did,
        a slice at a time (changes and due alerts are looked at between slices)."""
        if self._reload:
            await self._reread()
        if not self.peering.peers.settled():
            # Just started: what this node holds may be long out of date (an alert it
            # last saw at level 1 is at level 6 by now). Catch up first, then act.
            self._seen = None
            return
        slicer = Slicer()
        while True:
            world = await self._world()
            for state, v in self._agenda.take_changed():
                await self._look(state, v, world)
                await slicer.step()
            due = self._agenda.take_due(world.now)
            if len(due) < _SLICE:
                due += self._agenda.take_sweep(_SLICE - len(due))
            if not due:
                break
            for start in range(0, len(due), _SLICE):
                states = await self.store.alert_states(due[start : start + _SLICE])
                for alert in due[start : start + _SLICE]:
                    await self._look_stored(alert, states.get(alert), world)
                    await slicer.step()
            if not self._agenda.sweeping:
                break  # what fell due meanwhile waits for the next look, as changes do
            if slicer.elapsed_s() >= _SAVE_S:  # a long pass: keep what was sent so far
                await self._settle()
                slicer.restart()
        await self._settle()

    async def _reread(self) -> None:
        """Which alerts are open, from the store (at start, and after a rebuild)."""
        self._reload = False
        self._reloading = True  # changes committed during the read: read again
        try:
            ids = await self.store.open_alert_ids()
        finally:
            self._reloading = False
        self._agenda.reset(ids)
        self.notifier.marks.keep(self._agenda.open)

    async def _world(self) -> _World:
        """The world as of now; every open alert is looked at again when it changed."""
        network = self.ingestor.network
        await self.ladders.load()
        down = self.peering.down()
        seen = (frozenset(down), network.roster_version, self.ladders.version)
        if seen != self._seen and self._seen is not None and seen[1:] == self._seen[1:]:
            # Only liveness changed: it matters to an alert whose direct step asks a
            # member that went down or came back, or that waits its turn to publish.
            flipped = seen[0] ^ self._seen[0]
            hit = [a for a, targets in self._direct.items() if flipped.intersection(targets)]
            self._agenda.look_again([*hit, *self._due])
        elif seen != self._seen:  # the policy or the ladders changed
            self._agenda.look_at_all()
        self._seen = seen
        live = sorted(set(network.roster.orgs()) - down)
        return _World(Policy.of(network.roster), self.clock.now_ms(), down, live)

    async def _look_stored(self, alert: bytes, state: AlertState | None, world: _World) -> None:
        """Look at an alert read from the store, unless a newer state waits or it ended."""
        if self._agenda.pending(alert):
            return
        v = view(state, self.ingestor.network.authority) if state is not None else None
        if state is None or v is None or not v.status.is_open:
            self._agenda.changed(state or AlertState(alert=alert), None)
        else:
            await self._look(state, v, world)

    async def _look(self, state: AlertState, v: AlertView, world: _World) -> None:
        """Notify and escalate as due, tell of asks offered to this member, count it if it
        lingers; and when to look at it again."""
        now = world.now
        try:
            offered = await self.offers.examine(state, v, self.ingestor.network, now)
        except Exception:  # telling of asks must never hold up escalation
            logger.exception("could not tell of the asks offered on alert %s", v.alert.hex()[:12])
            offered = now + _RETRY_MS
        again = await self._escalate(state, v, world)
        lingers = await self._linger(v, world.policy, now)
        wake = [t for t in (again, offered, lingers) if t is not None]
        self._agenda.at(v.alert, min(wake, default=None))

    async def _escalate(self, state: AlertState, v: AlertView, world: _World) -> int | None:
        policy, now = world.policy, world.now
        steps = self.ladders.of(v, policy)
        current = steps.step(v.level)
        if v.claimants or current.pool:
            self._direct.pop(v.alert, None)
        else:
            self._direct[v.alert] = current.targets
        await self.notifier.maybe_notify(v, steps, _deadline(v, policy))
        await self.notifier.escalated(v, _deadline(v, policy))
        expiries = claim_expiries(state)
        due = next_escalation(v, steps, policy, now_ms=now, down=world.down, claims_until=expiries)
        if due is None:
            self._due.pop(v.alert, None)
            if v.claimants:  # look again when the last claim runs out, if they all do
                ends = [u for u in expiries.values() if u is not None]
                return max(ends) if len(ends) == len(expiries) else None
            return _deadline(v, policy)
        wait_s = self._turn(v.alert, due, world.live)
        if wait_s > 0:
            return now + int(wait_s * 1000) + 1
        if await self._publish(v, due):
            return None  # the escalation comes back as a change
        return now + _RETRY_MS

    async def _linger(self, v: AlertView, policy: Policy, now: int) -> int | None:
        """Count the alert in the lingering gauges, telling integrators once that nobody
        holds it past its first deadline; when that may next change by time alone."""
        first = v.raised_ms + policy.step_ms(v.urgency)
        late, wake = self._lingering.look(v, first, self.ingestor.network.roster, now)
        if late:
            await self.notifier.unclaimed(v, first)
        return wake

    async def _settle(self) -> None:
        """Drop what was kept of alerts that ended; publish the gauges; save the marks."""
        for alert in self._agenda.take_ended():
            self._due.pop(alert, None)
            self._direct.pop(alert, None)
            self._lingering.drop(alert)
            self.notifier.marks.drop(alert)
        self._lingering.publish()
        await self.notifier.save()

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


def _deadline(v: AlertView, policy: Policy) -> int:
    """When the alert's current step runs out unclaimed."""
    return v.level_since_ms + policy.step_ms(v.urgency)


def _rank(alert: bytes, level: int, live: Iterable[str], me: str) -> int:
    """This node's place among live members in the queue to publish one step."""

    def key(org: str) -> bytes:
        return hashlib.sha256(b"%b\x00%d\x00%b" % (alert, level, org.encode())).digest()

    order = sorted(live, key=key)
    return order.index(me) if me in order else len(order)
