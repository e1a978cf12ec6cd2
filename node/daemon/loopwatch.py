"""How long the daemon's event loop goes without turning: a probe that sleeps 50 ms and
records how late it wakes.

Owns `rrn_event_loop_stall_seconds_max` (the longest stall since the daemon started
serving) and the `rrn_event_loop_stall_seconds` histogram. A stall is time the loop
spent in one piece of work without yielding: every control request, heartbeat and
escalation step waits that long. A thread beside the loop notes where the loop
stands once it is `_LOOK_LATE_S` late, and a new longest stall of `_NAMED_S` or more
is logged with that place (code locations only: nothing of an alert). Imports
nothing of rrn.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback
from typing import Final

from prometheus_client import CollectorRegistry, Gauge, Histogram

__all__ = ["LoopWatch"]

logger = logging.getLogger(__name__)

_PERIOD_S: Final = 0.05
#: A stall this long, if the longest yet, is logged with where the loop stood.
_NAMED_S: Final = 0.1
#: How late the loop is when the thread beside it looks where it stands: early enough
#: in a stall just over _NAMED_S to be seen several times over.
_LOOK_LATE_S: Final = 0.04
#: How often the thread beside the loop looks at it.
_LOOK_S: Final = 0.01
#: Frames named, innermost first.
_FRAMES: Final = 4
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
        #: When the probe last slept, and where the loop stood during a stall (the thread).
        self._slept = time.monotonic()
        self._where: str | None = None
        #: The longest garbage collection since the probe last slept: (seconds, generation).
        self._collected = (0.0, 0)
        self._collecting = 0.0

    async def run(self) -> None:
        """Probe until cancelled."""
        stop = threading.Event()
        looker = threading.Thread(
            target=self._look, args=(threading.get_ident(), stop), name="loopwatch", daemon=True
        )
        looker.start()
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                self._slept, self._where, self._collected = time.monotonic(), None, (0.0, 0)
                await asyncio.sleep(_PERIOD_S)
                late = max(0.0, time.monotonic() - self._slept - _PERIOD_S)
                self.stalls.observe(late)
                if late > self.worst_s:
                    self.worst_s = late
                    self.worst.set(late)
                    if late >= _NAMED_S:
                        logger.warning(
                            "the event loop stalled %.0f ms (the longest yet), in: %s",
                            late * 1000, self._place(),
                        )  # fmt: skip
        finally:
            gc.callbacks.remove(self._on_gc)
            stop.set()

    def _place(self) -> str:
        """Where the loop stood in the stall just ended, or the collection that held it."""
        took, generation = self._collected
        collected = f"garbage collection of generation {generation}, {took * 1000:.0f} ms"
        if took < _NAMED_S / 2:
            unseen = (_NAMED_S - _LOOK_LATE_S) * 1000
            return (
                self._where or f"(not seen: no thread of the process ran for {unseen:.0f} ms of it)"
            )
        return collected if self._where is None else f"{self._where}; {collected}"

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """Python's collector holds every thread: the thread beside the loop cannot look,
        so collections time themselves."""
        if phase == "start":
            self._collecting = time.monotonic()
        elif (took := time.monotonic() - self._collecting) > self._collected[0]:
            self._collected = (took, info.get("generation", -1))

    def _look(self, loop_thread: int, stop: threading.Event) -> None:
        """Beside the loop: where it stands once a sleep of the probe is `_LOOK_LATE_S` late."""
        while not stop.wait(_LOOK_S):
            if self._where is None and time.monotonic() - self._slept > _PERIOD_S + _LOOK_LATE_S:
                frame = sys._current_frames().get(loop_thread)
                if frame is not None:
                    self._where = _innermost(frame)


def _innermost(frame: object) -> str:
    """The innermost frames of a stack, as file:line function (paths from the package)."""
    steps = traceback.extract_stack(frame)[-_FRAMES:]  # type: ignore[arg-type]
    return " <- ".join(f"{_short(s.filename)}:{s.lineno} {s.name}" for s in reversed(steps))


def _short(path: str) -> str:
    for root in ("/rrn/", "/site-packages/", "/lib/python"):
        if root in path:
            return path.rsplit(root, 1)[1]
    return path
