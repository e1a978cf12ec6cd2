"""Metrics of what the node does about alerts: coverage ahead, lingering alerts,
escalations it published, notices to its people, overdue asks.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from rrn.protocol.vocabulary import SupporterRole, Urgency

__all__ = ["AlertingMetrics"]


class AlertingMetrics:
    """The families the escalator, the notices and the coverage forecast observe."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.coverage_gap = Gauge(
            "rrn_coverage_gap_seconds",
            "Seconds with nobody on duty over the coming horizon (6h, 24h, 7d), by region or "
            "language.",
            ["horizon", "kind", "key"],
            registry=r,
        )
        self.on_duty = Gauge(
            "rrn_peer_on_duty",
            "1 while each other member's declared coverage has it on duty now (the ladder "
            "asks it first for its regions), else 0.",
            ["peer"],
            registry=r,
        )
        self.unclaimed_late = Gauge(
            "rrn_alerts_unclaimed_past_deadline",
            "Open alerts nobody holds although the first step of their ladder ran out, "
            "by urgency: alerts that linger.",
            ["urgency"],
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
        self.asks_overdue = Gauge(
            "rrn_asks_overdue",
            "Asks on open alerts past their deadline with no pledge or action by a member of "
            "the role asked, by that role.",
            ["role"],
            registry=r,
        )
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
