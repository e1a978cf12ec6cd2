"""Metrics of the ingest pipeline: what was stored, refused, held, and how fast.

Owns the families the pipeline observes. Label values come from closed sets
(event kinds, rejection reasons, member orgs, severities, urgencies); never an
alert id, a pseudonym or anything from a payload.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rrn.node.pipeline.responses import ResponseMetrics
from rrn.protocol.errors import Reason
from rrn.protocol.kinds import Kind
from rrn.protocol.vocabulary import Severity, Urgency

__all__ = ["AlertStateMetrics", "IngestMetrics", "kind_label"]

_KINDS: Final = frozenset(str(k) for k in Kind)
_LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


def kind_label(kind: str) -> str:
    """A metric label for an event kind: known kinds by name, anything else 'other'."""
    return kind if kind in _KINDS else "other"


class IngestMetrics:
    """The pipeline's families, and the response metrics it observes on each commit."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
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
        self.workers_lost = Counter(
            "rrn_signature_workers_lost_total",
            "Signature-checking worker processes that died (their batch was checked "
            "in the daemon, and new workers started).",
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
        self.alerts = AlertStateMetrics(r)
        self.responses = ResponseMetrics(r)
        self._by_kind: dict[str, Counter] = {}
        for reason in Reason:
            self.rejected.labels(reason=str(reason))

    def appended(self, kind: str, latency_s: float) -> None:
        """Count an event appended, and how long it took from receipt to durable."""
        child = self._by_kind.get(kind)
        if child is None:
            child = self._by_kind[kind] = self.ingested.labels(kind=kind_label(kind))
        child.inc()
        self.latency.observe(latency_s)

    def reject(self, reason: Reason, peer: str | None) -> None:
        """Count a refusal, and against the peer that delivered it, if one did."""
        self.rejected.labels(reason=str(reason)).inc()
        if peer is not None:
            self.peer_rejected.labels(peer=peer, reason=str(reason)).inc()


class AlertStateMetrics:
    """What the projection shows: open alerts, and alert events the rules refuse."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.open = Gauge(
            "rrn_alerts_open",
            "Alerts not yet resolved or cancelled, by severity, urgency and drill flag.",
            ["severity", "urgency", "exercise"],
            registry=r,
        )
        self.refused_total = Counter(
            "rrn_alert_transitions_refused_total",
            "Alert events the rules do not allow (kept in their chain as evidence, changing no "
            "view), by the member that signed them, kind and reason.",
            ["signer", "kind", "reason"],
            registry=r,
        )

    def refused(self, signer: str, kind: str, reason: str) -> None:
        """Count an alert event the rules refuse, against the member that signed it."""
        self.refused_total.labels(signer=signer, kind=kind, reason=reason).inc()

    def set_open(self, counts: Iterable[tuple[str, str, bool, int]]) -> None:
        """Replace the open-alert gauge with fresh counts (zeros included)."""
        seen = {(s, u, e): n for s, u, e, n in counts}
        for sev in Severity:
            for urg in Urgency:
                for exercise in (False, True):
                    n = seen.get((str(sev), str(urg), exercise), 0)
                    self.open.labels(
                        severity=str(sev), urgency=str(urg), exercise=str(exercise).lower()
                    ).set(n)
