"""The node's sqlite store: signed history, chain heads, rosters and projections.

Owns every SQL statement the daemon runs. One aiosqlite connection, WAL,
synchronous=FULL (a commit is on disk before it returns, so an own-chain append
is durable before it is published). Writes go through `commit`, one transaction
per batch. Imports protocol and federation, never the daemon.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NamedTuple

import aiosqlite

from rrn.federation.alerts import (
    OPEN_STATUSES,
    AlertState,
    AlertView,
    decode_state,
    encode_state,
    view,
)
from rrn.federation.chain import Head
from rrn.node.store.migrations import MIGRATIONS
from rrn.protocol.envelope import Event, decode_header, event_id
from rrn.protocol.errors import StoreError

__all__ = [
    "APPLIED",
    "FROZEN",
    "UNAPPLIED",
    "Batch",
    "EventRow",
    "RosterRow",
    "Store",
    "open_store",
]

#: Rows per multi-row INSERT (x 11 columns stays under sqlite's 32766 variables).
_ROWS_PER_STATEMENT: Final = 250

APPLIED: Final = 0
UNAPPLIED: Final = 1
FROZEN: Final = 2

ChainKey = tuple[str, int]
#: SQL list of the open statuses (fixed strings from federation.alerts, not input).
_OPEN_SQL: Final = "(" + ", ".join(f"'{st}'" for st in sorted(OPEN_STATUSES)) + ")"


class EventRow(NamedTuple):
    """A stored event and what the node did with it."""

    event: Event
    status: int
    received_ms: int


class RosterRow(NamedTuple):
    """A stored roster version."""

    version: int
    id: bytes
    roster: bytes
    cert: bytes


@dataclass
class Batch:
    """Everything one ingest step writes, committed in a single transaction."""

    events: list[tuple[Event, int, int]] = field(default_factory=list)  # event, status, recv
    heads: dict[ChainKey, Head] = field(default_factory=dict)
    pending_add: list[tuple[Event, int]] = field(default_factory=list)
    pending_del: list[tuple[str, int, int, bytes]] = field(default_factory=list)
    forks: list[tuple[str, int, int, bytes, int]] = field(default_factory=list)
    #: Roster versions adopted in this batch.
    rosters: list[RosterRow] = field(default_factory=list)
    #: (org, epoch, last_seq): events of a cut-off key epoch past last_seq stop counting.
    cutoffs: list[tuple[str, int, int]] = field(default_factory=list)
    alerts: dict[bytes, AlertState] = field(default_factory=dict)
    #: Views of `alerts` already computed by the caller (computed here if absent).
    views: dict[bytes, AlertView | None] = field(default_factory=dict)
    #: Replace the whole alert projection with `alerts` (after a rebuild).
    replace_alerts: bool = False
    #: Must be on disk (fsync) when the commit returns: it holds own events.
    durable: bool = True
    #: Events whose payloads a tombstone deletes (their headers stay).
    drop_payloads: list[bytes] = field(default_factory=list)

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


@contextlib.asynccontextmanager
async def open_store(
    path: Path, *, create: bool = False, readonly: bool = False
) -> AsyncIterator[Store]:
    """Open (or with `create`, make) the store at `path`, migrated to the latest schema.

    With `readonly` nothing is written (no migration), so a running daemon can
    keep its store while the CLI audits it.
    """
    if not create and not path.exists():
        raise StoreError(f"no store at {path} (was this home made with 'rrn init'?)")
    if create and not path.exists():
        # The store holds alert metadata: owner-only, like the keys.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        db = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    try:
        store = Store(db, path)
        await store._setup(readonly=readonly)
        yield store
    finally:
        await db.close()


class Store:
    """Typed access to one node's sqlite database."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    async def _setup(self, *, readonly: bool) -> None:
        try:
            await self._db.execute("PRAGMA busy_timeout = 10000")
            # Deleted content (tombstoned payloads) is overwritten, not left in free pages.
            await self._db.execute("PRAGMA secure_delete = ON")
            if not readonly:
                await self._db.execute("PRAGMA journal_mode = WAL")
                await self._db.execute("PRAGMA synchronous = FULL")
                await self._migrate()
            elif await self._user_version() != len(MIGRATIONS):
                raise StoreError(f"store at {self.path} has an unexpected schema version")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store at {self.path} is not a usable database: {exc}") from exc

    async def _user_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _migrate(self) -> None:
        current = await self._user_version()
        if current > len(MIGRATIONS):
            raise StoreError(
                f"store at {self.path} has schema {current}, newer than this rrn knows "
                f"({len(MIGRATIONS)}); upgrade rrn"
            )
        for number in range(current, len(MIGRATIONS)):
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(MIGRATIONS[number]):
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {number + 1}")
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise

    # -- meta and rosters ---------------------------------------------------------

    async def get_meta(self, key: str) -> bytes | None:
        """A value from the meta table."""
        async with self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return bytes(row[0]) if row else None

    async def set_meta(self, key: str, value: bytes) -> None:
        """Set a meta value (its own transaction)."""
        await self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def put_roster(self, row: RosterRow, received_ms: int) -> None:
        """Record an accepted roster version (idempotent)."""
        await self._db.execute(
            "INSERT OR IGNORE INTO rosters (version, id, roster, cert, received_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            (row.version, row.id, row.roster, row.cert, received_ms),
        )

    async def rosters(self) -> list[RosterRow]:
        """Every accepted roster version, oldest first."""
        async with self._db.execute(
            "SELECT version, id, roster, cert FROM rosters ORDER BY version"
        ) as cur:
            rows = await cur.fetchall()
        return [RosterRow(int(r[0]), bytes(r[1]), bytes(r[2]), bytes(r[3])) for r in rows]

    # -- chains -------------------------------------------------------------------

    async def heads(self) -> dict[ChainKey, Head]:
        """The head of every chain."""
        async with self._db.execute("SELECT origin, epoch, seq, id FROM heads") as cur:
            rows = await cur.fetchall()
        return {(str(r[0]), int(r[1])): Head(int(r[2]), bytes(r[3])) for r in rows}

    async def head_events(self, kind: str) -> list[Event]:
        """The events of this kind that are the head of their chain."""
        async with self._db.execute(
            "SELECT e.header, e.sig, e.payload FROM heads h JOIN events e "
            "ON e.origin = h.origin AND e.epoch = h.epoch AND e.seq = h.seq WHERE e.kind = ?",
            (kind,),
        ) as cur:
            rows = await cur.fetchall()
        return [_event(r[0], r[1], r[2]) for r in rows]

    async def event_at(self, origin: str, epoch: int, seq: int) -> Event | None:
        """The stored event at a chain position, or None."""
        async with self._db.execute(
            "SELECT header, sig, payload FROM events WHERE origin = ? AND epoch = ? AND seq = ?",
            (origin, epoch, seq),
        ) as cur:
            row = await cur.fetchone()
        return _event(row[0], row[1], row[2]) if row else None

    async def envelopes(
        self, origin: str, epoch: int, from_seq: int, *, limit: int, max_bytes: int
    ) -> tuple[list[bytes], bool]:
        """Envelopes of one chain from `from_seq` on, and whether more were left out."""
        async with self._db.execute(
            "SELECT header, sig, payload FROM events WHERE origin = ? AND epoch = ? AND seq >= ? "
            "ORDER BY seq LIMIT ?",
            (origin, epoch, from_seq, limit + 1),
        ) as cur:
            rows = list(await cur.fetchall())
        found: list[bytes] = []
        size = 0
        for r in rows[:limit]:
            envelope = _event(r[0], r[1], r[2]).envelope()
            if found and size + len(envelope) > max_bytes:
                return found, True
            found.append(envelope)
            size += len(envelope)
        return found, len(rows) > limit

    async def events_of_kinds(self, kinds: Iterable[str]) -> list[Event]:
        """Applied events of the given kinds, in chain order (for small kinds only)."""
        wanted = list(kinds)
        async with self._db.execute(
            f"SELECT header, sig, payload FROM events WHERE status = 0 AND kind IN "
            f"({','.join('?' * len(wanted))}) ORDER BY origin, epoch, seq",
            wanted,
        ) as cur:
            rows = await cur.fetchall()
        return [_event(r[0], r[1], r[2]) for r in rows]

    async def pending(self) -> list[tuple[bytes, int]]:
        """Envelopes held behind gaps, with their receive times."""
        async with self._db.execute("SELECT envelope, received_ms FROM pending") as cur:
            rows = await cur.fetchall()
        return [(bytes(r[0]), int(r[1])) for r in rows]

    async def freezes(self) -> dict[ChainKey, int]:
        """For each chain with a fork proof, the last seq still applied."""
        async with self._db.execute(
            "SELECT origin, epoch, MIN(frozen_after) FROM fork_proofs GROUP BY origin, epoch"
        ) as cur:
            rows = await cur.fetchall()
        return {(str(r[0]), int(r[1])): int(r[2]) for r in rows}

    async def fork_proofs(self) -> list[tuple[str, int, int, bytes]]:
        """Every stored fork proof: origin, epoch, frozen_after, proof bytes."""
        async with self._db.execute(
            "SELECT origin, epoch, frozen_after, proof FROM fork_proofs ORDER BY origin, epoch"
        ) as cur:
            rows = await cur.fetchall()
        return [(str(r[0]), int(r[1]), int(r[2]), bytes(r[3])) for r in rows]

    async def count_events(self) -> int:
        """How many events are stored."""
        async with self._db.execute("SELECT COUNT(*) FROM events") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def iter_events(
        self, *, applied_only: bool = False, chunk: int = 2000
    ) -> AsyncIterator[EventRow]:
        """Every stored event in chain order (origin, epoch, seq)."""
        status = "AND status = 0" if applied_only else ""
        last: tuple[str, int, int] = ("", 0, 0)
        while True:
            async with self._db.execute(
                "SELECT header, sig, payload, status, received_ms, origin, epoch, seq "
                f"FROM events WHERE (origin, epoch, seq) > (?, ?, ?) {status} "
                "ORDER BY origin, epoch, seq LIMIT ?",
                (*last, chunk),
            ) as cur:
                rows = list(await cur.fetchall())
            for r in rows:
                yield EventRow(_event(r[0], r[1], r[2]), int(r[3]), int(r[4]))
            if len(rows) < chunk:
                return
            last = (str(rows[-1][5]), int(rows[-1][6]), int(rows[-1][7]))

    # -- alerts -------------------------------------------------------------------

    async def alert_states(self, ids: Iterable[bytes]) -> dict[bytes, AlertState]:
        """Stored states of the given alerts (missing ones are absent)."""
        wanted = list(ids)
        found: dict[bytes, AlertState] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            async with self._db.execute(
                f"SELECT id, state FROM alerts WHERE id IN ({marks})", part
            ) as cur:
                for r in await cur.fetchall():
                    found[bytes(r[0])] = decode_state(bytes(r[1]))
        return found

    async def alert_ids(self) -> list[bytes]:
        """Ids of every alert with a row in the projection."""
        async with self._db.execute("SELECT id FROM alerts") as cur:
            return [bytes(r[0]) for r in await cur.fetchall()]

    async def alerts(self, *, statuses: Iterable[str] | None, limit: int) -> list[AlertView]:
        """Alerts as users see them, newest first."""
        if statuses is None:
            sql, args = "SELECT state FROM alerts WHERE status IS NOT NULL", []
        else:
            wanted = list(statuses)
            sql = f"SELECT state FROM alerts WHERE status IN ({','.join('?' * len(wanted))})"
            args = wanted
        async with self._db.execute(
            sql + " ORDER BY raised_ms DESC, id LIMIT ?", (*args, limit)
        ) as cur:
            rows = await cur.fetchall()
        views = (view(decode_state(bytes(r[0]))) for r in rows)
        return [v for v in views if v is not None]

    async def closed_before(self, origin: str, before_ms: int) -> list[AlertState]:
        """States of `origin`'s resolved or cancelled alerts last changed before a time."""
        async with self._db.execute(
            "SELECT state FROM alerts WHERE origin = ? AND status IN ('resolved', 'cancelled') "
            "AND updated_ms < ?",
            (origin, before_ms),
        ) as cur:
            rows = await cur.fetchall()
        return [decode_state(bytes(r[0])) for r in rows]

    async def open_alert_states(self) -> list[AlertState]:
        """States of every alert not yet resolved or cancelled."""
        async with self._db.execute(f"SELECT state FROM alerts WHERE status IN {_OPEN_SQL}") as cur:
            rows = await cur.fetchall()
        return [decode_state(bytes(r[0])) for r in rows]

    async def alert_ids_with_prefix(self, prefix: bytes, *, hidden: bool = False) -> list[bytes]:
        """Ids of known alerts starting with `prefix` (for short ids typed by users).

        With `hidden`, also alerts without a view (raise not yet here, or deleted).
        """
        upper = _prefix_upper_bound(prefix)
        sql = "SELECT id FROM alerts WHERE id >= ?" + ("" if hidden else " AND status IS NOT NULL")
        args: list[bytes] = [prefix]
        if upper is not None:
            sql += " AND id < ?"
            args.append(upper)
        async with self._db.execute(sql + " LIMIT 10", args) as cur:
            rows = await cur.fetchall()
        return [bytes(r[0]) for r in rows]

    async def open_alert_counts(self) -> list[tuple[str, str, bool, int]]:
        """(severity, urgency, exercise, count) of open and claimed alerts."""
        async with self._db.execute(
            "SELECT severity, urgency, exercise, COUNT(*) FROM alerts "
            f"WHERE status IN {_OPEN_SQL} GROUP BY severity, urgency, exercise"
        ) as cur:
            rows = await cur.fetchall()
        return [(str(r[0]), str(r[1]), bool(r[2]), int(r[3])) for r in rows]

    # -- writing ------------------------------------------------------------------

    async def commit(self, batch: Batch) -> None:
        """Write a batch in one durable transaction, or nothing at all.

        The whole transaction runs as one function on aiosqlite's connection
        thread (its `_execute`): one hand-over between threads per batch instead
        of one per statement, which is most of a single event's commit latency.
        """
        try:
            await self._db._execute(_commit_sync, self._db._conn, batch)  # type: ignore[no-untyped-call]
            if batch.drop_payloads:
                # The WAL still holds the pages as they were: fold it into the
                # database and empty it, so the deleted payloads leave the disk.
                await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise StoreError(f"could not write to the store at {self.path}: {exc}") from exc

    async def put_pseudonym(self, pseudonym: str, sealed: bytes, created_ms: int) -> None:
        """Record a pseudonym minted here with its sealed identity."""
        await self._db.execute(
            "INSERT INTO pseudonyms (pseudonym, sealed, created_ms) VALUES (?, ?, ?)",
            (pseudonym, sealed, created_ms),
        )

    async def pseudonym(self, pseudonym: str) -> bytes | None:
        """The sealed identity behind a pseudonym minted here, if any."""
        async with self._db.execute(
            "SELECT sealed FROM pseudonyms WHERE pseudonym = ?", (pseudonym,)
        ) as cur:
            row = await cur.fetchone()
        return bytes(row[0]) if row else None

    async def pseudonyms(self) -> list[tuple[str, int]]:
        """Pseudonyms minted here and when, oldest first."""
        async with self._db.execute(
            "SELECT pseudonym, created_ms FROM pseudonyms ORDER BY created_ms, pseudonym"
        ) as cur:
            return [(str(r[0]), int(r[1])) for r in await cur.fetchall()]

    async def forget_pseudonym(self, pseudonym: str) -> bool:
        """Delete a pseudonym's identity for good (overwritten, WAL emptied)."""
        cur = await self._db.execute("DELETE FROM pseudonyms WHERE pseudonym = ?", (pseudonym,))
        await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return cur.rowcount > 0

    async def event_kinds(self, ids: Iterable[bytes]) -> dict[bytes, tuple[str, str]]:
        """(origin, kind) of each of these events that is stored."""
        found: dict[bytes, tuple[str, str]] = {}
        for eid in ids:
            async with self._db.execute(
                "SELECT origin, kind FROM events WHERE id = ?", (eid,)
            ) as cur:
                row = await cur.fetchone()
            if row is not None:
                found[eid] = (row[0], row[1])
        return found


