"""A feed's long loops (and the eraser's) end when the daemon stops, even after a nats-py request swallowed
the cancellation (asyncio.wait_for on Python 3.11 returns the reply when it arrives with
the cancellation)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import pytest

from rrn.node.integrations import erasure
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


def test_the_eraser_stops_though_its_last_erasure_swallowed_the_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def go() -> None:
        began = asyncio.Event()

        async def erase_swallowing(*_: object) -> None:
            began.set()
            # The erasure's last request: its reply comes with the cancel, and wait_for
            # on 3.11 returns the reply.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.05)

        monkeypatch.setattr(erasure, "erase_from_stream", erase_swallowing)
        eraser = erasure.Eraser(*cast(Any, (None, None, None, None)))
        task = asyncio.ensure_future(eraser.run())
        eraser.erase([bytes(32)])
        await began.wait()
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        assert task.cancelled(), "the eraser waited for the next tombstone through the stop"

    asyncio.run(go())
