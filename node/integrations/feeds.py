"""The integrators' feeds, kept in the daemon's FEEDS account on the embedded server.

Owns four JetStream objects (docs/OPERATIONS.md, "Integrators"; docs/asyncapi.json):

- the stream RRN_EVENTS: every verified event, its signed envelope, once stored;
- the key-value bucket RRN_ALERTS: each alert's current state as this node sees it
  and may show it (a restricted alert this member is in the audience of appears
  opened; sealed details never), JSON, keyed by alert id; deleted with the alert,
  erased once it has been closed longer than events are kept (ageing.py);
- the stream RRN_NOTICES: every notice (targeted, pool, escalated, unclaimed),
  kept, so a consumer that was away gets what it missed; deleted with the alert;
- the key-value bucket RRN_NETWORK: the roster certificates, by version, so a
  client verifies events against the roster from the network id alone.

The daemon's user in its FEEDS account (natsd/conf.py STREAM_USER) writes them
all, and its webhooks and Alertmanager read the notices there; integrators read
mirrors in their own account (node/integrations/mirrors.py).

A tombstone must leave no trace of the alert on disk, and JetStream overwrites a
message's bytes only when it is deleted on its own ("erased"); what a stream drops
by its limits or by a purge stays in the block file until the block goes. So the
alert bucket keeps two values per key: each put is followed by erasing the value it
replaced, and a deleted alert's values and notices are erased one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    StreamConfig,
)
from nats.js.client import JetStreamContext
from nats.js.errors import Error as JetStreamError
from nats.js.errors import KeyNotFoundError, NoKeysError, NotFoundError
from nats.js.kv import KeyValue

from rrn.federation.alert_view import AlertView, view
from rrn.federation.alerts import AlertState
from rrn.federation.authority import Authority
from rrn.node.alerting.escalator import Routing
from rrn.node.alerting.notices import NOTICE_TYPES
from rrn.node.home.config import NatsConfig
from rrn.node.integrations.ageing import SWEEP_EVERY_S, Ageing
from rrn.node.integrations.bucket_scan import Held, held_records, holds
from rrn.node.integrations.consumers import stop_if_cancelled
from rrn.node.integrations.mirrors import erase_mirrored, open_mirrors
from rrn.node.natsd.conf import EVENTS_STREAM, NOTICES_MB
from rrn.node.ops.types import AlertInfo, alert_info
from rrn.node.pipeline.queue import Pending
from rrn.node.store.db import Store
from rrn.protocol.subjects import (
    LOCAL_ALERTS_PREFIX,
    LOCAL_EVENTS_PREFIX,
    local_notice,
)

if TYPE_CHECKING:  # the integrators' client imports this module: not the pipeline
    from rrn.node.pipeline.ingest import AlertChanges

__all__ = [
    "ALERTS_BUCKET",
    "ERRORS",
    "EVENTS_STREAM",
    "NETWORK_BUCKET",
    "NOTICES_STREAM",
    "AlertRecord",
    "Feeds",
]

logger = logging.getLogger(__name__)

ALERTS_BUCKET: Final = "RRN_ALERTS"
_ALERTS_STREAM: Final = f"KV_{ALERTS_BUCKET}"
NETWORK_BUCKET: Final = "RRN_NETWORK"
NOTICES_STREAM: Final = "RRN_NOTICES"
ERRORS: Final = (TimeoutError, JetStreamError, NatsError)
#: In the store's meta once the alert bucket held every alert (a first fill, which
#: takes minutes at a million events, ended).
_FILLED_KEY: Final = "feeds.alerts_filled"
#: Alert states read at a time to bring the alert bucket up to date.
_REFILL_SLICE: Final = 200
#: More notices than one alert can have (one per type and level or step).
_MAX_ERASE: Final = 1000


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
        publisher: NatsClient,
        mirror: NatsClient | None,
        config: NatsConfig,
        routing: Callable[[AlertView], Awaitable[Routing]],
        current: Callable[[bytes], Awaitable[tuple[AlertState | None, AlertView | None]]],
        authority: Callable[[], Authority],
        ageing: Ageing,
    ) -> None:
        self.nc = nc
        #: The daemon's own connection, which publishes the notices.
        self.publisher = publisher
        #: The daemon's user in the integrators' account, which keeps the mirrors.
        self.mirror = mirror
        self.config = config
        self.routing = routing
        self.alerts: KeyValue | None = None
        self.network: KeyValue | None = None
        #: An alert's committed state and view, as readers may see them now.
        self._current = current
        #: Alerts changed and not yet written (only ids: node/pipeline/queue.py).
        self._pending = Pending()
        #: The rules in force, to view alerts by.
        self._authority = authority
        self._store: Store | None = None
        #: Bring the alert bucket up to date (every alert, or the open ones): set by
        #: `open`, and by a rebuild of every alert.
        self._refill: bool | None = None
        #: When closed alerts' records leave the bucket; a sweep is due (at start).
        self.ageing = ageing
        self._sweep = True

    async def open(self, store: Store) -> None:
        """Make (or update) the streams and buckets; fill what is missing."""
        self._store = store
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
        await _stream(js, _alerts_bucket())
        if self.mirror is not None:
            await open_mirrors(self.mirror)
        try:
            self.alerts = await js.key_value(ALERTS_BUCKET)
            self.network = await js.create_key_value(
                KeyValueConfig(bucket=NETWORK_BUCKET, history=1)
            )
        except ERRORS as exc:
            logger.warning("no key-value buckets for integrators: %s", type(exc).__name__)
            return
        for row in await store.rosters():
            await self.roster(row.version, row.cert)
        filled = await store.get_meta(_FILLED_KEY) is not None  # a first fill ended
        self._refill = not filled or (await self.alerts.status()).values == 0

    async def roster(self, version: int, cert: bytes) -> None:
        """A roster version this node adopted."""
        if self.network is not None:
            try:
                await self.network.put(f"roster.{version}", cert)
            except ERRORS as exc:
                logger.warning(
                    "roster %d not in the integrators' bucket: %s", version, type(exc).__name__
                )

    def alerts_changed(self, changes: AlertChanges) -> None:
        """Committed alert changes, each alert written once more as it is when its turn
        comes; None: every alert was judged again (a rebuild), so every record is
        brought up to date."""
        if changes is None:
            self._refill = True
            self._pending.poke()
        for state, _ in changes or []:
            self._pending.add(state.alert)

    async def run(self) -> None:
        """Bring the bucket up to date, then write changes in the order they were
        committed, until cancelled."""
        while True:
            stop_if_cancelled()
            if self._refill is not None and self._store is not None:
                every, self._refill = self._refill, None
                try:
                    await self._bring_up_to_date(self._store, every=every)
                except ERRORS as exc:
                    logger.warning("integrators' alert bucket not refilled: %s", type(exc).__name__)
            if self._sweep and self._store is not None and self.alerts is not None:
                self._sweep = False
                try:
                    await self.ageing.sweep(self._store, self._drop)
                except ERRORS as exc:
                    logger.warning("integrators' alert bucket not swept: %s", type(exc).__name__)
            stop_if_cancelled()  # before waiting: a request above may have lost a stop
            alert = await self._pending.next()
            if alert is None:
                continue
            try:
                state, v = await self._current(alert)
                if v is not None and self.ageing.aged(v):
                    await self._drop(alert.hex(), closing=v)  # closed long ago (a catch-up)
                elif v is not None:
                    await self._put(v)
                elif state is not None and state.erased is not None:
                    await self._forget(alert.hex())
            except ERRORS as exc:
                logger.warning("alert state not in the integrators' bucket: %s", type(exc).__name__)
            except Exception:  # a feed must never stop the node
                logger.exception("alert state not in the integrators' bucket")

    async def _bring_up_to_date(self, store: Store, *, every: bool) -> None:
        """A new bucket (or one whose first fill did not end) gets every alert, as does
        one after a rebuild; after a restart, each open alert whose record differs (a
        change committed just before a stop may not have reached it). In slices of
        states read by id, in the background: alerts changed meanwhile are written
        after, as they are then, so the newest wins."""
        written, seen, cutoff = 0, 0, self.ageing.cutoff_ms()
        # Records of aged alerts a bucket already holds (a rebuild's fill) are erased.
        empty = self.alerts is None or (await self.alerts.status()).values == 0
        held = None if every or empty else await held_records(self.nc.jetstream(), ALERTS_BUCKET)
        async for ids in store.alert_id_pages() if every else store.open_alert_id_pages():
            seen += len(ids)
            for start in range(0, len(ids), _REFILL_SLICE):
                states = await store.alert_states(ids[start : start + _REFILL_SLICE])
                for state in states.values():
                    stop_if_cancelled()
                    v = view(state, self._authority())
                    if v is not None and self.ageing.aged(v, cutoff):
                        if not empty:
                            await self._drop(v.alert.hex(), closing=v)
                        continue
                    if v is None:
                        continue
                    if await self._put(v, unless_same=True, held=held):
                        written += 1
        logger.info("integrators' alert bucket: %d of %d alerts written", written, seen)
        if every:
            await self.ageing.mark(store, cutoff)
            await store.set_meta(_FILLED_KEY, b"1")

    async def sweep_every(self, period_s: float = SWEEP_EVERY_S) -> None:
        """Sweep aged records out of the alert bucket every `period_s`, until cancelled."""
        while True:
            await asyncio.sleep(period_s)
            self._sweep = True
            self._pending.poke()

    async def _drop(self, alert: str, closing: AlertView | None = None) -> int:
        """Erase an alert's record (its values, or a delete marker) without leaving a
        marker; how many messages were erased. With `closing` (the alert as it is
        now), a record that says otherwise (watchers last saw it open) is written
        first, so that watchers see the alert close before its record leaves."""
        stop_if_cancelled()
        if closing is not None and self.alerts is not None:
            try:
                held = (await self.alerts.get(alert)).value is not None
            except KeyNotFoundError:
                held = False
            if held:
                await self._put(closing, unless_same=True)
        erased = 0
        while self.alerts is not None and erased < 3:  # two values per key, or a marker
            try:
                entry: KeyValue.Entry | None = await self.alerts.get(alert)
            except KeyNotFoundError as exc:
                entry = exc.entry  # a delete marker, or nothing
            if entry is None or entry.revision is None:
                break
            await self._erase(_ALERTS_STREAM, entry.revision)
            erased += 1
        return erased

    async def _put(
        self, v: AlertView, *, unless_same: bool = False, held: Held | None = None
    ) -> bool:
        """Write an alert's record (unless it holds it already); whether it was written.
        `held`: what the bucket holds, read in one pass (else the record is asked for)."""
        if self.alerts is None:
            return False
        key = v.alert.hex()
        data = msgspec.json.encode(AlertRecord(alert=alert_info(v, await self.routing(v))))
        same, revision = await self._holding(self.alerts, v, data, held)
        if unless_same and same:
            return False
        await self.alerts.put(key, data)
        if revision is not None:
            await self._erase(_ALERTS_STREAM, revision)
        return True

    @staticmethod
    async def _holding(
        bucket: KeyValue, v: AlertView, data: bytes, held: Held | None
    ) -> tuple[bool, int | None]:
        """Whether the bucket holds `data` for the alert already; the revision it holds."""
        if held is not None:
            return holds(held, v.alert, data)
        try:
            entry = await bucket.get(v.alert.hex())
        except KeyNotFoundError:  # new, or deleted (a marker: nothing to erase)
            return False, None
        return entry.value == data, entry.revision

    async def _erase(self, stream: str, seq: int) -> None:
        """Erase a message of a feed, and its copy in the integrators' mirror."""
        await self.nc.jetstream().delete_msg(stream, seq)
        await erase_mirrored(self.mirror, stream, seq)

    async def _forget(self, alert: str) -> None:
        """A deleted alert: its values, its notices and its dead letters are erased."""
        await self.publisher.flush()  # a notice sent just before is in the stream first
        js = self.nc.jetstream()
        if self.alerts is not None:
            try:
                history = await self.alerts.history(alert)
            except NoKeysError:
                history = []
            for entry in history:
                if entry.operation is None and entry.revision is not None:
                    await self._erase(_ALERTS_STREAM, entry.revision)
            # A marker, so watchers learn it is gone (also those that kept a record
            # which has since aged out of the bucket), for as long as a closed alert's
            # record is kept: then nats-server drops it, from the mirror too.
            try:
                await js.publish(
                    f"$KV.{ALERTS_BUCKET}.{alert}",
                    headers={"KV-Operation": "DEL"},
                    msg_ttl=self.ageing.keep_ms // 1000,
                )
            except JetStreamError:  # a bucket that could not be made to expire messages
                await self.alerts.delete(alert)  # a marker kept for ever, not none at all
        erased = 0
        for kind in NOTICE_TYPES:
            for seq in await _erase_subject(js, NOTICES_STREAM, local_notice(kind, alert)):
                await erase_mirrored(self.mirror, NOTICES_STREAM, seq)
                erased += 1
        dead = await self._store.dead_letters.forget(alert) if self._store is not None else 0
        logger.info(
            "deleted alert %s: erased %d notices, %d dead letters", alert[:12], erased, dead
        )


