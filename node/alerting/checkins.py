"""Check-in plans on one node: publish the miss of a slot nobody checked in for, and
(at the origin) the duress alert of a duress code.

Owns the node's part in enforcing check-ins with no dispatcher. Every node within a
plan's audience computes the same deadlines from the signed plan; when one passes
with no allowed check-in for its slot and no miss yet, the live members take turns
(ranked by a hash of the slot's alert id and their org, the plan's origin first) to
publish `checkin.missed`, so normally one does, and copies merge into one alert
(federation/checkins.py). Only the origin can tell a duress code from the other
(the plan's duress blob is sealed to it): when a check-in used one, the origin's
node publishes the duress alert sealed to itself alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Iterable
from typing import Final

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge

from rrn.federation.alerts import AlertState, PlanFact, Pos
from rrn.federation.authority import PLAN_SPAN_MS
from rrn.federation.checkins import alarm_raised, checked_in, ended_at, over_at
from rrn.node.home.clock import Clock, every
from rrn.node.peering.peering import Peering
from rrn.node.pipeline.ingest import AlertChanges, Ingestor
from rrn.node.store.db import Store
from rrn.protocol.checkins import (
    CheckinMissed,
    CheckinPlanned,
    DuressMap,
    commitment,
    missed_alert_id,
)
from rrn.protocol.encoding import decode_canonical
from rrn.protocol.errors import ProtocolError, Reason, RrnError
from rrn.protocol.kinds import unseal
from rrn.protocol.sealing import OpenKeys, Position, decode_sealed, open_sealed

__all__ = ["CheckinMetrics", "CheckinWatcher"]

logger = logging.getLogger(__name__)

_TICK_S: Final = 5.0
#: Slots whose deadline passed longer ago than this are history: never published late
#: by a node that only now learns of them (it may not hold their check-ins yet).
_LOOKBACK_MS: Final = 24 * 3_600_000
#: The origin acknowledges a check-in this many seconds after seeing it (at random,
#: the same for either code: a duress alert is raised within seconds).
_ACK_S: Final = (1.0, 5.0)
#: Misses this node signs per day for the plans of one member, at most.
_MISSES_PER_DAY: Final = 64
_DURESS_DECODER: Final = msgspec.msgpack.Decoder(DuressMap)


class CheckinMetrics:
    """Check-in plans as this node sees them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.plans_active = Gauge(
            "rrn_checkin_plans_active",
            "Check-in plans this node enforces (within their audience) that have not ended.",
            registry=registry,
        )
        self.overdue = Gauge(
            "rrn_checkins_overdue",
            "Check-in slots past their time with no check-in yet (within their grace "
            "period, or past it with no alert raised yet).",
            registry=registry,
        )
        self.missed = Counter(
            "rrn_checkins_missed_total",
            "Missed check-ins this node published (each raises, or joins, the slot's alert).",
            registry=registry,
        )
        self.withheld = Counter(
            "rrn_checkin_misses_withheld_total",
            "Misses this node did not sign because the plans of that member already had "
            "their day's share (64): a member making plans to spend the others' quotas.",
            ["origin"],
            registry=registry,
        )


