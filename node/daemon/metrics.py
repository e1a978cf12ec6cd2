"""Prometheus metrics of one node: `rrn_<subsystem>_<what>_<unit>`, bounded labels.

Owns the node's registry (each node has its own, so several nodes can live in
one process in tests), the families of the daemon itself, and the /metrics
HTTP endpoint. The other families are declared where they are observed
(node/pipeline/metrics.py, node/peering/metrics.py, node/alerting/metrics.py,
node/control/server.py). Label values are drawn from closed sets (event kinds,
rejection reasons, severities, urgencies, member orgs); never an alert id, a
pseudonym or anything from a payload.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    Info,
    ProcessCollector,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.exposition import ThreadingWSGIServer

from rrn.node.alerting.metrics import AlertingMetrics
from rrn.node.daemon.health import HealthMetrics
from rrn.node.integrations.hub import IntegrationMetrics
from rrn.node.peering.metrics import PeerMetrics
from rrn.node.pipeline.metrics import IngestMetrics
from rrn.protocol.errors import ConfigError

__all__ = ["Metrics", "MetricsServer"]

# Counters' _created series double the samples and no rule of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """Every metric a node exports, grouped by the part that observes it."""

    def __init__(self, *, version: str, nats_server: str, org: str = "") -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)  # process_* (memory, CPU, open files, start time)
        self.build = Info(
            "rrn_build",
            "Version of rrn and of the nats-server it runs, and this member.",
            registry=r,
        )
        self.build.info({"version": version, "nats_server": nats_server, "org": org})
        self.nats_connected = Gauge(
            "rrn_nats_connected", "1 while the daemon is connected to its NATS server.", registry=r
        )
        self.roster_version = Gauge(
            "rrn_roster_version", "Version of the roster this node works under.", registry=r
        )
        self.roster_members = Gauge(
            "rrn_roster_members", "Current members of the roster, this one included.", registry=r
        )
        self.ingest = IngestMetrics(r)
        self.peers = PeerMetrics(
            r, rejected=self.ingest.rejected, peer_rejected=self.ingest.peer_rejected
        )
        self.alerting = AlertingMetrics(r)
        self.health = HealthMetrics(r)
        self.integrations = IntegrationMetrics(r)

    def roster(self, version: int, members: int) -> None:
        """The roster the node works under now."""
        self.roster_version.set(version)
        self.roster_members.set(members)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


class MetricsServer:
    """/metrics, /healthz (the process serves) and /readyz (200 when `problems` finds
    none, else 503 listing them), served from a background thread."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        problems: Callable[[], list[str]] = list,
    ) -> None:
        metrics = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                return metrics(environ, start)  # type: ignore[no-any-return]
            if path == "/healthz":
                return _text(start, "200 OK", "ok\n")
            if path == "/readyz":
                found = problems()
                if found:
                    return _text(start, "503 Service Unavailable", "".join(f"{p}\n" for p in found))
                return _text(start, "200 OK", "ready\n")
            return _text(start, "404 Not Found", "/metrics, /healthz or /readyz\n")

        try:
            server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_Quiet)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"metrics port {port} on {host} is already in use; set [metrics] port in "
                    "config.toml (or RRN_METRICS_PORT)"
                ) from exc
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from exc
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True, name="metrics")
        self._thread.start()
        self.port: int = server.server_port
        self.url = f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving (idempotent)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _text(start: Callable[..., Any], status: str, body: str) -> list[bytes]:
    start(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode()]
