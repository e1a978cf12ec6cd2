"""How long the daemon's event loop goes without turning: a probe that sleeps 50 ms and
records how late it wakes.

Owns `rrn_event_loop_stall_seconds_max` (the longest stall since the daemon started
serving) and the `rrn_event_loop_stall_seconds` histogram. A stall is time the loop
spent in one piece of work without yielding: every control request, heartbeat and
escalation step waits that long. A thread beside the loop notes where the loop
stands once it is `_LOOK_LATE_S` late (and every `_LOOK_S` after), and a new longest
stall of `_NAMED_S` or more is logged with those places (code locations only: nothing
of an alert) and with who had the CPU meanwhile: the loop's own thread (work that did
not yield), another thread of the daemon (holding the interpreter's lock), or no one
of ours (the loop blocked in a system call, or the machine busy or its CPUs stolen).
Imports nothing of rrn.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
from collections import Counter
from types import FrameType
from typing import Final, NamedTuple

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
#: Frames named, innermost first; distinct places named per stall; threads named.
_FRAMES: Final = 4
_PLACES: Final = 2
_THREADS: Final = 3
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
        #: When the probe last slept, and where the loop stood in that sleep's stall
        #: (the looking thread appends; one object, swapped whole).
        self._sleep: tuple[float, list[str]] = (time.monotonic(), [])
        #: The clocks as the looking thread last read them while the probe slept (so
        #: before any stall that sleep ends in); read off the loop, as they cost.
        self._calm = _Clocks.now(threading.get_ident())
        #: The longest garbage collection since the probe last slept: (seconds, generation).
        self._collected = (0.0, 0)
        self._collecting = 0.0

    async def run(self) -> None:
        """Probe until cancelled."""
        stop = threading.Event()
        loop_thread = threading.get_ident()
        looker = threading.Thread(
            target=self._look, args=(loop_thread, stop), name="loopwatch", daemon=True
        )
        looker.start()
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                self._sleep, self._collected = (time.monotonic(), []), (0.0, 0)
                await asyncio.sleep(_PERIOD_S)
                slept, looks = self._sleep
                late = max(0.0, time.monotonic() - slept - _PERIOD_S)
                where = looks[:]  # at once: the looking thread may still append
                self.stalls.observe(late)
                if late > self.worst_s:
                    self.worst_s = late
                    self.worst.set(late)
                    if late >= _NAMED_S:
                        spent = self._calm.spent(_Clocks.now(loop_thread))
                        logger.warning(
                            "the event loop stalled %.0f ms (the longest yet), in: %s; %s",
                            late * 1000, self._place(where), spent,
                        )  # fmt: skip
        finally:
            gc.callbacks.remove(self._on_gc)
            stop.set()

    def _place(self, looked: list[str]) -> str:
        """Where the loop stood in the stall just ended, or the collection that held it."""
        took, generation = self._collected
        collected = f"garbage collection of generation {generation}, {took * 1000:.0f} ms"
        seen = Counter(looked)
        looks = sum(seen.values())
        where = "; or ".join(
            f"{place} ({n} of {looks} looks)" if n < looks else place
            for place, n in seen.most_common(_PLACES)
        )
        if took < _NAMED_S / 2:
            return where or "(not seen: the thread that looks did not run in it)"
        return collected if not where else f"{where}; {collected}"

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """Python's collector holds every thread: the thread beside the loop cannot look,
        so collections time themselves."""
        if phase == "start":
            self._collecting = time.monotonic()
        elif (took := time.monotonic() - self._collecting) > self._collected[0]:
            self._collected = (took, info.get("generation", -1))

    def _look(self, loop_thread: int, stop: threading.Event) -> None:
        """Beside the loop: where it stands while a sleep of the probe is `_LOOK_LATE_S`
        late or more."""
        calm_for = 0.0
        while not stop.wait(_LOOK_S):
            slept, where = self._sleep
            since = time.monotonic() - slept
            if since > _PERIOD_S + _LOOK_LATE_S:
                frame = sys._current_frames().get(loop_thread)
                if frame is not None:
                    where.append(_innermost(frame))
            elif since < _PERIOD_S and calm_for != slept:  # once per sleep, not yet due
                self._calm, calm_for = _Clocks.now(loop_thread), slept


class _Clocks(NamedTuple):
    """The wall clock, each thread's CPU time and the machine's CPU counters at once."""

    wall: float
    #: Thread ident -> (what to call it, CPU nanoseconds).
    threads: dict[int, tuple[str, int]]
    #: The process's CPU nanoseconds (threads that end take theirs out of `threads`).
    process: int
    #: The machine's CPU time (all CPUs, in ticks): (busy, stolen, total), if known.
    machine: tuple[int, int, int] | None

    @classmethod
    def now(cls, loop: int) -> _Clocks:
        """The clocks now (`loop`: the ident of the event loop's thread). A thread's CPU
        comes from /proc by its kernel id: a thread that ended is simply not there
        (pthread_getcpuclockid on a thread that has ended is undefined behaviour)."""
        threads: dict[int, tuple[str, int]] = {}
        for thread in threading.enumerate():
            if thread.ident is None or thread.native_id is None:
                continue
            try:
                with open(f"/proc/self/task/{thread.native_id}/schedstat", "rb") as f:
                    cpu = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):  # it ended; or no /proc
                continue
            threads[thread.ident] = ("the loop" if thread.ident == loop else _named(thread), cpu)
        return cls(time.monotonic(), threads, time.process_time_ns(), _machine())

    def spent(self, later: _Clocks) -> str:
        """Who had the CPU between these clocks and `later`, for the log."""
        wall_ms = (later.wall - self.wall) * 1000
        used = sorted(  # a thread born since counts from nothing
            ((cpu - self.threads.get(t, ("", 0))[1]) / 1e6, name)
            for t, (name, cpu) in later.threads.items()
        )[::-1]
        if (rest := (later.process - self.process) / 1e6 - sum(ms for ms, _ in used)) >= 1:
            used = sorted([*used, (rest, "other threads")])[::-1]
        named = ", ".join(f"{name} {ms:.0f} ms" for ms, name in used[:_THREADS] if ms >= 0.5)
        text = f"CPU in the last {wall_ms:.0f} ms: {named or 'no thread'}"
        if self.machine is not None and later.machine is not None:
            busy, stolen, total = (b - a for a, b in zip(self.machine, later.machine, strict=True))
            if total > 0:
                text += f"; the machine {busy / total:.0%} busy, {stolen / total:.0%} stolen"
        return text


def _named(thread: threading.Thread) -> str:
    """A thread's name, or its class's when it has only a number (aiosqlite's)."""
    kind = type(thread).__name__
    return thread.name if kind in ("Thread", "_MainThread") else f"{kind} {thread.name}"


def _machine() -> tuple[int, int, int] | None:
    """All CPUs' (busy, stolen, total) ticks from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat", "rb") as f:
            ticks = [int(t) for t in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(ticks) < 8:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = ticks
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + idle + iowait + steal


def _innermost(frame: FrameType | None) -> str:
    """The innermost frames of a stack, as file:line function (paths from the package);
    read from the frames alone, no source file opened, for the looks are many."""
    steps: list[str] = []
    while frame is not None and len(steps) < _FRAMES:
        code = frame.f_code
        steps.append(f"{_short(code.co_filename)}:{frame.f_lineno} {code.co_name}")
        frame = frame.f_back
    return " <- ".join(steps)


def _short(path: str) -> str:
    for root in ("/rrn/", "/site-packages/", "/lib/python"):
        if root in path:
            return path.rsplit(root, 1)[1]
    return path
