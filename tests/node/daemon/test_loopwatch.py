"""A stall of the daemon's event loop is measured and, when it is the longest yet and
long enough to matter, logged with the code the loop was running: an operator
reading the log learns what held every request, not only that something did."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import CollectorRegistry

from rrn.node.daemon.loopwatch import LoopWatch


def _hold_the_loop_in_a_careless_step(seconds: float) -> None:
    time.sleep(seconds)  # work that forgot to yield: what the watch must name


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
