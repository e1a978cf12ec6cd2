"""The clock seam: every reading of wall time in the node goes through a Clock.

Owns `SystemClock` and `ManualClock` (for tests that must not sleep), `wait_set`,
the one way a background loop waits for a wake-up or a timeout, and `Slicer`, the
one way long work on the event loop hands it back in time. Wall
time only ever becomes a claimed, informational timestamp or a local deadline;
the validity of an event never depends on it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from rrn.protocol.errors import ConfigError, RrnError

__all__ = [
    "OFFSET_ENV",
    "Clock",
    "ManualClock",
    "Slicer",
    "SystemClock",
    "daemon_clock",
    "wait_set",
]

#: For tests of what a host with a wrong clock does (the chaos soak): the daemon's
#: wall clock runs this many seconds off the machine's. Unset in production.
OFFSET_ENV = "RRN_CLOCK_OFFSET_S"


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; whether it was set.

    Not `asyncio.wait_for(event.wait(), timeout)`: on Python 3.11 that swallows a
    cancellation arriving just as the event is set (CPython gh-86296), and a loop
    waiting that way can then never be stopped (seen: a daemon ignoring SIGTERM).
    `asyncio.timeout` tells its own timeout from a cancellation.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


class Clock(Protocol):
    """A source of wall time in milliseconds since the Unix epoch."""

    def now_ms(self) -> int: ...


class SystemClock:
    """The machine's clock (`offset_ms` off it, to play a host whose clock is wrong)."""

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


def daemon_clock() -> SystemClock:
    """The daemon's clock: the machine's, unless RRN_CLOCK_OFFSET_S says to run off it."""
    raw = os.environ.get(OFFSET_ENV, "")
    try:
        offset = float(raw) if raw else 0.0
    except ValueError as exc:
        raise ConfigError(f"{OFFSET_ENV}={raw!r} is not a number of seconds") from exc
    return SystemClock(int(offset * 1000))


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00Z
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        """Move time forward by `ms` milliseconds."""
        if ms < 0:
            raise ValueError("a clock never goes back")
        self._now += ms

    def set(self, now_ms: int) -> None:
        """Jump to an absolute time (forward or back, as a real clock may)."""
        self._now = now_ms


async def every(
    step: Callable[[], Awaitable[object]],
    wake: asyncio.Event,
    seconds: float | Callable[[], float],
    *,
    what: str,
    log: logging.Logger,
) -> None:
    """Run `step` now, then each time `wake` is set or `seconds` pass (a callable: asked
    after each step, for a step due sooner), until cancelled.
    A step that fails is logged (an rrn error as a warning, anything else with its
    traceback) and the loop goes on: one bad plan or drill must not stop a node."""
    while True:
        try:
            await step()
        except RrnError as exc:
            log.warning("%s failed: %s", what, exc)
        except Exception:
            log.exception("%s failed", what)
        await wait_set(wake, seconds() if callable(seconds) else seconds)
        wake.clear()


class Slicer:
    """Hands the event loop back after every `slice_s` of work, so a long pass never
    holds up the node's other tasks (requests, heartbeats, the pipeline).

    A task handed back runs again before the timers that fell due meanwhile: while
    several passes are sliced at once (a catch-up: ingest, projection, publishing,
    the feeds), a timer waits for a slice of each, so a slice is a small part of the
    100 ms a stall may last."""

    def __init__(self, slice_s: float = 0.005) -> None:
        self.slice_s = slice_s
        self._since = self._started = time.perf_counter()

    def elapsed_s(self) -> float:
        """Seconds since the pass started (or `restart`)."""
        return time.perf_counter() - self._started

    def restart(self) -> None:
        self._started = time.perf_counter()

    async def step(self) -> None:
        """Yield to the loop if this slice of work is used up."""
        if time.perf_counter() - self._since >= self.slice_s:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
