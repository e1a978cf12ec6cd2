"""The daemon's NATS connection, and the integrators' stream of verified events.

Owns connecting to the node's nats-server (reconnecting for ever, counted in
rrn_nats_connected), the JetStream stream RRN_EVENTS, erasing a tombstoned
event's copy from it, and closing the connection with a drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from prometheus_client import Gauge

from rrn.protocol.errors import ConfigError

__all__ = ["close", "connect"]

logger = logging.getLogger(__name__)


async def connect(
    url: str,
    user: str | None,
    password: str | None,
    *,
    name: str,
    connected: Gauge | None,
    tls: ssl.SSLContext | None = None,
) -> NatsClient:
    """A connection to the node's NATS server (ConfigError if none answers within 30 s);
    `connected` follows whether it is up; `tls` for a client port that takes TLS only."""
    try:
        opening = _open_connection(url, (user, password), name, connected, tls)
        nc = await asyncio.wait_for(opening, 30)
    except (TimeoutError, NatsError, OSError) as exc:
        raise ConfigError(f"cannot connect to NATS at {url}: {type(exc).__name__}") from exc
    if connected is not None:
        connected.set(1)
    return nc


async def _open_connection(
    url: str,
    credentials: tuple[str | None, str | None],
    name: str,
    connected: Gauge | None,
    tls: ssl.SSLContext | None,
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

    user, password = credentials
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
        tls=tls,
    )


async def close(nc: NatsClient, connected: Gauge | None) -> None:
    """Drain (let handlers finish), then close."""
    with contextlib.suppress(NatsError, asyncio.TimeoutError, OSError):
        await asyncio.wait_for(nc.drain(), 10)
    if not nc.is_closed:
        with contextlib.suppress(OSError):  # the server is gone already (it died)
            await nc.close()
    if connected is not None:
        connected.set(0)
