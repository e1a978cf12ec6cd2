"""The integrators' feeds, kept in their own NATS account on the embedded server.

Owns four JetStream objects (docs/OPERATIONS.md, "Integrators"; docs/asyncapi.json):

- the stream RRN_EVENTS: every verified event, its signed envelope, once stored;
- the key-value bucket RRN_ALERTS: each alert's current state as this node sees it
  and may show it (a restricted alert this member is in the audience of appears
  opened; sealed details never), JSON, keyed by alert id; deleted with the alert;
- the stream RRN_NOTICES: every notice (targeted, pool, escalated, unclaimed),
  kept, so a consumer that was away gets what it missed;
- the key-value bucket RRN_NETWORK: the roster certificates, by version, so a
  client verifies events against the roster from the network id alone.

The daemon's user in that account (natsd/conf.py STREAM_USER) writes them all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.api import KeyValueConfig, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import Error as JetStreamError
from nats.js.kv import KeyValue

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import OPEN_STATUSES, AlertState
from rrn.federation.authority import Authority
from rrn.node.alerting.escalator import Routing
from rrn.node.home.config import NatsConfig
from rrn.node.natsd.conf import EVENTS_STREAM, NOTICES_MB
from rrn.node.ops.types import AlertInfo, alert_info
from rrn.node.store.db import Store
from rrn.protocol import subjects
from rrn.protocol.subjects import LOCAL_ALERTS_PREFIX, LOCAL_EVENTS_PREFIX

__all__ = [
    "ALERTS_BUCKET",
    "EVENTS_STREAM",
    "NETWORK_BUCKET",
    "NOTICES_STREAM",
    "AlertRecord",
    "Feeds",
    "erase_from_stream",
]

logger = logging.getLogger(__name__)

ALERTS_BUCKET: Final = "RRN_ALERTS"
NETWORK_BUCKET: Final = "RRN_NETWORK"
NOTICES_STREAM: Final = "RRN_NOTICES"
_ERRORS: Final = (TimeoutError, JetStreamError, NatsError)


class AlertRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A value of RRN_ALERTS: the alert as `rrn alert show --json` shows it (version 1)."""

    v: int = 1
    alert: AlertInfo


class Feeds:
    """Keeps the integrators' JetStream objects current."""

    def __init__(
        self,
        *,
        nc: NatsClient,
        config: NatsConfig,
        routing: Callable[[AlertView], Awaitable[Routing]],
    ) -> None:
        self.nc = nc
        self.config = config
        self.routing = routing
        self.alerts: KeyValue | None = None
        self.network: KeyValue | None = None
        self._queue: asyncio.Queue[tuple[AlertState, AlertView | None]] = asyncio.Queue()

    async def open(self, store: Store, authority: Authority) -> None:
        """Make (or update) the streams and buckets; fill what is missing."""
        js = self.nc.jetstream()
        for name, prefix, mb in (
            (EVENTS_STREAM, LOCAL_EVENTS_PREFIX, self.config.stream_max_mb),
            (NOTICES_STREAM, LOCAL_ALERTS_PREFIX, NOTICES_MB),
        ):
            stream = StreamConfig(
                name=name,
                subjects=[f"{prefix}.>"],
                max_bytes=mb * 1024 * 1024,
                max_age=self.config.stream_max_age_days * 86400.0,
                duplicate_window=120.0,
            )
            await _stream(js, stream)
        try:
            self.alerts = await js.create_key_value(KeyValueConfig(bucket=ALERTS_BUCKET, history=1))
            self.network = await js.create_key_value(
                KeyValueConfig(bucket=NETWORK_BUCKET, history=1)
            )
        except _ERRORS as exc:
            logger.warning("no key-value buckets for integrators: %s", type(exc).__name__)
            return
        for row in await store.rosters():
            await self.roster(row.version, row.cert)
        empty = (await self.alerts.status()).values == 0
        # A new bucket gets every alert; after a restart, the open ones are put again
        # (a change committed just before a stop may not have reached the bucket).
        statuses = None if empty else OPEN_STATUSES
        for v in await store.alerts(statuses=statuses, limit=1 << 30, authority=authority):
            await self._put(v)

    async def roster(self, version: int, cert: bytes) -> None:
        """A roster version this node adopted."""
        if self.network is not None:
            try:
                await self.network.put(f"roster.{version}", cert)
            except _ERRORS as exc:
                logger.warning(
                    "roster %d not in the integrators' bucket: %s", version, type(exc).__name__
                )

    def alerts_changed(self, changes: list[tuple[AlertState, AlertView | None]] | None) -> None:
        """Committed alert changes (None: everything was judged again, see `refill`)."""
        for change in changes or []:
            self._queue.put_nowait(change)

    async def run(self) -> None:
        """Write changes in the order they were committed, until cancelled."""
        while True:
            state, v = await self._queue.get()
            try:
                if v is not None:
                    await self._put(v)
                elif state.erased is not None and self.alerts is not None:
                    await self.alerts.purge(state.alert.hex())
            except _ERRORS as exc:
                logger.warning("alert state not in the integrators' bucket: %s", type(exc).__name__)
            except Exception:  # a feed must never stop the node
                logger.exception("alert state not in the integrators' bucket")

    async def _put(self, v: AlertView) -> None:
        if self.alerts is None:
            return
        record = AlertRecord(alert=alert_info(v, await self.routing(v)))
        await self.alerts.put(v.alert.hex(), msgspec.json.encode(record))


async def _stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        try:
            await js.add_stream(config)
        except JetStreamError:
            await js.update_stream(config)
    except _ERRORS as exc:
        logger.warning(
            "no JetStream stream %s for integrators: %s", config.name, type(exc).__name__
        )


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
        except _ERRORS:
            continue  # not in the stream (aged out, or the stream was unavailable)
    logger.info("tombstone: deleted %d of %d events from the integrators' stream", gone, len(ids))
