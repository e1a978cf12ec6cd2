"""Erasing tombstoned events from the integrators' stream RRN_EVENTS (and its mirror).

Owns finding an event's message in the stream without a subject of its own: each
message carries its event id in a header, and the search walks headers only, on the
subject of its origin and kind, a minute either side of when the store recorded each
event (events stored close together share one walk), so its cost follows the
number of events erased, never the span of history a tombstone names. Messages
published before the per-kind subjects (one subject per event) are looked up on
that subject. See node/integrations/feeds.py for why erasing, not purging, leaves
no trace on disk. Runs in the background (`Eraser`), never on the ingest path.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from typing import Final

from nats.aio.client import Client as NatsClient
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from rrn.node.integrations.consumers import stop_if_cancelled
from rrn.node.integrations.feeds import ERRORS
from rrn.node.integrations.mirrors import erase_mirrored
from rrn.node.natsd.conf import EVENTS_STREAM
from rrn.node.store.db import Store
from rrn.protocol import subjects
from rrn.protocol.subjects import EVENT_ID_HEADER

__all__ = ["Eraser", "erase_from_stream"]

logger = logging.getLogger(__name__)


class Eraser:
    """Erases tombstoned events from the stream one tombstone at a time, in the
    background: the pipeline hands over their ids and goes on."""

    def __init__(
        self, nc: NatsClient, stream_nc: NatsClient, mirror_nc: NatsClient | None, store: Store
    ) -> None:
        self._args = (nc, stream_nc, mirror_nc, store)
        self._queue: asyncio.Queue[list[bytes]] = asyncio.Queue()

    def erase(self, ids: list[bytes]) -> None:
        self._queue.put_nowait(ids)

    async def run(self) -> None:
        """Erase what is handed over, until cancelled."""
        while True:
            stop_if_cancelled()  # before waiting: a request of the last erasure may have lost it
            ids = await self._queue.get()
            try:
                await erase_from_stream(*self._args, ids)
            except Exception:  # the next tombstone still gets its turn
                logger.exception("tombstone: erasing from the integrators' stream failed")


async def erase_from_stream(
    nc: NatsClient,
    stream_nc: NatsClient,
    mirror_nc: NatsClient | None,
    store: Store,
    ids: list[bytes],
) -> None:
    """Tombstoned payloads leave the integrators' stream too (erased on disk).

    `nc` published the events (flushed first, so they are in the stream),
    `stream_nc` keeps the stream (FEEDS) and `mirror_nc` its mirror (INTEG).
    """
    await nc.flush()
    js = stream_nc.jetstream()
    wanted: dict[str, dict[str, int]] = {}  # subject -> event id (hex) -> stored at (ms)
    for eid, place in (await store.find_events(ids)).items():
        subject = subjects.local_event(place.origin, place.kind)
        wanted.setdefault(subject, {})[eid.hex()] = place.received_ms
    gone = 0
    for subject, stored in wanted.items():
        try:
            seqs = [seq for window in _windows(stored) for seq in await _find(js, subject, window)]
            seqs += await _legacy(js, subject, set(stored) - {eid for eid, _ in seqs})
        except ERRORS as exc:
            logger.warning("tombstone: cannot search the integrators' stream: %s", exc)
            continue
        for _, seq in seqs:
            stop_if_cancelled()  # each delete is a request: a stop it lost ends the erasure
            with contextlib.suppress(*ERRORS):
                if await js.delete_msg(EVENTS_STREAM, seq):
                    await erase_mirrored(mirror_nc, EVENTS_STREAM, seq)
                    gone += 1
    logger.info("tombstone: deleted %d of %d events from the integrators' stream", gone, len(ids))


#: How far from when an event was stored its message is looked for in the stream
#: (it is published right after the commit; clocks of one machine).
_FIND_SLACK_MS: Final = 60_000
_FIND_BATCH: Final = 256


def _windows(stored: dict[str, int]) -> list[dict[str, int]]:
    """The events (id hex -> stored at, ms) in groups whose walks would overlap."""
    groups: list[dict[str, int]] = []
    last = None
    for eid, at in sorted(stored.items(), key=lambda item: item[1]):
        if last is None or at - last > 2 * _FIND_SLACK_MS:
            groups.append({})
        groups[-1][eid] = last = at
    return groups


async def _find(
    js: JetStreamContext, subject: str, stored: dict[str, int]
) -> list[tuple[str, int]]:
    """(id hex, stream sequence) of every message of these events on `subject`: a
    headers-only walk from a minute before the first was stored to a minute after
    the last, or the end of the stream."""
    start = min(stored.values()) / 1000 - _FIND_SLACK_MS / 1000
    until = max(stored.values()) / 1000 + _FIND_SLACK_MS / 1000
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_TIME,
        opt_start_time=datetime.datetime.fromtimestamp(max(0.0, start), datetime.UTC),
        ack_policy=AckPolicy.NONE,
        headers_only=True,
        inactive_threshold=30.0,
    )
    sub = await js.pull_subscribe(subject, stream=EVENTS_STREAM, config=config)
    found: list[tuple[str, int]] = []
    try:
        while True:
            try:
                msgs = await sub.fetch(_FIND_BATCH, timeout=1.0)
            except (TimeoutError, NatsTimeout):
                break  # nothing on the subject from there on
            meta = None
            for msg in msgs:
                meta = msg.metadata
                eid = (msg.headers or {}).get(EVENT_ID_HEADER, "")
                if eid in stored:
                    found.append((eid, meta.sequence.stream))
            if meta is None or meta.timestamp.timestamp() > until or meta.num_pending == 0:
                break
    finally:
        with contextlib.suppress(*ERRORS):
            await sub.unsubscribe()
    return found


async def _legacy(js: JetStreamContext, subject: str, left: set[str]) -> list[tuple[str, int]]:
    """Messages published on a subject of their own (`<subject>.<id hex>`, before
    the per-kind subjects): looked up one by one."""
    found: list[tuple[str, int]] = []
    for eid in left:
        try:
            msg = await js.get_last_msg(EVENTS_STREAM, f"{subject}.{eid}")
        except NotFoundError:
            continue
        if msg.seq is not None:
            found.append((eid, msg.seq))
    return found
