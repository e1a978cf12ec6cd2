"""What monitoring asks of a running node: is it alive, is it ready, and how its ground
is: store size, free disk, the last commit, own appends blocked, and nats-server's own
health, read over the server's system account (no HTTP monitoring port needed).

Owns /readyz's verdict and the gauges sampled every SAMPLE_S seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import time
from typing import Any, Final

from nats.errors import Error as NatsError
from prometheus_client import CollectorRegistry, Gauge

from rrn.node.daemon.nats import NodeNats
from rrn.node.home.layout import Home
from rrn.node.integrations.consumers import stop_if_cancelled
from rrn.node.peering.peers import Peers
from rrn.node.pipeline.ingest import Ingestor

__all__ = ["SAMPLE_S", "Health", "HealthMetrics"]

logger = logging.getLogger(__name__)

SAMPLE_S: Final = 15.0
_ASK_TIMEOUT_S: Final = 2.0


class HealthMetrics:
    """The node's ground and its nats-server, as gauges."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.store_bytes = Gauge(
            "rrn_store_bytes", "Size of the store on disk (database and its WAL).", registry=r
        )
        self.disk_free = Gauge(
            "rrn_disk_free_bytes", "Free space on the file system of the node home.", registry=r
        )
        self.last_commit = Gauge(
            "rrn_store_last_commit_timestamp_seconds",
            "When the store last committed events (Unix time).",
            registry=r,
        )
        self.blocked = Gauge(
            "rrn_own_appends_blocked",
            "1 while this node refuses to sign events of its own (rrn status says why).",
            registry=r,
        )
        self.nats_up = Gauge(
            "rrn_nats_server_up",
            "1 while the embedded nats-server answers (an external one: while connected).",
            registry=r,
        )
        self.nats = {
            name: Gauge(f"rrn_nats_server_{name}", text, registry=r)
            for name, text in (
                ("connections", "Client connections to the embedded nats-server."),
                ("leafnodes", "Leafnode links of the embedded nats-server (one per linked peer)."),
                ("slow_consumers", "Slow consumers the nats-server dropped messages for, so far."),
            )
        }
        self.jetstream_bytes = Gauge(
            "rrn_nats_jetstream_storage_bytes",
            "Bytes JetStream keeps on disk (the integrators' stream).",
            registry=r,
        )


class Health:
    """Readiness and the sampled gauges of one running node."""

    def __init__(
        self,
        *,
        home: Home,
        ingestor: Ingestor,
        peers: Peers,
        nats: NodeNats,
        metrics: HealthMetrics,
    ) -> None:
        self.home = home
        self.ingestor = ingestor
        self.peers = peers
        self.nats = nats
        self.metrics = metrics

    def problems(self) -> list[str]:
        """Why the node is not ready to serve its members (empty: it is). Called from
        the /readyz thread: it only reads."""
        found = []
        if not self.nats.nc.is_connected:
            found.append("not connected to its nats-server")
        server = self.nats.server
        if server is not None and not _alive(server.pid):
            found.append("its nats-server is not running")
        blocked = self.ingestor.appends_blocked
        if blocked is not None:
            found.append(f"own events blocked: {blocked}")
        others = self.peers.members()
        if others and self.peers.down() >= set(others):
            found.append("no other member's heartbeats arrive")
        return found

    def committed(self) -> None:
        """The store just committed."""
        self.metrics.last_commit.set(time.time())

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            try:
                self._sample_ground()
                await self._sample_server()
            except Exception:  # a failed sample must not stop the node
                logger.exception("health sample failed")
            stop_if_cancelled()  # a request to the server may have lost the stop
            await asyncio.sleep(SAMPLE_S)

    def _sample_ground(self) -> None:
        m = self.metrics
        store = self.home.store_path
        size = 0
        for path in (store, store.with_name(store.name + "-wal")):
            with contextlib.suppress(FileNotFoundError):
                size += os.stat(path).st_size
        m.store_bytes.set(size)
        m.disk_free.set(shutil.disk_usage(self.home.path).free)
        m.blocked.set(0 if self.ingestor.appends_blocked is None else 1)

    async def _sample_server(self) -> None:
        nc = self.nats.sys_nc
        if nc is None:  # the operator's own server: only our connection to it is known
            self.metrics.nats_up.set(1 if self.nats.nc.is_connected else 0)
            return
        varz, jsz = await self._ask(nc, "VARZ"), await self._ask(nc, "JSZ")
        self.metrics.nats_up.set(1 if varz is not None else 0)
        if varz is not None:
            for name, gauge in self.metrics.nats.items():
                gauge.set(float(varz.get(name, 0)))
        if jsz is not None:
            self.metrics.jetstream_bytes.set(float(jsz.get("storage", 0)))

    @staticmethod
    async def _ask(nc: Any, what: str) -> dict[str, Any] | None:
        """The `data` of the server's answer to $SYS.REQ.SERVER.PING.<what>, or None."""
        try:
            msg = await nc.request(f"$SYS.REQ.SERVER.PING.{what}", b"", timeout=_ASK_TIMEOUT_S)
            data = json.loads(msg.data).get("data")
        except (NatsError, TimeoutError, ValueError, AttributeError):
            return None
        return data if isinstance(data, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
