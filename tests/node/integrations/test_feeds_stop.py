"""A feed's long loops end when the daemon stops, even after a nats-py request swallowed
the cancellation (asyncio.wait_for on Python 3.11 returns the reply when it arrives with
the cancellation)."""

from __future__ import annotations

import asyncio
import contextlib

from rrn.node.integrations.consumers import stop_if_cancelled


def test_a_swallowed_cancellation_still_stops_the_loop() -> None:
    async def go() -> None:
        turns, give_up = 0, False

        async def writer() -> None:
            nonlocal turns, give_up
            while not give_up:  # (so a failing run ends too)
                stop_if_cancelled()
                turns += 1
                # A request whose reply comes with the cancel: wait_for on 3.11 returns it.
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(0.01)

        task = asyncio.ensure_future(writer())
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        give_up = True
        assert task.cancelled(), "the loop outlived the stop"
        assert turns < 50

    asyncio.run(go())
