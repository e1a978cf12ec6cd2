"""Deleting alerts everywhere: tombstones on request and when retention ends.

Owns how this member deletes its own alerts: `forget` signs the tombstones that
make every node drop an alert's payloads (PROTOCOL.md §4.6), and `Retention`
does so by itself for alerts closed longer than `[retention] closed_days`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from rrn.federation.alerts import AlertState, AlertStatus
from rrn.federation.checkins import over_at
from rrn.node.home.clock import Clock, every
from rrn.node.home.config import RetentionConfig
from rrn.node.pipeline.ingest import AlertChanges, Ingestor
from rrn.node.store.db import Store
from rrn.protocol.alerts import AlertTombstoned
from rrn.protocol.vocabulary import TombstoneReason

__all__ = ["Retention", "forget"]

logger = logging.getLogger(__name__)

#: Event ids one tombstone lists (its wire limit).
_TOMBSTONE_IDS: Final = 1024
#: The longest wait between two looks (what a clock set forward may bring due).
_SWEEP_S: Final = 60.0
#: Closed alerts read from the store at a time: one pass holds the store briefly.
_BATCH: Final = 50
_DAY_MS: Final = 86_400_000
_CLOSED: Final = frozenset({AlertStatus.RESOLVED, AlertStatus.CANCELLED})


async def forget(ingestor: Ingestor, state: AlertState, reason: TombstoneReason) -> int:
    """Tombstone one of this member's alerts; how many events the tombstones list."""
    ids = sorted({p.id for p in state.positions()})
    for at in range(0, len(ids), _TOMBSTONE_IDS):  # the first one erases the alert
        chunk = ids[at : at + _TOMBSTONE_IDS]
        await ingestor.append(AlertTombstoned(alert=state.alert, reason=reason, events=chunk))
    return len(ids)


class Retention:
    """Deletes this member's alerts once they have been closed for the configured time.

    It looks when the next one is due (known from the store's index of closed
    alerts and from the changes committed since), and at least every minute; each
    look reads only the alerts due, a batch at a time.
    """

    def __init__(
        self, *, ingestor: Ingestor, store: Store, config: RetentionConfig, clock: Clock
    ) -> None:
        self.ingestor = ingestor
        self.store = store
        self.config = config
        self.clock = clock
        self._wake = asyncio.Event()
        #: When the next own closed alert or plan is due for deletion, as far as known.
        self._due_ms: int | None = None
        #: This member's check-in plans and when each is over (None: read them again).
        self._plans: dict[bytes, int] | None = None
        #: Plans changed while `_plans` is being read (None: no longer this member's plan).
        self._changed_plans: dict[bytes, int | None] = {}

    @property
    def _keep_ms(self) -> int:
        return int(self.config.closed_days * _DAY_MS)

    def alerts_changed(self, changes: AlertChanges) -> None:
        """Committed alert changes: look now if one made something due sooner."""
        if changes is None:  # every alert was recomputed: read them all again
            self._plans, self._due_ms = None, None
            self._wake.set()
            return
        me = self.ingestor.me.org
        for state, v in changes:
            over = over_at(state) if state.plan is not None and _mine(state, me) else None
            if state.plan is not None or state.erased is not None:  # a plan, or was one
                self._note_plan(state.alert, over)
            if over is not None:
                self._due_at(over + self._keep_ms)
            if v is not None and v.origin == me and v.status in _CLOSED:
                self._due_at(v.updated_ms + self._keep_ms)

    def _note_plan(self, alert: bytes, over: int | None) -> None:
        """When one of this member's plans is over (None: not, or no longer, a plan)."""
        if self._plans is None:
            self._changed_plans[alert] = over
        elif over is not None:
            self._plans[alert] = over
        else:
            self._plans.pop(alert, None)

    def _due_at(self, ms: int) -> None:
        """Something is due at `ms`: wake the sweep if that is sooner than it knew."""
        if self._due_ms is None or ms < self._due_ms:
            self._due_ms = ms
            self._wake.set()

    async def run(self) -> None:
        """Sweep at start, when something comes due, and at least every minute."""
        await every(self.sweep, self._wake, self._until_due, what="retention sweep", log=logger)

    def _until_due(self) -> float:
        """Seconds to wait for the next look: until the next deletion is due, at most a
        minute (and a minute if one already due was left: a tombstone failed)."""
        if self._due_ms is None:
            return _SWEEP_S
        left = (self._due_ms - self.clock.now_ms()) / 1000
        return _SWEEP_S if left <= 0 else min(_SWEEP_S, max(0.05, left))

    async def sweep(self) -> int:
        """Tombstone every own alert closed before the retention limit, and every own
        check-in plan over since then (its event holds a defender's sealed details);
        how many."""
        before = self.clock.now_ms() - self._keep_ms
        done = await self._sweep_alerts(before) + await self._sweep_plans(before)
        if done:
            logger.info("retention: deleted %d closed alerts everywhere", done)
        first = await self.store.first_closed_ms(self.ingestor.me.org)
        plans = self._plans or {}
        known = [t + self._keep_ms for t in [first, *plans.values()] if t is not None]
        self._due_ms = min(known, default=None)
        return done

    async def _sweep_alerts(self, before_ms: int) -> int:
        """Tombstone the closed alerts due, a batch at a time, oldest first."""
        done, after = 0, (0, b"")
        while True:
            due = await self.store.closed_before(
                self.ingestor.me.org, before_ms, after=after, limit=_BATCH
            )
            for _, state in due:
                await forget(self.ingestor, state, TombstoneReason.RETENTION_ENDED)
            done += len(due)
            if len(due) < _BATCH:
                return done
            after = (due[-1][0], due[-1][1].alert)

    async def _sweep_plans(self, before_ms: int) -> int:
        """Tombstone this member's plans over before `before_ms`."""
        if self._plans is None:
            self._changed_plans = {}
            me = self.ingestor.me.org
            found: dict[bytes, int | None] = {
                p.alert: over_at(p) for p in await self.store.plans.states() if _mine(p, me)
            }
            found.update(self._changed_plans)  # committed while they were read
            self._plans = {a: t for a, t in found.items() if t is not None}
        due = [a for a, t in self._plans.items() if t < before_ms]
        done = 0
        for state in (await self.store.alert_states(due)).values():
            if state.plan is not None and _plan_over(state, before_ms, self.ingestor.me.org):
                await forget(self.ingestor, state, TombstoneReason.RETENTION_ENDED)
                self._plans.pop(state.alert, None)
                done += 1
        return done


def _mine(plan: AlertState, me: str) -> bool:
    assert plan.plan is not None
    return plan.plan.pos.org == me


def _plan_over(plan: AlertState, before_ms: int, me: str) -> bool:
    """Whether one of this member's plans was over (ended, or past its last deadline)
    before `before_ms`."""
    assert plan.plan is not None
    return plan.plan.pos.org == me and over_at(plan) < before_ms
