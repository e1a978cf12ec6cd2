"""Alerts that linger: unclaimed past their first deadline, and asks overdue.

Owns the values of `rrn_alerts_unclaimed_past_deadline` and `rrn_asks_overdue`
(node/alerting/metrics.py): what each open alert adds is kept, and changed only when
the escalator looks at the alert, so the gauges never need a walk over every open
alert; and when what an alert adds changes by time alone (its first deadline, an
ask's deadline), so the escalator looks at it then.
"""

from __future__ import annotations

from collections import Counter

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import AlertStatus
from rrn.federation.asks import ask_status
from rrn.node.alerting.metrics import AlertingMetrics
from rrn.protocol.roster import Roster

__all__ = ["Lingering"]

#: What one alert adds: its urgency if it is unclaimed past its first deadline, and
#: the role asked by each of its overdue asks.
Share = tuple[str | None, tuple[str, ...]]


class Lingering:
    """The gauges of alerts that linger (unclaimed past their first deadline, asks
    overdue), kept as each alert is looked at, so they never need a walk over every
    open alert."""

    def __init__(self, metrics: AlertingMetrics) -> None:
        self.metrics = metrics
        self._of: dict[bytes, Share] = {}
        #: One copy of each share (most alerts add the same few).
        self._shares: dict[Share, Share] = {}
        self._late: Counter[str] = Counter()
        self._overdue: Counter[str] = Counter()

    def look(
        self, v: AlertView, first_ms: int, roster: Roster, now_ms: int
    ) -> tuple[bool, int | None]:
        """Count an open alert as it is now: whether it is unclaimed past its first
        deadline (`first_ms`), and when what it adds may change by time alone."""
        held = v.status is AlertStatus.CLAIMED
        late = not held and now_ms >= first_ms
        asks = ask_status(v, roster, now_ms)
        overdue = tuple(str(a.ask.to) for a in asks if a.overdue)
        self.set(v.alert, str(v.urgency) if late else None, overdue)
        wake = [first_ms] if not held and now_ms < first_ms else []
        wake += [
            a.ask.deadline_ms
            for a in asks
            if a.ask.deadline_ms is not None
            and a.ask.deadline_ms > now_ms
            and not (a.pledged_by or a.done_by)
        ]
        return late, min(wake, default=None)

    def set(self, alert: bytes, late: str | None, overdue: tuple[str, ...]) -> None:
        """What `alert` adds now."""
        self.drop(alert)
        if late is None and not overdue:
            return
        share = self._shares.setdefault((late, overdue), (late, overdue))
        self._of[alert] = share
        if late is not None:
            self._late[late] += 1
        self._overdue.update(overdue)

    def drop(self, alert: bytes) -> None:
        """`alert` adds nothing any more (it ended)."""
        old = self._of.pop(alert, None)
        if old is not None:
            if old[0] is not None:
                self._late[old[0]] -= 1
            self._overdue.subtract(old[1])

    def publish(self) -> None:
        """Set the gauges (zeros included)."""
        self.metrics.set_unclaimed_late(dict(self._late))
        self.metrics.set_asks_overdue(dict(self._overdue))
