"""What the store's tables hold, as Python values: stored events and roster versions.

Owns the row shapes shared by the reads (node/store/db.py) and the writes
(node/store/writes.py), the status codes of stored events, and `fetch`, which every
read of the store's connection goes through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import aiosqlite

from rrn.protocol.envelope import Event, decode_header, event_id

__all__ = [
    "APPLIED",
    "FROZEN",
    "UNAPPLIED",
    "ChainKey",
    "EventRow",
    "Position",
    "RawRow",
    "RosterRow",
    "event_of",
    "fetch",
]


#: Status of a stored event: applied to the views, kept unapplied, or frozen past a fork
#: proof or a cutoff.
APPLIED: Final = 0
UNAPPLIED: Final = 1
FROZEN: Final = 2

ChainKey = tuple[str, int]
#: An event's place in its chain: origin, epoch, seq.
Position = tuple[str, int, int]


class EventRow(NamedTuple):
    """A stored event and what the node did with it."""

    event: Event
    status: int
    received_ms: int


class RawRow(NamedTuple):
    """A row of the events table as stored, nothing decoded (what an audit checks)."""

    origin: str
    epoch: int
    seq: int
    id: bytes
    kind: str
    wall_ms: int
    header: bytes
    sig: bytes
    payload: bytes | None
    status: int


class RosterRow(NamedTuple):
    """A stored roster version."""

    version: int
    id: bytes
    roster: bytes
    cert: bytes


def event_of(header: bytes, sig: bytes, payload: bytes | None) -> Event:
    header = bytes(header)
    return Event(
        event_id(header),
        decode_header(header),
        header,
        bytes(sig),
        None if payload is None else bytes(payload),
    )


async def fetch(db: aiosqlite.Connection, sql: str, args: Sequence[Any] = ()) -> list[Any]:
    """Every row of one read, the statement run to its end in one hand-over to the
    connection's thread.

    Reads and commits share one connection and its thread. A read handed over in two
    steps (`execute`, which steps to the first row, then `fetchall`) lets a commit
    queued in between update the row the statement stands on, and sqlite then returns
    that row twice: `rrn alert show` once found its alert's short id matched by two
    alerts, the same one twice. Running to the end also never leaves a statement
    half-read in the way of the writer's COMMIT.
    """
    return list(await db.execute_fetchall(sql, args))
