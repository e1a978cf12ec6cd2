"""A stall of the daemon's event loop is measured and, when it is the longest yet and
long enough to matter, logged with the code the loop was running: an operator
reading the log learns what held every request, not only that something did."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import sys
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from rrn.node.daemon import loopwatch
from rrn.node.daemon.loopwatch import LoopWatch


def _hold_the_loop_in_a_careless_step(seconds: float) -> None:
    time.sleep(seconds)  # work that forgot to yield: what the watch must name


def _compute_without_yielding(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _cpu(message: str) -> dict[str, float]:
    """The CPU time each thread named in a stall's line used, in ms."""
    _, spent = message.split("CPU in the ", 1)
    named = spent.split(": ", 1)[1].split(";")[0]
    return {m[1]: float(m[2]) for m in re.finditer(r"([\w ()-]+?) (\d+) ms", named)}


async def _watched(caplog: pytest.LogCaptureFixture, stall: object) -> list[str]:
    """The lines a watch logs around `stall()`, called from the loop between two sleeps."""
    watch = LoopWatch(CollectorRegistry())
    caplog.set_level(logging.WARNING, logger="rrn.node.daemon.loopwatch")
    probe = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.15)
        stall()  # type: ignore[operator]
        await asyncio.sleep(0.15)
    finally:
        probe.cancel()
        await asyncio.gather(probe, return_exceptions=True)
    return [r.getMessage() for r in caplog.records]


async def test_a_long_stall_is_logged_with_the_code_that_held_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    watch = LoopWatch(registry)
    caplog.set_level(logging.WARNING, logger="rrn.node.daemon.loopwatch")
    probe = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.2)  # turning freely: nothing worth a line
        assert not caplog.records
        _hold_the_loop_in_a_careless_step(0.4)
        await asyncio.sleep(0.2)
        _hold_the_loop_in_a_careless_step(0.2)  # shorter than the longest: not logged again
        await asyncio.sleep(0.2)
    finally:
        probe.cancel()
        await asyncio.gather(probe, return_exceptions=True)
    (record,) = caplog.records
    assert "_hold_the_loop_in_a_careless_step" in record.getMessage()
    assert "test_loopwatch.py" in record.getMessage()
    worst = registry.get_sample_value("rrn_event_loop_stall_seconds_max")
    assert worst is not None and worst >= 0.3


async def test_a_stall_in_a_garbage_collection_is_named_as_one(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector holds every thread, the one that looks included: the collection
    times itself, and the stall is put down to it."""
    monkeypatch.setattr(loopwatch, "_NAMED_S", 0.02)
    heap = [[i] for i in range(1_000_000)]  # a million containers for the collector to walk
    watch = LoopWatch(CollectorRegistry())
    caplog.set_level(logging.WARNING, logger="rrn.node.daemon.loopwatch")
    probe = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.1)
        started = time.monotonic()
        gc.collect()
        took = time.monotonic() - started
        await asyncio.sleep(0.1)
    finally:
        probe.cancel()
        await asyncio.gather(probe, return_exceptions=True)
    assert len(heap) == 1_000_000
    if took < 0.02:
        pytest.fail(f"the collection took {took * 1000:.0f} ms: too fast to test the naming")
    logged = [r.getMessage() for r in caplog.records]
    assert any("garbage collection of generation 2" in m for m in logged), logged


async def test_a_stall_says_whether_the_loop_worked_or_waited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Work that does not yield used the loop's thread's CPU; a blocking call used none:
    the operator learns which of the two held the node."""
    (worked,) = await _watched(caplog, lambda: _compute_without_yielding(0.3))
    assert "_compute_without_yielding" in worked
    assert _cpu(worked)["the loop"] >= 250, worked
    caplog.clear()
    (waited,) = await _watched(caplog, lambda: _hold_the_loop_in_a_careless_step(0.3))
    assert _cpu(waited).get("the loop", 0) < 100, waited


async def test_a_stall_from_another_thread_holding_the_interpreter_names_that_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A thread of the daemon that keeps the interpreter's lock holds the loop as surely
    as the loop's own work: the line names that thread as the one with the CPU."""
    switching, done = sys.getswitchinterval(), threading.Event()

    def greedy() -> None:
        _compute_without_yielding(0.3)
        done.wait(5)  # alive when the line is written, to be named

    def start_a_greedy_thread() -> None:
        sys.setswitchinterval(5.0)  # the lock is handed over only when the holder waits
        threading.Thread(target=greedy, name="greedy", daemon=True).start()

    try:
        (line,) = await _watched(caplog, start_a_greedy_thread)
    finally:
        sys.setswitchinterval(switching)
        done.set()
    spent = _cpu(line)
    assert spent["greedy"] >= 250, line
    assert spent.get("the loop", 0) < 100, line