def _alerts_bucket() -> StreamConfig:
    """RRN_ALERTS as a key-value bucket is made, but with two values per key (the
    value a put replaced is still there for _put to erase), erasing allowed, and
    messages that expire (a deleted alert's marker)."""
    return StreamConfig(
        name=_ALERTS_STREAM,
        subjects=[f"$KV.{ALERTS_BUCKET}.>"],
        max_msgs_per_subject=2,
        discard=DiscardPolicy.NEW,
        allow_rollup_hdrs=True,
        allow_direct=True,
        deny_delete=False,
        allow_msg_ttl=True,
        duplicate_window=120.0,
    )


async def _stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        try:
            await js.add_stream(config)
        except JetStreamError:
            await js.update_stream(config)
    except ERRORS as exc:
        logger.warning(
            "no JetStream stream %s for integrators: %s", config.name, type(exc).__name__
        )


async def _erase_subject(js: JetStreamContext, stream: str, subject: str) -> list[int]:
    """Erase every message on `subject` (a notice subject holds a handful); their
    sequence numbers."""
    erased: list[int] = []
    for _ in range(_MAX_ERASE):
        try:
            msg = await js.get_last_msg(stream, subject)
        except NotFoundError:
            break
        if msg.seq is None or not await js.delete_msg(stream, msg.seq):
            break
        erased.append(msg.seq)
    return erased
