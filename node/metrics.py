"""Prometheus metrics of one node: `rrn_<subsystem>_<what>_<unit>`, bounded labels.

Owns the metric definitions (each node has its own registry, so several nodes can
live in one process in tests) and the /metrics HTTP endpoint. Label values are
drawn from closed sets (event kinds, rejection reasons, severities, urgencies,
member orgs); never an alert id, a pseudonym or anything from a payload.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterable
from typing import Final
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

from rrn.protocol.alerts import Severity, SupporterRole, Urgency
from rrn.protocol.errors import ConfigError, Reason
from rrn.protocol.kinds import Kind

__all__ = ["Metrics", "MetricsServer", "kind_label"]

_KINDS: Final = frozenset(str(k) for k in Kind)
_LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
#: Response times: a minute to a week.
_RESPONSE_BUCKETS: Final = tuple(
    60 * m for m in (1, 5, 10, 30, 60, 120, 240, 720, 1440, 3 * 1440, 7 * 1440)
)


def kind_label(kind: str) -> str:
    """A metric label for an event kind: known kinds by name, anything else 'other'."""
    return kind if kind in _KINDS else "other"


class Metrics:
    """Every metric a node exports."""

    def __init__(self, *, version: str, nats_server: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build = Info("rrn_build", "Version of rrn and of the nats-server it runs.", registry=r)
        self.build.info({"version": version, "nats_server": nats_server})
        self.ingested = Counter(
            "rrn_ingest_events_total",
            "Events appended to the store, by kind (own and received).",
            ["kind"],
            registry=r,
        )
        self.rejected = Counter(
            "rrn_ingest_rejected_total",
            "Events or messages refused and not stored, by reason.",
            ["reason"],
            registry=r,
        )
        self.unapplied = Counter(
            "rrn_ingest_unapplied_total",
            "Authentic events kept in their chain but not applied, by reason.",
            ["reason"],
            registry=r,
        )
        self.opaque = Counter(
            "rrn_events_opaque_total",
            "Sealed events kept in their chain that are not sealed to this member.",
            registry=r,
        )
        self.peer_rejected = Counter(
            "rrn_peer_rejected_total",
            "Events or messages from one peer that were refused, by peer and reason.",
            ["peer", "reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "rrn_ingest_duplicates_total", "Events received again (harmless no-ops).", registry=r
        )
        self.held = Gauge(
            "rrn_ingest_held_events",
            "Verified events held behind a gap in their chain.",
            registry=r,
        )
        self.forks = Counter(
            "rrn_ingest_fork_proofs_total", "Fork proofs recorded (chains frozen).", registry=r
        )
        self.latency = Histogram(
            "rrn_ingest_latency_seconds",
            "From receipt of an event to its durable commit.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stored = Gauge("rrn_store_events", "Events in the store.", registry=r)
        self.open_alerts = Gauge(
            "rrn_alerts_open",
            "Alerts not yet resolved or cancelled, by severity, urgency and drill flag.",
            ["severity", "urgency", "exercise"],
            registry=r,
        )
        self.nats_connected = Gauge(
            "rrn_nats_connected", "1 while the daemon is connected to its NATS server.", registry=r
        )
        self.control = Counter(
            "rrn_control_requests_total",
            "Control requests from the CLI, by operation and outcome.",
            ["op", "outcome"],
            registry=r,
        )
        self.peers_connected = Gauge(
            "rrn_peers_connected",
            "Members whose heartbeats arrive directly (a live link).",
            registry=r,
        )
        self.heartbeat_age = Gauge(
            "rrn_peer_heartbeat_age_seconds",
            "Seconds since the last heartbeat of each directly linked member.",
            ["peer"],
            registry=r,
        )
        self.clock_skew = Gauge(
            "rrn_peer_clock_skew_seconds",
            "A member's clock minus ours, from its last heartbeat (positive: ahead).",
            ["peer"],
            registry=r,
        )
        self.behind = Gauge(
            "rrn_sync_behind_events",
            "Events of each origin that some peer holds and this node does not yet.",
            ["origin"],
            registry=r,
        )
        self.sync_requests = Counter(
            "rrn_sync_requests_total",
            "Range requests this node sent, by peer and outcome (ok, timeout, empty).",
            ["peer", "outcome"],
            registry=r,
        )
        self.sync_pulled = Counter(
            "rrn_sync_pulled_events_total",
            "Events received in answer to range requests.",
            registry=r,
        )
        self.sync_served = Counter(
            "rrn_sync_served_events_total",
            "Events sent to peers in answer to their range requests.",
            ["peer"],
            registry=r,
        )
        self.roster_version = Gauge(
            "rrn_roster_version", "Version of the roster this node works under.", registry=r
        )
        self.coverage_gap = Gauge(
            "rrn_coverage_gap_seconds",
            "Seconds with nobody on duty over the coming horizon (24h, 7d), by region or language.",
            ["horizon", "kind", "key"],
            registry=r,
        )
        self.unclaimed_late = Gauge(
            "rrn_alerts_unclaimed_past_deadline",
            "Open alerts nobody holds although the first step of their ladder ran out, "
            "by urgency: alerts that linger.",
            ["urgency"],
            registry=r,
        )
        self.escalations = Counter(
            "rrn_alert_escalations_total",
            "Alerts reaching a new escalation level (from any node), by level (6+ together).",
            ["level"],
            registry=r,
        )
        self.escalations_published = Counter(
            "rrn_escalations_published_total",
            "Escalations this node signed and published, by cause.",
            ["cause"],
            registry=r,
        )
        self.notices = Counter(
            "rrn_notify_total",
            "Notices to this member's people that an alert asks them to claim it, "
            "by channel (subject, command) and outcome (ok, failed, timeout).",
            ["channel", "outcome"],
            registry=r,
        )
        self.time_to_claim = Histogram(
            "rrn_alert_time_to_claim_seconds",
            "From an alert's raise to its first claim (signed times), by urgency and the "
            "claiming member's role.",
            ["urgency", "role"],
            buckets=_RESPONSE_BUCKETS,
            registry=r,
        )
        self.time_to_action = Histogram(
            "rrn_alert_time_to_first_action_seconds",
            "From an alert's raise to the first action recorded on it (signed times), by "
            "urgency and the acting member's role.",
            ["urgency", "role"],
            buckets=_RESPONSE_BUCKETS,
            registry=r,
        )
        self.time_to_pledge = Histogram(
            "rrn_alert_time_to_pledge_seconds",
            "From an alert's raise to the first pledge by a member of a role (signed times).",
            ["role"],
            buckets=_RESPONSE_BUCKETS,
            registry=r,
        )
        self.pledges = Counter(
            "rrn_pledges_total",
            "Pledges to carry out an ask, by the pledging member's role.",
            ["role"],
            registry=r,
        )
        self.pledges_fulfilled = Counter(
            "rrn_pledges_fulfilled_total",
            "Pledges followed by the pledged action (same member, same action, not declined).",
            ["role"],
            registry=r,
        )
        self.asks_overdue = Gauge(
            "rrn_asks_overdue",
            "Asks on open alerts past their deadline with no pledge or action by a member of "
            "the role asked, by that role.",
            ["role"],
            registry=r,
        )
        self.time_to_feedback = Histogram(
            "rrn_alert_time_to_feedback_seconds",
            "From an alert's raise to the first feedback its origin gave the defender.",
            ["urgency"],
            buckets=_RESPONSE_BUCKETS,
            registry=r,
        )
        for reason in Reason:
            self.rejected.labels(reason=str(reason))
        for urg in Urgency:
            self.unclaimed_late.labels(urgency=str(urg))

    def set_unclaimed_late(self, late: dict[str, int]) -> None:
        """Replace the unclaimed-past-deadline gauge (zeros included)."""
        for urg in Urgency:
            self.unclaimed_late.labels(urgency=str(urg)).set(late.get(str(urg), 0))

    def set_asks_overdue(self, overdue: dict[str, int]) -> None:
        """Replace the overdue-asks gauge (zeros included for every role)."""
        for role in SupporterRole:
            self.asks_overdue.labels(role=str(role)).set(overdue.get(str(role), 0))

    def escalated_to(self, level: int) -> None:
        """Count an alert reaching `level`."""
        self.escalations.labels(level=str(level) if level <= 5 else "6+").inc()

    def set_open_alerts(self, counts: Iterable[tuple[str, str, bool, int]]) -> None:
        """Replace the open-alert gauge with fresh counts (zeros included)."""
        seen = {(s, u, e): n for s, u, e, n in counts}
        for sev in Severity:
            for urg in Urgency:
                for exercise in (False, True):
                    n = seen.get((str(sev), str(urg), exercise), 0)
                    self.open_alerts.labels(
                        severity=str(sev), urgency=str(urg), exercise=str(exercise).lower()
                    ).set(n)


class MetricsServer:
    """The /metrics endpoint, served from a background thread."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        try:
            server, thread = start_http_server(port, addr=host, registry=metrics.registry)
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
