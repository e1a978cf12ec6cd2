"""Loops of nats-py requests: reading a stream with a durable pull consumer, and
stopping a loop whose cancellation nats-py lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig
from nats.js.client import JetStreamContext

__all__ = ["pulled", "stop_if_cancelled"]

#: How long one fetch waits on a quiet stream before asking again.
_WAIT_S: Final = 5.0


async def pulled(
    js: JetStreamContext, stream: str, config: ConsumerConfig, batch: int
) -> AsyncIterator[Msg]:
    """The messages of a durable pull consumer, for ever: a quiet stream (a fetch that
    times out) is the normal case, and while NATS reconnects the fetch waits."""
    durable = config.durable_name
    sub = await js.pull_subscribe(">", durable=durable, stream=stream, config=config)
    while True:
        stop_if_cancelled()  # a fetch waits with asyncio.wait_for too
        try:
            msgs = await sub.fetch(batch, timeout=_WAIT_S)
        except (TimeoutError, NatsTimeout):
            continue
        except NatsError:
            await asyncio.sleep(1)  # reconnecting: nats-py resubscribes
            continue
        for msg in msgs:
            yield msg


def stop_if_cancelled() -> None:
    """Raise the cancellation a nats-py request swallowed. Its requests wait with
    `asyncio.wait_for`, which on Python 3.11 loses a cancellation that arrives as the
    reply does; a loop of thousands of them then outlived the daemon's stop (the
    refill of a bucket at a million events ran on for minutes and the node was killed)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
