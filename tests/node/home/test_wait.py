"""The background loops' wait: a wake-up, a timeout, and a stop that always stops."""

from __future__ import annotations

import asyncio

import pytest

from rrn.node.home.clock import wait_set


async def test_it_tells_a_wake_up_from_a_timeout() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_set(event, 10) is True


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_a_loop_cancelled_as_it_is_woken_stops(turns: int) -> None:
    # A loop cancelled in the same moment as its event is set must stop. With
    # asyncio.wait_for on Python 3.11 the cancellation is lost for turns 0-2 and
    # the loop runs on forever: a daemon that ignored SIGTERM in CI.
    event = asyncio.Event()

    async def loop() -> None:
        while True:
            await wait_set(event, 10)
            event.clear()

    task = asyncio.create_task(loop())
    for _ in range(2):
        await asyncio.sleep(0)
    event.set()
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done and task.cancelled(), "the loop ignored its cancellation"
