"""Erasing tombstoned events from the integrators' stream RRN_EVENTS (and its mirror).

Owns finding an event's message in the stream without a subject of its own: each
message carries its event id in a header, and the search walks headers only, from
when the store recorded the event, on the subject of its origin and kind (see
node/integrations/feeds.py for why erasing, not purging, leaves no trace on disk).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from typing import Final

from nats.aio.client import Client as NatsClient
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from rrn.node.integrations.feeds import ERRORS
from rrn.node.integrations.mirrors import erase_mirrored
from rrn.node.natsd.conf import EVENTS_STREAM
from rrn.node.store.db import Store
from rrn.protocol import subjects
from rrn.protocol.subjects import EVENT_ID_HEADER

__all__ = ["erase_from_stream"]

logger = logging.getLogger(__name__)


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
    for eid, (origin, kind, stored_ms) in (await store.event_places(ids)).items():
        wanted.setdefault(subjects.local_event(origin, kind), {})[eid.hex()] = stored_ms
    gone = 0
    for subject, stored in wanted.items():
        try:
            seqs = await _find(js, subject, stored)
        except ERRORS as exc:
            logger.warning("tombstone: cannot search the integrators' stream: %s", exc)
            continue
        for seq in seqs:
            with contextlib.suppress(*ERRORS):
                if await js.delete_msg(EVENTS_STREAM, seq):
                    await erase_mirrored(mirror_nc, EVENTS_STREAM, seq)
                    gone += 1
    logger.info("tombstone: deleted %d of %d events from the integrators' stream", gone, len(ids))


#: How far from when an event was stored its message is looked for in the stream
#: (it is published right after the commit; clocks of one machine).
_FIND_SLACK_S: Final = 60.0
_FIND_BATCH: Final = 256


async def _find(js: JetStreamContext, subject: str, stored: dict[str, int]) -> list[int]:
    """The stream sequences of these events (id hex -> when stored, ms) on `subject`: a
    headers-only walk from the earliest one's store time, until each is found or the
    walk passes the latest one's (bounded by time, not by the size of the history)."""
    start = min(stored.values()) / 1000 - _FIND_SLACK_S
    until = max(stored.values()) / 1000 + _FIND_SLACK_S
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_TIME,
        opt_start_time=datetime.datetime.fromtimestamp(max(0.0, start), datetime.UTC),
        ack_policy=AckPolicy.NONE,
        headers_only=True,
        inactive_threshold=30.0,
    )
    sub = await js.pull_subscribe(subject, stream=EVENTS_STREAM, config=config)
    found: list[int] = []
    left = set(stored)
    try:
        while left:
            try:
                msgs = await sub.fetch(_FIND_BATCH, timeout=1.0)
            except (TimeoutError, NatsTimeout):
                break  # the end of the stream
            for msg in msgs:
                meta = msg.metadata
                eid = (msg.headers or {}).get(EVENT_ID_HEADER, "")
                if eid in left:
                    left.discard(eid)
                    found.append(meta.sequence.stream)
                if meta.timestamp.timestamp() > until:
                    left.clear()
    finally:
        with contextlib.suppress(*ERRORS):
            await sub.unsubscribe()
    return found
