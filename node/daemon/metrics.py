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
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Gauge, Info, start_http_server

from rrn.node.alerting.metrics import AlertingMetrics
from rrn.node.peering.metrics import PeerMetrics
from rrn.node.pipeline.metrics import IngestMetrics
from rrn.protocol.errors import ConfigError

__all__ = ["Metrics", "MetricsServer"]


class Metrics:
    """Every metric a node exports, grouped by the part that observes it."""

    def __init__(self, *, version: str, nats_server: str) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.build = Info("rrn_build", "Version of rrn and of the nats-server it runs.", registry=r)
        self.build.info({"version": version, "nats_server": nats_server})
        self.nats_connected = Gauge(
            "rrn_nats_connected", "1 while the daemon is connected to its NATS server.", registry=r
        )
        self.roster_version = Gauge(
            "rrn_roster_version", "Version of the roster this node works under.", registry=r
        )
        self.ingest = IngestMetrics(r)
        self.peers = PeerMetrics(
            r, rejected=self.ingest.rejected, peer_rejected=self.ingest.peer_rejected
        )
        self.alerting = AlertingMetrics(r)


class MetricsServer:
    """The /metrics endpoint, served from a background thread."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"metrics port {port} on {host} is already in use; set [metrics] port in "
                    "config.toml (or RRN_METRICS_PORT)"
                ) from exc
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from exc
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.port: int = server.server_port
        self.url = f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving (idempotent)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
