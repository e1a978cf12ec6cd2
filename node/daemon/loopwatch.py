"""How long the daemon's event loop goes without turning: a probe that sleeps 50 ms and
records how late it wakes.

Owns `rrn_event_loop_stall_seconds_max` (the longest stall since the daemon started
serving) and the `rrn_event_loop_stall_seconds` histogram. A stall is time the loop
spent in one piece of work without yielding: every control request, heartbeat and
escalation step waits that long. Imports nothing of rrn.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from prometheus_client import CollectorRegistry, Gauge, Histogram

__all__ = ["LoopWatch"]

_PERIOD_S: Final = 0.05
_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class LoopWatch:
    """Measures how late the event loop wakes a task that sleeps `_PERIOD_S`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.worst = Gauge(
            "rrn_event_loop_stall_seconds_max",
            "Longest time the daemon's event loop went without turning since it started.",
            registry=registry,
        )
        self.stalls = Histogram(
            "rrn_event_loop_stall_seconds",
            "How late the event loop woke a task sleeping 50 ms, observed 20 times a second.",
            buckets=_BUCKETS,
            registry=registry,
        )
        self.worst_s = 0.0

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            start = time.monotonic()
            await asyncio.sleep(_PERIOD_S)
            late = max(0.0, time.monotonic() - start - _PERIOD_S)
            self.stalls.observe(late)
            if late > self.worst_s:
                self.worst_s = late
                self.worst.set(late)
