"""Everything the node gives integrators, as one part of the daemon: the feeds, the
webhooks and Alertmanager, opened, run and told of changes together, and the
control operations that look after the webhooks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec
from nats.aio.client import Client as NatsClient
from prometheus_client import CollectorRegistry

from rrn.federation.alert_view import AlertView, view
from rrn.federation.alerts import AlertState, AlertStatus
from rrn.node.alerting.escalator import Routing
from rrn.node.control.channel import Handler, handler
from rrn.node.home.layout import Home
from rrn.node.integrations.ageing import Ageing
from rrn.node.integrations.alertmanager import Alertmanager, AlertmanagerMetrics
from rrn.node.integrations.erasure import Eraser
from rrn.node.integrations.feeds import Feeds
from rrn.node.integrations.webhooks import WebhookMetrics, Webhooks
from rrn.node.ops.types import NoArgs
from rrn.node.pipeline.ingest import AlertChanges, Ingestor
from rrn.node.store.db import Store

__all__ = [
    "DeadLetterInfo",
    "IntegrationMetrics",
    "Integrations",
    "ReplayInfo",
    "WebhookArgs",
    "WebhookInfo",
]


class IntegrationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.webhooks = WebhookMetrics(registry)
        self.alertmanager = AlertmanagerMetrics(registry)


class WebhookArgs(msgspec.Struct, frozen=True, kw_only=True):
    name: str


class WebhookInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    url: str
    notices: list[str]
    dead_letters: int


class DeadLetterInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    failed_ms: int
    attempts: int
    last_error: str


class ReplayInfo(msgspec.Struct, frozen=True, kw_only=True):
    sent: int
    still_dead: int


class Integrations:
    """The feeds, webhooks and Alertmanager of one running node."""

    def __init__(
        self,
        *,
        home: Home,
        store: Store,
        nc: NatsClient,
        publisher: NatsClient,
        mirror: NatsClient | None,
        routing: Callable[[AlertView], Awaitable[Routing]],
        metrics: IntegrationMetrics,
        ingestor: Ingestor,
    ) -> None:
        config = home.config
        self.nc = nc
        self.store = store
        self.ingestor = ingestor
        self.feeds = Feeds(
            nc=nc,
            publisher=publisher,
            mirror=mirror,
            config=config.nats,
            routing=routing,
            current=self._current,
            authority=lambda: ingestor.network.authority,
            ageing=Ageing(keep_days=config.nats.bucket_closed_days, clock=ingestor.clock),
        )
        self.eraser = Eraser(publisher, nc, mirror, store)
        self.webhooks = Webhooks(
            config.webhooks, home.path, store, metrics.webhooks, exists=self._exists
        )
        self.alertmanager = (
            Alertmanager(
                config.alertmanager,
                org=config.node.org,
                store=store,
                metrics=metrics.alertmanager,
                still_open=self._still_open,
            )
            if config.alertmanager is not None
            else None
        )

    async def open(self) -> None:
        await self.feeds.open(self.store)
        if self.alertmanager is not None:
            await self.alertmanager.load()

    async def run(self) -> None:
        """Feed, deliver and push until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.feeds.run(), name="feeds")
            tg.create_task(self.feeds.sweep_every(), name="feeds-ageing")
            tg.create_task(self.eraser.run(), name="stream-eraser")
            tg.create_task(self.webhooks.run(self.nc), name="webhooks")
            if self.alertmanager is not None:
                tg.create_task(self.alertmanager.run(self.nc), name="alertmanager")

    def erase(self, ids: list[bytes]) -> None:
        """Tombstoned events leave the integrators' stream (in the background)."""
        self.eraser.erase(ids)

    def alerts_changed(self, changes: AlertChanges) -> None:
        self.feeds.alerts_changed(changes)
        if self.alertmanager is not None:
            self.alertmanager.alerts_changed(changes)

    async def _exists(self, alert: str) -> bool:
        state = await self.ingestor.projection.state(bytes.fromhex(alert))
        return state is not None and state.erased is None

    async def _current(self, alert: bytes) -> tuple[AlertState | None, AlertView | None]:
        state = await self.ingestor.projection.committed_state(alert)
        return state, view(state, self.ingestor.network.authority) if state else None

    async def _still_open(self, alert: bytes) -> bool:
        _, v = await self._current(alert)
        return v is not None and v.status is AlertStatus.OPEN

    async def roster(self, version: int, cert: bytes) -> None:
        await self.feeds.roster(version, cert)

    def handlers(self) -> dict[str, Handler]:
        return {
            "webhook.list": handler(NoArgs, lambda _: self._list()),
            "webhook.dead": handler(WebhookArgs, self._dead),
            "webhook.replay": handler(WebhookArgs, self._replay),
        }

    async def _list(self) -> list[WebhookInfo]:
        found = []
        for name, target in self.webhooks.targets.items():
            dead = len(await self.store.dead_letters.of(name))
            c = target.config
            found.append(WebhookInfo(name=name, url=c.url, notices=c.notices, dead_letters=dead))
        return found

    async def _dead(self, args: WebhookArgs) -> list[DeadLetterInfo]:
        self.webhooks.target(args.name)
        return [
            DeadLetterInfo(
                id=d.id, failed_ms=d.failed_ms, attempts=d.attempts, last_error=d.last_error
            )
            for d in await self.store.dead_letters.of(args.name)
        ]

    async def _replay(self, args: WebhookArgs) -> ReplayInfo:
        sent, still = await self.webhooks.target(args.name).replay()
        return ReplayInfo(sent=sent, still_dead=still)
