"""The coverage forecast a node exports: gaps ahead, and who is on duty now.

Owns the loop that, every minute and whenever a declaration arrives, turns the
members' current declarations (node/alerting/coverage.py) into the gap gauges
(6h, 24h and 7d ahead, per region and language) and the on-duty gauge the
alert rules pair with member liveness (deploy/prometheus-rules.yml).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from rrn.federation.coverage import on_duty
from rrn.node.alerting.coverage import all_shifts, current_declarations, gap_seconds
from rrn.node.alerting.metrics import AlertingMetrics
from rrn.node.home.clock import Clock, wait_set
from rrn.node.pipeline.ingest import Ingestor
from rrn.node.store.db import Store

__all__ = ["HORIZONS", "Forecaster"]

logger = logging.getLogger(__name__)

HOUR_MS: Final = 3_600_000
#: How far ahead gaps are forecast: 6h pages, 24h and 7d give time to arrange cover.
HORIZONS: Final = (("6h", 6 * HOUR_MS), ("24h", 24 * HOUR_MS), ("7d", 7 * 24 * HOUR_MS))


class Forecaster:
    """Keeps the coverage gauges current."""

    def __init__(
        self, *, ingestor: Ingestor, store: Store, metrics: AlertingMetrics, clock: Clock
    ) -> None:
        self.ingestor = ingestor
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self._changed = asyncio.Event()

    def changed(self) -> None:
        """A member declared its coverage: forecast again now."""
        self._changed.set()

    async def run(self) -> None:
        while True:
            try:
                await self.forecast()
            except Exception:  # a bad declaration must not stop the node
                logger.exception("coverage forecast failed")
            await wait_set(self._changed, 60)
            self._changed.clear()

    async def forecast(self) -> None:
        members = self.ingestor.network.roster.orgs()
        decls = await current_declarations(self.store, members)
        now = self.clock.now_ms()
        gauge = self.metrics.coverage_gap
        gauge.clear()
        for horizon, span in HORIZONS:
            for (kind, key), seconds in gap_seconds(decls, now, span).items():
                gauge.labels(horizon=horizon, kind=kind, key=key).set(seconds)
        duty = {s.org for s in on_duty(all_shifts(decls, now, now + 1), now)}
        self.metrics.on_duty.clear()
        for org in members:
            if org != self.ingestor.me.org:
                self.metrics.on_duty.labels(peer=org).set(1 if org in duty else 0)