def _commit_sync(conn: sqlite3.Connection, batch: Batch) -> None:
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
    db = conn
    if batch.events:
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
    if batch.drop_payloads:
        db.executemany(
            "UPDATE events SET payload = NULL WHERE id = ?", [(i,) for i in batch.drop_payloads]
        )
    if batch.heads:
        db.executemany(
            "INSERT INTO heads (origin, epoch, seq, id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (origin, epoch) DO UPDATE SET seq = excluded.seq, id = excluded.id",
            [(o, ep, h.seq, h.id) for (o, ep), h in batch.heads.items()],
        )
    if batch.pending_add:
        db.executemany(
            "INSERT OR IGNORE INTO pending (origin, epoch, seq, id, envelope, received_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (e.header.origin, e.header.epoch, e.header.seq, e.id, e.envelope(), r)
                for e, r in batch.pending_add
            ],
        )
    if batch.pending_del:
        db.executemany(
            "DELETE FROM pending WHERE origin = ? AND epoch = ? AND seq = ? AND id = ?",
            batch.pending_del,
        )
    for origin, epoch, frozen_after, proof, detected in batch.forks:
        db.execute(
            "INSERT OR IGNORE INTO fork_proofs (origin, epoch, frozen_after, proof, "
            "detected_ms) VALUES (?, ?, ?, ?, ?)",
            (origin, epoch, frozen_after, proof, detected),
        )
        db.execute(
            "UPDATE events SET status = 2 WHERE origin = ? AND epoch = ? AND seq > ?",
            (origin, epoch, frozen_after),
        )
    for origin, epoch, last_seq in batch.cutoffs:
        db.execute(
            "UPDATE events SET status = 2 WHERE origin = ? AND epoch = ? AND seq > ?",
            (origin, epoch, last_seq),
        )
    for row in batch.rosters:
        db.execute(
            "INSERT OR IGNORE INTO rosters (version, id, roster, cert, received_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            (row.version, row.id, row.roster, row.cert, 0),
        )
    if batch.replace_alerts:
        db.execute("DELETE FROM alerts")
    if batch.alerts:
        _insert_rows(
            conn,
            "INSERT INTO alerts (id, state, status, origin, country, severity, urgency, "
            "exercise, raised_ms, updated_ms) VALUES ",
            " ON CONFLICT (id) DO UPDATE SET state = excluded.state, status = excluded.status, "
            "origin = excluded.origin, country = excluded.country, "
            "severity = excluded.severity, urgency = excluded.urgency, "
            "exercise = excluded.exercise, raised_ms = excluded.raised_ms, "
            "updated_ms = excluded.updated_ms",
            [
                _alert_row(s, batch.views[a] if a in batch.views else view(s))
                for a, s in batch.alerts.items()
            ],
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


def _event(header: bytes, sig: bytes, payload: bytes | None) -> Event:
    header = bytes(header)
    return Event(
        event_id(header),
        decode_header(header),
        header,
        bytes(sig),
        None if payload is None else bytes(payload),
    )


def _prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix`."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (comments dropped; no ';' in strings)."""
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]
