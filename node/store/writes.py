"""Writing the store: everything one ingest batch writes, in one transaction.

Owns the write path (node/store/db.py owns the reads): a Batch, and its commit
as one function on sqlite's thread, so a batch costs one hand-over between
threads instead of one per statement.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from typing import Final

import aiosqlite

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import AlertState, encode_state
from rrn.federation.chain import Head
from rrn.federation.limits import Usage
from rrn.node.store.ids import IdMerge, id_key, merge_sync
from rrn.node.store.rows import ChainKey, Position, RosterRow
from rrn.protocol.envelope import Event
from rrn.protocol.errors import StoreError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "Batch",
    "checkpoint",
    "commit_sync",
    "scrub",
]


#: How long a statement waits for another connection's lock before it fails (busy).
BUSY_TIMEOUT_MS: Final = 10_000
#: How long emptying the WAL waits for another connection's read to end: not the whole
#: BUSY_TIMEOUT_MS, which would hold every read and commit of the node behind one
#: `rrn log verify` (the caller tries again later instead).
_CHECKPOINT_WAIT_MS: Final = 100
#: Attempts of `scrub` (a hundredth of a second apart, each waiting _CHECKPOINT_WAIT_MS).
_SCRUB_TRIES: Final = 50
#: Rows per multi-row INSERT (x 11 columns stays under sqlite's 32766 variables).
_ROWS_PER_STATEMENT: Final = 250


@dataclass
class Batch:
    """Everything one ingest step writes, committed in a single transaction."""

    events: list[tuple[Event, int, int]] = field(default_factory=list)  # event, status, recv
    heads: dict[ChainKey, Head] = field(default_factory=dict)
    #: What each chain in `heads` claimed so far (stored with its head).
    usage: dict[ChainKey, Usage] = field(default_factory=dict)
    pending_add: list[tuple[Event, int]] = field(default_factory=list)
    pending_del: list[tuple[str, int, int, bytes]] = field(default_factory=list)
    forks: list[tuple[str, int, int, bytes, int]] = field(default_factory=list)
    #: Roster versions adopted in this batch.
    rosters: list[RosterRow] = field(default_factory=list)
    #: (org, epoch, last_seq): events of a cut-off key epoch past last_seq stop counting.
    cutoffs: list[tuple[str, int, int]] = field(default_factory=list)
    alerts: dict[bytes, AlertState] = field(default_factory=dict)
    #: The view of each alert in `alerts` (None: no view: not raised yet, or deleted).
    views: dict[bytes, AlertView | None] = field(default_factory=dict)
    #: Replace the whole alert projection with `alerts` (after a rebuild).
    replace_alerts: bool = False
    #: Must be on disk (fsync) when the commit returns: it holds own events.
    durable: bool = True
    #: Events whose payloads a tombstone deletes (their headers stay), by id: where each is.
    drop_payloads: dict[bytes, Position] = field(default_factory=dict)
    #: A slice of new event ids merged into their tree (node/store/ids.py); set by the store.
    ids_merge: IdMerge | None = None

    def __bool__(self) -> bool:
        return bool(
            self.events
            or self.pending_add
            or self.pending_del
            or self.forks
            or self.rosters
            or self.cutoffs
            or self.alerts
            or self.replace_alerts
            or self.drop_payloads
        )


def commit_sync(conn: sqlite3.Connection, batch: Batch) -> None:
    # Own events must survive a power cut before they are published (FULL). A
    # batch of other members' events only needs to survive a crash of the process
    # (NORMAL: in the OS's hands at commit); after a power cut, sync fetches them
    # again. The next FULL commit syncs everything before it.
    conn.execute(f"PRAGMA synchronous = {'FULL' if batch.durable else 'NORMAL'}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        _write(conn, batch)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _insert_rows(
    conn: sqlite3.Connection, head: str, tail: str, rows: list[tuple[object, ...]]
) -> None:
    """Insert many rows with multi-row VALUES statements.

    executemany steps sqlite once per row, releasing and re-taking the GIL each
    time; while other threads are busy (the event loop) every re-take can wait a
    full switch interval. One statement per chunk of rows takes it once per chunk.
    """
    if not rows:
        return
    width = len(rows[0])
    group = "(" + ", ".join("?" * width) + ")"
    for at in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[at : at + _ROWS_PER_STATEMENT]
        sql = head + ", ".join([group] * len(chunk)) + tail
        conn.execute(sql, [v for row in chunk for v in row])


def _write(conn: sqlite3.Connection, batch: Batch) -> None:
    if batch.ids_merge is not None:
        merge_sync(conn, batch.ids_merge)
    _write_events(conn, batch)
    _write_chains(conn, batch)
    for row in batch.rosters:
        conn.execute(
            "INSERT OR IGNORE INTO rosters (version, id, roster, cert, received_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            (row.version, row.id, row.roster, row.cert, 0),
        )
    _write_alerts(conn, batch)


def _write_events(conn: sqlite3.Connection, batch: Batch) -> None:
    """New events, and payloads a tombstone deleted."""
    _insert_rows(
        conn,
        "INSERT INTO events (id, origin, epoch, seq, kind, wall_ms, header, sig, payload, "
        "status, received_ms) VALUES ",
        "",
        [
            (
                e.id,
                e.header.origin,
                e.header.epoch,
                e.header.seq,
                e.header.kind,
                e.header.wall_ms,
                e.header_bytes,
                e.sig,
                e.payload,
                status,
                received,
            )
            for e, status, received in batch.events
        ],
    )
    _insert_rows(
        conn,
        "INSERT INTO event_ids_new (key, origin, epoch, seq) VALUES ",
        "",
        [(id_key(e.id), e.header.origin, e.header.epoch, e.header.seq) for e, _, _ in batch.events],
    )
    if batch.drop_payloads:
        conn.executemany(
            "UPDATE events SET payload = NULL WHERE origin = ? AND epoch = ? AND seq = ? "
            "AND id = ?",
            [(*place, eid) for eid, place in batch.drop_payloads.items()],
        )


def _write_chains(conn: sqlite3.Connection, batch: Batch) -> None:
    """Chain heads, events held behind gaps, fork proofs and cutoffs (events past them frozen)."""
    if batch.heads:
        conn.executemany(
            "INSERT INTO heads (origin, epoch, seq, id, wall_ms, day_events, day_bytes, "
            "roster_ver) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (origin, epoch) DO UPDATE "
            "SET seq = excluded.seq, id = excluded.id, wall_ms = excluded.wall_ms, "
            "day_events = excluded.day_events, day_bytes = excluded.day_bytes, "
            "roster_ver = excluded.roster_ver",
            [
                (o, ep, h.seq, h.id, *batch.usage.get((o, ep), Usage()))
                for (o, ep), h in batch.heads.items()
            ],
        )
    if batch.pending_add:
        conn.executemany(
            "INSERT OR IGNORE INTO pending (origin, epoch, seq, id, envelope, received_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (e.header.origin, e.header.epoch, e.header.seq, e.id, e.envelope(), r)
                for e, r in batch.pending_add
            ],
        )
    if batch.pending_del:
        conn.executemany(
            "DELETE FROM pending WHERE origin = ? AND epoch = ? AND seq = ? AND id = ?",
            batch.pending_del,
        )
    for origin, epoch, frozen_after, proof, detected in batch.forks:
        conn.execute(
            "INSERT OR IGNORE INTO fork_proofs (origin, epoch, frozen_after, proof, "
            "detected_ms) VALUES (?, ?, ?, ?, ?)",
            (origin, epoch, frozen_after, proof, detected),
        )
    for origin, epoch, last_seq in [(o, e, f) for o, e, f, _, _ in batch.forks] + batch.cutoffs:
        conn.execute(
            "UPDATE events SET status = 2 WHERE origin = ? AND epoch = ? AND seq > ?",
            (origin, epoch, last_seq),
        )


def _write_alerts(conn: sqlite3.Connection, batch: Batch) -> None:
    rows = [_alert_row(s, batch.views[a]) for a, s in batch.alerts.items()]
    if batch.replace_alerts:
        conn.execute("DELETE FROM alerts")
        # Laid out again in raise order, as the alerts were first heard of (migration 8).
        rows.sort(key=lambda row: (row[8] or 0, row[0]))
    _insert_rows(
        conn,
        "INSERT INTO alerts (id, state, status, origin, country, severity, urgency, "
        "exercise, raised_ms, updated_ms) VALUES ",
        " ON CONFLICT (id) DO UPDATE SET state = excluded.state, status = excluded.status, "
        "origin = excluded.origin, country = excluded.country, "
        "severity = excluded.severity, urgency = excluded.urgency, "
        "exercise = excluded.exercise, raised_ms = excluded.raised_ms, "
        "updated_ms = excluded.updated_ms",
        rows,
    )


def _alert_row(state: AlertState, v: AlertView | None) -> tuple[object, ...]:
    if v is None:
        return (state.alert, encode_state(state), None, None, None, None, None, None, None, None)
    return (
        state.alert,
        encode_state(state),
        str(v.status),
        v.origin,
        v.country,
        str(v.severity),
        str(v.urgency),
        int(v.exercise),
        v.raised_ms,
        v.updated_ms,
    )


async def checkpoint(db: aiosqlite.Connection) -> bool:
    """Fold the WAL into the database and empty it, so deleted pages leave the disk;
    whether it was done: not while another connection reads (busy, after waiting
    _CHECKPOINT_WAIT_MS for it), nor while a statement of this connection is part-read
    (locked; the store's reads never are, node/store/rows.py `fetch`). Then the caller
    tries again later. One hand-over to the connection's thread, the pragma's answer
    read to its end.
    """
    try:
        return bool(await db._execute(_checkpoint_sync, db._conn))  # type: ignore[no-untyped-call]
    except sqlite3.OperationalError as exc:
        # By the primary code: sqlite reports extended ones (SQLITE_BUSY_RECOVERY, ...).
        if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_BUSY):
            return False
        raise


def _checkpoint_sync(conn: sqlite3.Connection) -> bool:
    conn.execute(f"PRAGMA busy_timeout = {_CHECKPOINT_WAIT_MS}")
    try:
        rows = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return not rows or rows[0][0] == 0


async def scrub(db: aiosqlite.Connection) -> None:
    """`checkpoint` now, waiting a moment for a read in the way to end (what a user
    deleted must leave the disk before we say it did)."""
    for _ in range(_SCRUB_TRIES):
        if await checkpoint(db):
            return
        await asyncio.sleep(0.01)
    raise StoreError("could not empty the store's write-ahead log (kept busy by reads); try again")
