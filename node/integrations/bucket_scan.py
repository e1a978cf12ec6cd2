"""What the integrators' alert bucket holds, read in one pass in stream order.

After a restart the feed checks every open alert's record against the bucket (a
change committed just before a stop may not have reached it). Asked one key at a
time, that was ~67,000 reads in random order at a million events, and nats-server
kept the blocks they loaded: its memory nearly doubled (docs/BENCHMARKS.md, issue
20's fifth round). A pull consumer reads each block once, in order, a batch at a
time (a push consumer would have the server send the whole bucket into the
daemon's memory at once); the feed keeps a digest and a revision per record, in
one integer, not the record.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Final

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JetStreamError

__all__ = ["Held", "held_records", "holds"]

logger = logging.getLogger(__name__)

#: Each record the bucket holds, by alert id: its revision (stream sequence) shifted
#: past a 64-bit digest of its value.
Held = dict[bytes, int]

#: Records fetched at a time, and how long a fetch waits for them.
_BATCH: Final = 256
_FETCH_S: Final = 10.0
#: Headers that mark a message as a deletion, not a value (nats-py's KV names them).
_DELETED: Final = ("DEL", "PURGE")


def _digest(value: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "big")


def holds(held: Held, alert: bytes, value: bytes) -> tuple[bool, int | None]:
    """Whether the bucket holds `value` for `alert` already; the revision it holds."""
    found = held.get(alert)
    if found is None:
        return False, None
    return found & (2**64 - 1) == _digest(value), found >> 64


async def held_records(js: JetStreamContext, bucket: str) -> Held | None:
    """Every value a key-value bucket (keys: alert ids in hex) holds now, by alert; None
    if it cannot be read so (the caller then asks key by key)."""
    stream, prefix = f"KV_{bucket}", f"$KV.{bucket}."
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=60.0,
    )
    held: Held = {}
    try:
        sub = await js.pull_subscribe(f"{prefix}>", stream=stream, config=config)
        try:
            while True:
                msgs = await sub.fetch(_BATCH, timeout=_FETCH_S)
                for msg in msgs:
                    deleted = msg.headers and (
                        msg.headers.get("KV-Operation") in _DELETED
                        or "Nats-Marker-Reason" in msg.headers
                    )
                    if not deleted:
                        alert = bytes.fromhex(msg.subject[len(prefix) :])
                        held[alert] = msg.metadata.sequence.stream << 64 | _digest(msg.data)
                if not msgs or msgs[-1].metadata.num_pending == 0:
                    return held
        finally:
            await sub.unsubscribe()
    except (TimeoutError, JetStreamError, NatsError, ValueError) as exc:
        logger.warning("integrators' alert bucket not read in one pass: %s", type(exc).__name__)
        return None
