"""Finding stored events by id, without a random write per event stored.

Owns the two tables of migration 9 and how they are kept: `event_ids_new`, where
each committed event's id goes at the end (a table with no index: the pages it
writes are the last ones), and `event_ids`, keyed by the first eight bytes of the
id, into which the new ids are merged in runs of RUN, one slice of the key space
per commit. An event id is a hash: inserted one at a time into a key-ordered tree,
every event rewrote a page somewhere in it, and at a million events that was most
of a commit (docs/BENCHMARKS.md, issue 20). A run's ids land in key order, so a
merge rewrites each page of the tree at most once per run.

A lookup asks both tables: the tree by key, the new ids by reading them all (at
most a run and what arrived while it merged). A crash between slices loses
nothing: a run's ids leave `event_ids_new` only in the transaction of its last
slice, and a run merged again is ignored where it is already in the tree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple

import aiosqlite

from rrn.node.store.rows import fetch

__all__ = ["RUN", "SLICES", "IdMerge", "IdRuns", "Placed", "find_events", "id_key", "merge_sync"]

#: New ids merged into the tree together (a run): the tree's pages are rewritten
#: about once per run, and a lookup reads up to about this many new ids.
RUN: Final = 50_000
#: Commits a run's merge is spread over, one slice of the key space each.
SLICES: Final = 16
#: Ids bound in one lookup (twice each; sqlite allows 32,766 variables).
_IDS_PER_QUERY: Final = 500


class Placed(NamedTuple):
    """Where a stored event is, what kind it is, and when this node stored it."""

    origin: str
    epoch: int
    seq: int
    kind: str
    received_ms: int


@dataclass(frozen=True)
class IdMerge:
    """One slice of a run's merge: the new ids up to row `upto` whose keys fall in
    slice `part` of the key space (the last slice also removes the run)."""

    upto: int
    part: int

    @property
    def last(self) -> bool:
        return self.part == SLICES - 1


def id_key(event_id: bytes) -> bytes:
    """The tree's key of an event: the first eight bytes of its id (ids sharing them are
    told apart by the event row's whole id)."""
    return event_id[:8]


def _bounds(part: int) -> tuple[bytes, bytes | None]:
    """The keys of slice `part`: from its start, up to the next slice's (blobs compare
    byte by byte, so big-endian numbers keep their order)."""
    start = (part * 2**64 // SLICES).to_bytes(8, "big")
    end = None if part == SLICES - 1 else ((part + 1) * 2**64 // SLICES).to_bytes(8, "big")
    return start, end


def merge_sync(conn: sqlite3.Connection, merge: IdMerge) -> None:
    """Merge one slice of a run into the tree, in key order (inside a commit)."""
    start, end = _bounds(merge.part)
    conn.execute(
        "INSERT OR IGNORE INTO event_ids (key, origin, epoch, seq) "
        "SELECT key, origin, epoch, seq FROM event_ids_new WHERE rowid <= ? AND key >= ? "
        f"{'' if end is None else 'AND key < ? '}ORDER BY key, origin, epoch, seq",
        (merge.upto, start) if end is None else (merge.upto, start, end),
    )
    if merge.last:
        conn.execute("DELETE FROM event_ids_new WHERE rowid <= ?", (merge.upto,))


class IdRuns:
    """When the store's next commit merges a slice of new ids, and which (event loop
    only; the store's writer is its one user)."""

    def __init__(self) -> None:
        #: New ids not in a run yet (None: not counted since the store opened).
        self._unmerged: int | None = None
        self._run: IdMerge | None = None

    async def next(self, db: aiosqlite.Connection) -> IdMerge | None:
        """The slice the next commit merges, if a run is due or under way."""
        if self._unmerged is None:
            # After a restart, a run cut short is merged again (with what came since).
            self._unmerged = int((await fetch(db, "SELECT COUNT(*) FROM event_ids_new"))[0][0])
        if self._run is None and self._unmerged >= RUN:
            upto = (await fetch(db, "SELECT MAX(rowid) FROM event_ids_new"))[0][0]
            self._run, self._unmerged = IdMerge(int(upto), 0), 0
        return self._run

    def committed(self, stored: int, merged: IdMerge | None) -> None:
        """A commit stored `stored` events' ids and merged the slice `merged`."""
        if self._unmerged is not None:
            self._unmerged += stored
        if merged is not None:
            self._run = None if merged.last else IdMerge(merged.upto, merged.part + 1)


async def find_events(db: aiosqlite.Connection, ids: Iterable[bytes]) -> dict[bytes, Placed]:
    """Each of these events that is stored, by id."""
    wanted = set(ids)
    found: dict[bytes, Placed] = {}
    listed = sorted(wanted)
    for at in range(0, len(listed), _IDS_PER_QUERY):
        keys = sorted({id_key(i) for i in listed[at : at + _IDS_PER_QUERY]})
        marks = ", ".join("?" * len(keys))
        sql = " UNION ALL ".join(
            "SELECT e.id, e.origin, e.epoch, e.seq, e.kind, e.received_ms "
            f"FROM {table} JOIN events e ON e.origin = {table}.origin "
            f"AND e.epoch = {table}.epoch AND e.seq = {table}.seq WHERE {table}.key IN ({marks})"
            for table in ("event_ids", "event_ids_new")
        )
        for eid, origin, epoch, seq, kind, received in await fetch(db, sql, keys + keys):
            if (eid := bytes(eid)) in wanted:
                found[eid] = Placed(origin, int(epoch), int(seq), kind, int(received))
    return found