class CheckinWatcher:
    """Publishes the misses (and, at the origin, the duress alerts) that are due."""

    def __init__(
        self, ingestor: Ingestor, peering: Peering, *, key: OpenKeys, registry: CollectorRegistry
    ) -> None:
        self.ingestor, self.peering = ingestor, peering
        self.store: Store = ingestor.store
        self.clock: Clock = ingestor.clock
        self.key = key
        self.metrics = CheckinMetrics(registry)
        self._wake = asyncio.Event()
        self._plans: list[AlertState] | None = None
        self._duress: dict[bytes, list[int] | None] = {}
        self._first_due: dict[bytes, float] = {}
        self._generation = 0
        self._spent: dict[tuple[str, int], int] = {}
        self._ack_at: dict[bytes, float] = {}

    @property
    def me(self) -> str:
        return self.ingestor.me.org

    def alerts_changed(self, changes: AlertChanges) -> None:
        """Committed changes: a plan, a check-in or a miss may change what is due."""
        if changes is None or any(s.plan is not None for s, _ in changes):
            self._plans, self._generation = None, self._generation + 1
        self._wake.set()

    async def run(self) -> None:
        """Watch the plans until cancelled."""
        await every(self.tick, self._wake, _TICK_S, what="check-in watch", log=logger)

    async def tick(self) -> None:
        if self._plans is None:
            generation = self._generation
            plans = await self.store.plans.states()
            if generation == self._generation:  # no plan changed while reading
                self._plans = plans
        if not self.peering.peers.settled():
            return  # catch up first: the check-ins may be on their way
        now = self.clock.now_ms()
        active = overdue = 0
        for plan in self._plans or []:
            assert plan.plan is not None
            if not self._within(plan.plan) or _over(plan, now):
                continue
            active += over_at(plan) > now
            overdue += await self._watch(plan, now)
        self.metrics.plans_active.set(active)
        self.metrics.overdue.set(overdue)

    def _within(self, plan: PlanFact) -> bool:
        return not plan.audience or self.me in plan.audience

    async def _watch(self, plan: AlertState, now: int) -> int:
        """Publish what is due for one plan; how many of its slots are overdue."""
        assert plan.plan is not None
        fact, body = plan.plan, plan.plan.body
        ended = ended_at(plan)
        roles = self.ingestor.network.authority.roles
        overdue = 0
        for slot, due in enumerate(body.slots):
            deadline = due + body.grace_ms
            if deadline < now - _LOOKBACK_MS or (ended is not None and ended < deadline):
                continue
            if not fact.pos.wall_ms < deadline <= fact.pos.wall_ms + PLAN_SPAN_MS:
                continue  # a slot the rules never raise (before its plan, or too far on)
            if due > now and fact.pos.org != self.me:
                break  # later slots: nothing to do yet (the origin looks for duress codes)
            alert = missed_alert_id(fact.pos.id, slot)
            state = await self.ingestor.projection.state(alert)
            answers = checked_in(fact, slot, state, roles)
            if answers and fact.pos.org == self.me:
                await self._acknowledge(plan, slot, answers)
            if answers or due > now or alarm_raised(state, self.ingestor.network.authority):
                continue
            overdue += 1
            if now >= deadline and self._turn(alert, fact, now) and self._spend(fact, now):
                await self._publish(CheckinMissed(plan=fact.pos.id, slot=slot), None)
        return overdue

    def _spend(self, plan: PlanFact, now: int) -> bool:
        """Whether this node may still sign a miss today for plans of this origin: at most
        `_MISSES_PER_DAY`, so a member's plans cannot spend the others' daily quotas
        (PROTOCOL 3.7) on misses; past that, its misses wait for the next day."""
        key = (plan.pos.org, now // 86_400_000)
        spent = self._spent.get(key, 0)
        if spent >= _MISSES_PER_DAY:
            self.metrics.withheld.labels(origin=plan.pos.org).inc()
            return False
        self._spent = {k: n for k, n in self._spent.items() if k[1] == key[1]}
        self._spent[key] = spent + 1
        return True

    def _turn(self, alert: bytes, plan: PlanFact, now: int) -> bool:
        """Whether it is this node's turn to publish the slot's miss."""
        down = self.peering.down()
        live = [o for o in self.ingestor.network.roster.orgs() if o not in down]
        if plan.audience:
            live = [o for o in live if o in plan.audience]
        rank = _rank(alert, live, plan.pos.org, self.me)
        started = self._first_due.setdefault(alert, self.peering.monotonic())
        return self.peering.monotonic() >= started + rank * 2 * self.peering.config.heartbeat_s

    async def _acknowledge(
        self, plan: AlertState, slot: int, answers: list[tuple[Pos, str]]
    ) -> None:
        """The origin acknowledges each check-in, sealed to itself, after a random delay:
        a duress code's raises the slot's duress alert, any other's nothing; alike in
        size, so nobody watching the events can tell them apart (PROTOCOL 4.7)."""
        assert plan.plan is not None
        alert = missed_alert_id(plan.plan.pos.id, slot, duress=True)
        state = await self.ingestor.projection.state(alert)
        mine = [p for p in (state.misses if state else ()) if p.org == self.me]
        if mine or (state and any(p.org == self.me for p, _ in state.checkins)):
            return  # acknowledged already
        at = self._ack_at.setdefault(alert, self.peering.monotonic() + random.uniform(*_ACK_S))
        if self.peering.monotonic() < at:
            return
        which = await self._duress_map(plan.plan)
        if which is None or slot >= len(which):
            return  # the map does not open (logged): a real duress code could be missed
        duress = plan.plan.body.codes[slot][which[slot]]
        used = any(code and commitment(code) == duress for _, code in answers)
        miss = CheckinMissed(plan=plan.plan.pos.id, slot=slot, duress=used)
        if await self._publish(miss, [self.me]):
            self._ack_at.pop(alert, None)

    async def _duress_map(self, plan: PlanFact) -> list[int] | None:
        """Which code of each slot is the duress one, from the plan's blob sealed to us."""
        if plan.pos.id not in self._duress:
            self._duress[plan.pos.id] = await self._open_duress(plan)
        return self._duress[plan.pos.id]

    async def _open_duress(self, plan: PlanFact) -> list[int] | None:
        pos, net = plan.pos, self.ingestor.network.net
        event = await self.store.event_at(pos.org, pos.epoch, pos.seq)
        if event is None or event.payload is None:
            return None
        try:
            _, payload, _ = unseal(event.header, event.payload, self.me, self.key, net)
            if not isinstance(payload, CheckinPlanned):
                return None
            at = Position(net, pos.org, pos.epoch, pos.seq)
            plain = open_sealed(decode_sealed(payload.duress), self.me, self.key, at)
            return decode_canonical(
                plain, _DURESS_DECODER, "duress map", Reason.MALFORMED_PAYLOAD
            ).which
        except ProtocolError as exc:
            logger.warning(
                "the duress codes of plan %s do not open: %s", pos.id.hex()[:12], exc.reason
            )
            return None

    async def _publish(self, miss: CheckinMissed, audience: list[str] | None) -> bool:
        if self.ingestor.appends_blocked is not None:
            return False
        try:
            await self.ingestor.append(miss, audience=audience)
        except RrnError as exc:
            logger.warning("could not publish a check-in event: %s", exc)
            return False
        if miss.duress is None:  # an acknowledgement is counted nowhere another could read it
            self.metrics.missed.inc()
            logger.info("check-in plan %s: slot %d missed", miss.plan.hex()[:12], miss.slot)
        return True


def _over(plan: AlertState, now: int) -> bool:
    """Whether a plan is history here: over (ended, or its last deadline passed) longer
    ago than a late miss is still published (a slot missed before an end still is)."""
    return over_at(plan) < now - _LOOKBACK_MS


def _rank(alert: bytes, live: Iterable[str], origin: str, me: str) -> int:
    """This node's place in the queue to publish a slot's miss: the origin first."""
    order = sorted(live, key=lambda o: (o != origin, hashlib.sha256(alert + o.encode()).digest()))
    return order.index(me) if me in order else len(order)
