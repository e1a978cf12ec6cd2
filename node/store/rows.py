"""What the store's tables hold, as Python values: stored events and roster versions.

Owns the row shapes shared by the reads (node/store/db.py) and the writes
(node/store/writes.py), and the status codes of stored events.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from rrn.protocol.envelope import Event, decode_header, event_id

__all__ = [
    "APPLIED",
    "FROZEN",
    "UNAPPLIED",
    "ChainKey",
    "EventRow",
    "RawRow",
    "RosterRow",
    "event_of",
]


#: Status of a stored event: applied to the views, kept unapplied, or frozen past a fork
#: proof or a cutoff.
APPLIED: Final = 0
UNAPPLIED: Final = 1
FROZEN: Final = 2

ChainKey = tuple[str, int]


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
