"""Deleting alerts everywhere: tombstones on request and when retention ends.

Owns how this member deletes its own alerts: `forget` signs the tombstones that
make every node drop an alert's payloads (PROTOCOL.md §4.6), and `Retention`
does so by itself for alerts closed longer than `[retention] closed_days`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from rrn.federation.alerts import AlertState
from rrn.federation.checkins import over_at
from rrn.node.home.clock import Clock, wait_set
from rrn.node.home.config import RetentionConfig
from rrn.node.pipeline.ingest import Ingestor
from rrn.node.store.db import Store
from rrn.protocol.alerts import AlertTombstoned
from rrn.protocol.errors import RrnError
from rrn.protocol.vocabulary import TombstoneReason

__all__ = ["Retention", "forget"]

logger = logging.getLogger(__name__)

#: Event ids one tombstone lists (its wire limit).
_TOMBSTONE_IDS: Final = 1024
_SWEEP_S: Final = 60.0
_DAY_MS: Final = 86_400_000


async def forget(ingestor: Ingestor, state: AlertState, reason: TombstoneReason) -> int:
    """Tombstone one of this member's alerts; how many events the tombstones list."""
    ids = sorted({p.id for p in state.positions()})
    for at in range(0, len(ids), _TOMBSTONE_IDS):  # the first one erases the alert
        chunk = ids[at : at + _TOMBSTONE_IDS]
        await ingestor.append(AlertTombstoned(alert=state.alert, reason=reason, events=chunk))
    return len(ids)


class Retention:
    """Deletes this member's alerts once they have been closed for the configured time."""

    def __init__(
        self, *, ingestor: Ingestor, store: Store, config: RetentionConfig, clock: Clock
    ) -> None:
        self.ingestor = ingestor
        self.store = store
        self.config = config
        self.clock = clock
        self._wake = asyncio.Event()

    def alerts_changed(self) -> None:
        """An alert changed: look again now (a closed one may be due)."""
        self._wake.set()

    async def run(self) -> None:
        """Sweep at start, after alert changes (at most once a second) and every minute."""
        while True:
            try:
                await self.sweep()
            except RrnError as exc:
                logger.warning("retention sweep failed: %s", exc)
            self._wake.clear()
            await wait_set(self._wake, _SWEEP_S)
            await asyncio.sleep(1.0)

    async def sweep(self) -> int:
        """Tombstone every own alert closed before the retention limit, and every own
        check-in plan over since then (its event holds a defender's sealed details);
        how many."""
        before = self.clock.now_ms() - int(self.config.closed_days * _DAY_MS)
        due = await self.store.closed_before(self.ingestor.me.org, before)
        due += [
            p
            for p in await self.store.plans.states()
            if _plan_over(p, before, self.ingestor.me.org)
        ]
        for state in due:
            await forget(self.ingestor, state, TombstoneReason.RETENTION_ENDED)
        if due:
            logger.info("retention: deleted %d closed alerts everywhere", len(due))
        return len(due)


def _plan_over(plan: AlertState, before_ms: int, me: str) -> bool:
    """Whether one of this member's plans was over (ended, or past its last deadline)
    before `before_ms`."""
    assert plan.plan is not None
    return plan.plan.pos.org == me and over_at(plan) < before_ms
