"""The daemon's NATS connection, and the integrators' stream of verified events.

Owns connecting to the node's nats-server (reconnecting for ever, counted in
rrn_nats_connected), the JetStream stream RRN_EVENTS, erasing a tombstoned
event's copy from it, and closing the connection with a drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.api import StreamConfig
from nats.js.errors import Error as JetStreamError
from prometheus_client import Gauge

from rrn.node.home.config import NatsConfig
from rrn.node.natsd.conf import EVENTS_STREAM
from rrn.node.store.db import Store
from rrn.protocol import subjects
from rrn.protocol.errors import ConfigError

__all__ = ["close", "connect", "erase_from_stream", "open_events_stream"]

logger = logging.getLogger(__name__)


async def connect(
    url: str, user: str | None, password: str | None, *, name: str, connected: Gauge | None
) -> NatsClient:
    """A connection to the node's NATS server (ConfigError if none answers within 30 s);
    `connected` follows whether it is up."""
    try:
        nc = await asyncio.wait_for(_open_connection(url, user, password, name, connected), 30)
    except (TimeoutError, NatsError, OSError) as exc:
        raise ConfigError(f"cannot connect to NATS at {url}: {type(exc).__name__}") from exc
    if connected is not None:
        connected.set(1)
    return nc


async def _open_connection(
    url: str, user: str | None, password: str | None, name: str, connected: Gauge | None
) -> NatsClient:
    async def disconnected() -> None:
        if connected is not None:
            connected.set(0)
        logger.warning("disconnected from NATS (%s)", name)

    async def reconnected() -> None:
        if connected is not None:
            connected.set(1)
        logger.info("reconnected to NATS (%s)", name)

    async def error(exc: Exception) -> None:
        logger.warning("NATS error: %s", type(exc).__name__)

    return await nats.connect(
        url,
        user=user,
        password=password,
        name=name,
        no_echo=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        allow_reconnect=True,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
    )


async def close(nc: NatsClient, connected: Gauge | None) -> None:
    """Drain (let handlers finish), then close."""
    with contextlib.suppress(NatsError, asyncio.TimeoutError):
        await asyncio.wait_for(nc.drain(), 10)
    if not nc.is_closed:
        await nc.close()
    if connected is not None:
        connected.set(0)


async def open_events_stream(nc: NatsClient, config: NatsConfig) -> None:
    """The JetStream stream of verified events that integrators consume."""
    stream = StreamConfig(
        name=EVENTS_STREAM,
        subjects=["rrn.local.events.>"],
        max_bytes=config.stream_max_mb * 1024 * 1024,
        max_age=config.stream_max_age_days * 86400.0,
        duplicate_window=120.0,
    )
    js = nc.jetstream()
    try:
        try:
            await js.add_stream(stream)
        except JetStreamError:
            await js.update_stream(stream)
    except (TimeoutError, JetStreamError, NatsError) as exc:
        logger.warning("no JetStream stream for integrators: %s", type(exc).__name__)


async def erase_from_stream(
    nc: NatsClient, stream_nc: NatsClient, store: Store, ids: list[bytes]
) -> None:
    """Tombstoned payloads leave the integrators' stream too (erased on disk).

    `nc` published the events (flushed first, so they are in the stream), and
    `stream_nc` keeps the stream (the integrators' account on the embedded server).
    """
    await nc.flush()
    js = stream_nc.jetstream()
    gone = 0
    for eid, (origin, kind) in (await store.event_kinds(ids)).items():
        try:
            msg = await js.get_last_msg(EVENTS_STREAM, subjects.local_event(origin, kind, eid))
            if msg.seq is not None and await js.delete_msg(EVENTS_STREAM, msg.seq):
                gone += 1
        except (TimeoutError, JetStreamError, NatsError):
            continue  # not in the stream (aged out, or the stream was unavailable)
    logger.info("tombstone: deleted %d of %d events from the integrators' stream", gone, len(ids))
