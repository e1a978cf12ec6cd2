"""The integrators' copies of the feeds: mirrors in their account (INTEG) of the
streams the daemon keeps in its own (FEEDS).

Owns making the mirrors and erasing from them. A mirror takes no subjects: nothing
said in INTEG — a reply subject an integrator names, a consumer's deliveries —
lands in it, so only the daemon writes what integrators read. A mirror keeps its
source's sequence numbers and does not follow its deletions, so what the daemon
erases from a feed it erases from the mirror too, by the same number.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.api import ExternalStream, StreamConfig, StreamSource
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NotFoundError

from rrn.node.natsd.conf import FEEDS, MIRROR_API, MIRROR_DELIVER

__all__ = ["drop_consumers", "erase_mirrored", "open_mirrors"]

logger = logging.getLogger(__name__)

#: How long an erase waits for a mirror to receive a message it has not copied yet.
_CATCH_UP_S: Final = 10.0
_ERRORS: Final = (TimeoutError, JetStreamError, NatsError)


def _mirror(name: str) -> StreamConfig:
    return StreamConfig(
        name=name,
        allow_direct=True,
        # A bucket is read as one only with a limit per key (nats-py's key_value).
        max_msgs_per_subject=2 if name.startswith("KV_") else -1,
        # A message that expires in the feed (a deleted alert's marker) must expire in
        # the mirror too: a mirror without this keeps it for ever.
        allow_msg_ttl=name.startswith("KV_"),
        mirror=StreamSource(
            name=name, external=ExternalStream(api=MIRROR_API, deliver=f"{MIRROR_DELIVER}.{name}")
        ),
    )


async def open_mirrors(nc: NatsClient) -> None:
    """Make a mirror of each feed (an earlier layout's stream of the same name, which
    took subjects in this account, is replaced: the mirror copies the feed anew)."""
    js = nc.jetstream()
    for name in FEEDS:
        try:
            try:
                if (await js.stream_info(name)).config.mirror is None:
                    await js.delete_stream(name)
            except NotFoundError:
                pass
            try:
                await js.add_stream(_mirror(name))
            except JetStreamError:
                await js.update_stream(_mirror(name))
        except _ERRORS as exc:
            logger.warning("no mirror %s for integrators: %s", name, type(exc).__name__)


async def erase_mirrored(nc: NatsClient | None, stream: str, seq: int) -> None:
    """Erase message `seq` from the mirror of `stream`, waiting for the mirror to copy
    it first if it has not yet (else it would arrive after, and stay)."""
    if nc is None:
        return
    js = nc.jetstream()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _CATCH_UP_S
    while True:
        try:
            await js.delete_msg(stream, seq)
        except _ERRORS:
            pass
        else:
            return
        try:
            copied = (await js.stream_info(stream)).state.last_seq
        except _ERRORS:
            copied = 0
        if copied >= seq or loop.time() > deadline:
            return  # gone already (or the mirror is away: it is logged below)
        await asyncio.sleep(0.1)


async def drop_consumers(nc: NatsClient | None, keep: set[str]) -> int:
    """Delete the durable consumers of revoked integrators (named after them), so a
    later integrator of the same name starts afresh; how many went. The server may be
    reloading its accounts as this runs: a pass that fails is tried again for a while,
    and what is left after that is logged."""
    if nc is None:
        return 0
    deadline = asyncio.get_running_loop().time() + _CATCH_UP_S
    dropped = 0
    while True:
        went, left = await _drop_pass(nc, keep)
        dropped += went
        if not left:
            return dropped
        if asyncio.get_running_loop().time() > deadline:
            logger.warning("%d consumers of revoked integrators are left in the feeds", left)
            return dropped
        await asyncio.sleep(0.2)


async def _drop_pass(nc: NatsClient, keep: set[str]) -> tuple[int, int]:
    """One pass over the mirrors: (consumers deleted, consumers or feeds not done)."""
    js = nc.jetstream()
    dropped = left = 0
    for stream in FEEDS:
        try:
            consumers = await js.consumers_info(stream)
        except NotFoundError:
            continue
        except _ERRORS:
            left += 1
            continue
        for info in consumers:
            durable = info.config.durable_name
            if not durable or durable in keep:
                continue
            try:
                await js.delete_consumer(stream, durable)
            except NotFoundError:
                continue
            except _ERRORS:
                left += 1
                continue
            dropped += 1
    return dropped, left
