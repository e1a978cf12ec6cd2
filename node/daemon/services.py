"""What the node does about alerts on its own, as one bundle for the daemon.

Owns the wiring of node/alerting's services: escalation and notices, sharing
sealed details with claimants, retention, the coverage forecast, check-in plans,
drills and collective actions; which of them hear of committed alert changes;
and the tasks they run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from nats.aio.client import Client as NatsClient

from rrn.node.alerting.checkins import CheckinWatcher
from rrn.node.alerting.collective import CollectiveWatcher
from rrn.node.alerting.drills import DrillRunner
from rrn.node.alerting.escalator import Escalator
from rrn.node.alerting.forecast import Forecaster
from rrn.node.alerting.retention import Retention
from rrn.node.alerting.sharing import Sharer
from rrn.node.daemon.metrics import Metrics
from rrn.node.home.clock import Clock
from rrn.node.home.config import Config
from rrn.node.home.keys import SealingKeys
from rrn.node.peering.peering import Peering
from rrn.node.pipeline.ingest import AlertChanges, Ingestor
from rrn.node.store.db import Store

__all__ = ["AlertServices"]


class AlertServices:
    """Escalation, sharing, retention, forecast, check-ins, drills, collective actions."""

    def __init__(
        self,
        *,
        nc: NatsClient,
        ingestor: Ingestor,
        store: Store,
        peering: Peering,
        metrics: Metrics,
        clock: Clock,
        config: Config,
        sealing: SealingKeys,
        home: Path,
    ) -> None:
        self.escalator = Escalator(
            nc=nc,
            ingestor=ingestor,
            store=store,
            peering=peering,
            metrics=metrics.alerting,
            clock=clock,
            notify=config.notify,
        )
        self.sharer = Sharer(ingestor=ingestor, store=store, key=sealing)
        self.retention = Retention(
            ingestor=ingestor, store=store, config=config.retention, clock=clock
        )
        self.forecaster = Forecaster(
            ingestor=ingestor, store=store, metrics=metrics.alerting, clock=clock
        )
        self.checkins = CheckinWatcher(ingestor, peering, key=sealing, registry=metrics.registry)
        self.drills = DrillRunner(ingestor, key=sealing, directory=home / "drills")
        self.collective = CollectiveWatcher(
            ingestor, self.escalator.notifier, registry=metrics.registry
        )

    def alerts_changed(self, changes: AlertChanges) -> None:
        """Committed alert changes (None: every alert was recomputed)."""
        self.escalator.alerts_changed(changes)
        self.checkins.alerts_changed(changes)
        self.sharer.alerts_changed(changes)
        self.collective.alerts_changed(changes)
        self.retention.alerts_changed(changes)

    def coverage_changed(self) -> None:
        """A coverage declaration was committed."""
        self.forecaster.changed()
        self.escalator.coverage_changed()

    def start(self, tg: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        """Start each service's loop in `tg`."""
        return [
            tg.create_task(self.forecaster.run(), name="coverage"),
            tg.create_task(self.escalator.run(), name="escalation"),
            tg.create_task(self.checkins.run(), name="checkins"),
            tg.create_task(self.drills.run(), name="drills"),
            tg.create_task(self.sharer.run(), name="sharing"),
            tg.create_task(self.retention.run(), name="retention"),
            tg.create_task(self.collective.run(), name="collective"),
        ]
