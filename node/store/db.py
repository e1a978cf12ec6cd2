"""The node's sqlite store: signed history, chain heads, rosters and projections.

Owns the connection, the schema's migration on open, and every read but those of
the alert projection (node/store/alerts.py); the write path is node/store/writes.py.
One aiosqlite connection, WAL, synchronous=FULL (a commit is on disk before it
returns, so an own-chain append is durable before it is published). Writes go
through `commit`, one transaction per batch. Every read goes through `fetch`
(node/store/rows.py): its statement runs to its end in one hand-over to the
connection's thread, so no commit runs while a read stands half-done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Final

import aiosqlite

from rrn.federation.chain import Head
from rrn.federation.limits import Usage
from rrn.node.store.alerts import AlertReads
from rrn.node.store.deadletters import DeadLetters
from rrn.node.store.ids import IdRuns, Placed, find_events
from rrn.node.store.migrations import MIGRATIONS, SMALL_KINDS, SMALL_KINDS_SQL
from rrn.node.store.plans import Plans
from rrn.node.store.pseudonyms import Pseudonyms
from rrn.node.store.requests import RequestJournal
from rrn.node.store.rows import ChainKey, EventRow, RawRow, RosterRow, event_of, fetch
from rrn.node.store.writes import BUSY_TIMEOUT_MS, Batch, checkpoint, commit_sync
from rrn.protocol.envelope import Event, wire_bytes
from rrn.protocol.errors import StoreError

__all__ = ["Store", "open_store"]

logger = logging.getLogger(__name__)

#: sqlite's page cache for the node's own connection, at most (filled as used).
_CACHE_KIB: Final = 32 * 1024
#: How often an emptying of the WAL that a read got in the way of is tried again.
_RESCRUB_S: Final = 1.0


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
    store = Store(db, path)
    try:
        await store._setup(readonly=readonly)
        yield store
    finally:
        store.stop_scrubbing()
        await db.close()


class Store(AlertReads):
    """Typed access to one node's sqlite database (its alert reads: node/store/alerts.py)."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        #: Minted pseudonyms, control requests, dead letters, plans: modules of their own.
        self.pseudonyms = Pseudonyms(db)
        self.plans = Plans(db)
        self.requests = RequestJournal(db)
        self.dead_letters = DeadLetters(db)
        #: Payloads were deleted but the WAL could not be emptied yet.
        self._scrub_owed = False
        self._rescrub: asyncio.Task[None] | None = None
        self._closing = False
        #: When commits merge new event ids into their tree (node/store/ids.py).
        self._id_runs = IdRuns()
        self._writing = asyncio.Lock()

    async def _setup(self, *, readonly: bool) -> None:
        try:
            await self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Deleted content (tombstoned payloads) is overwritten, not left in free pages.
            await self._db.execute("PRAGMA secure_delete = ON")
            if not readonly:
                # Event ids are random: inserting into their index touches pages all over
                # it, and once it outgrows sqlite's 2 MB default cache each batch reads
                # them again (a catch-up slowed as the store grew).
                await self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
                await self._db.execute("PRAGMA journal_mode = WAL")
                await self._db.execute("PRAGMA synchronous = FULL")
                await self._migrate()
            elif await self._user_version() != len(MIGRATIONS):
                raise StoreError(f"store at {self.path} has an unexpected schema version")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store at {self.path} is not a usable database: {exc}") from exc

    async def _user_version(self) -> int:
        rows = await fetch(self._db, "PRAGMA user_version")
        return int(rows[0][0]) if rows else 0

    async def _migrate(self) -> None:
        current = await self._user_version()
        if current > len(MIGRATIONS):
            raise StoreError(
                f"store at {self.path} has schema {current}, newer than this rrn knows "
                f"({len(MIGRATIONS)}); upgrade rrn"
            )
        if 0 < current < len(MIGRATIONS):  # can take seconds on a large store (8: ~5 s at 1M)
            logger.info("upgrading the store's schema from %d to %d", current, len(MIGRATIONS))
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
        rows = await fetch(self._db, "SELECT value FROM meta WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

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
        rows = await fetch(
            self._db, "SELECT version, id, roster, cert FROM rosters ORDER BY version"
        )
        return [RosterRow(int(r[0]), bytes(r[1]), bytes(r[2]), bytes(r[3])) for r in rows]

    # -- chains -------------------------------------------------------------------

    async def heads(self) -> dict[ChainKey, Head]:
        """The head of every chain."""
        rows = await fetch(self._db, "SELECT origin, epoch, seq, id FROM heads")
        return {(str(r[0]), int(r[1])): Head(int(r[2]), bytes(r[3])) for r in rows}

    async def usage(self) -> dict[ChainKey, Usage]:
        """What every chain claimed so far: latest signed time, that day's events and bytes."""
        rows = await fetch(
            self._db, "SELECT origin, epoch, wall_ms, day_events, day_bytes, roster_ver FROM heads"
        )
        return {(str(r[0]), int(r[1])): Usage(*map(int, r[2:])) for r in rows}

    async def head_events(self, kind: str) -> list[Event]:
        """The events of this kind that are the head of their chain."""
        # CROSS JOIN: from the heads (one row a chain) to their events, never the other
        # way round (a scan of the whole history).
        rows = await fetch(
            self._db,
            "SELECT e.header, e.sig, e.payload FROM heads h CROSS JOIN events e "
            "ON e.origin = h.origin AND e.epoch = h.epoch AND e.seq = h.seq WHERE e.kind = ?",
            (kind,),
        )
        return [event_of(r[0], r[1], r[2]) for r in rows]

    async def event_at(self, origin: str, epoch: int, seq: int) -> Event | None:
        """The stored event at a chain position, or None."""
        rows = await fetch(
            self._db,
            "SELECT header, sig, payload FROM events WHERE origin = ? AND epoch = ? AND seq = ?",
            (origin, epoch, seq),
        )
        return event_of(*rows[0]) if rows else None

    async def envelopes(
        self, origin: str, epoch: int, from_seq: int, *, limit: int, max_bytes: int
    ) -> tuple[list[bytes], bool]:
        """Envelopes of one chain from `from_seq` on, and whether more were left out."""
        rows = await fetch(
            self._db,
            "SELECT header, sig, payload FROM events WHERE origin = ? AND epoch = ? "
            "AND seq >= ? ORDER BY seq LIMIT ?",
            (origin, epoch, from_seq, limit + 1),
        )
        found: list[bytes] = []
        size = 0
        for header, sig, payload in rows[:limit]:
            envelope = wire_bytes(
                bytes(header), bytes(sig), None if payload is None else bytes(payload)
            )
            if found and size + len(envelope) > max_bytes:
                return found, True
            found.append(envelope)
            size += len(envelope)
        return found, len(rows) > limit

    async def events_of_kinds(self, kinds: Iterable[str]) -> list[Event]:
        """Applied events of the given kinds, in chain order: kinds of few events only
        (`SMALL_KINDS`, found through the partial index `events_by_kind`)."""
        wanted = list(kinds)
        if not set(wanted) <= set(SMALL_KINDS):
            raise ValueError(f"not kinds of few events: {sorted(set(wanted) - set(SMALL_KINDS))}")
        # The index's own condition, word for word, lets sqlite use it.
        rows = await fetch(
            self._db,
            f"SELECT header, sig, payload FROM events WHERE kind IN {SMALL_KINDS_SQL} "
            f"AND kind IN ({','.join('?' * len(wanted))}) AND status = 0",
            wanted,
        )
        found = [event_of(r[0], r[1], r[2]) for r in rows]
        return sorted(found, key=lambda e: (e.header.origin, e.header.epoch, e.header.seq))

    async def pending(self) -> list[tuple[bytes, int]]:
        """Envelopes held behind gaps, with their receive times."""
        rows = await fetch(self._db, "SELECT envelope, received_ms FROM pending")
        return [(bytes(r[0]), int(r[1])) for r in rows]

    async def freezes(self) -> dict[ChainKey, int]:
        """For each chain with a fork proof, the last seq still applied."""
        rows = await fetch(
            self._db,
            "SELECT origin, epoch, MIN(frozen_after) FROM fork_proofs GROUP BY origin, epoch",
        )
        return {(str(r[0]), int(r[1])): int(r[2]) for r in rows}

    async def fork_proofs(self) -> list[tuple[str, int, int, bytes]]:
        """Every stored fork proof: origin, epoch, frozen_after, proof bytes."""
        rows = await fetch(
            self._db,
            "SELECT origin, epoch, frozen_after, proof FROM fork_proofs ORDER BY origin, epoch",
        )
        return [(str(r[0]), int(r[1]), int(r[2]), bytes(r[3])) for r in rows]

    async def count_events(self) -> int:
        """How many events are stored."""
        rows = await fetch(self._db, "SELECT COUNT(*) FROM events")
        return int(rows[0][0]) if rows else 0

    async def iter_events(
        self, *, applied_only: bool = False, chunk: int = 2000
    ) -> AsyncIterator[EventRow]:
        """Every stored event in chain order (origin, epoch, seq)."""
        status = "AND status = 0" if applied_only else ""
        last: tuple[str, int, int] = ("", 0, 0)
        while True:
            rows = await fetch(
                self._db,
                "SELECT header, sig, payload, status, received_ms, origin, epoch, seq "
                f"FROM events WHERE (origin, epoch, seq) > (?, ?, ?) {status} "
                "ORDER BY origin, epoch, seq LIMIT ?",
                (*last, chunk),
            )
            for r in rows:
                yield EventRow(event_of(r[0], r[1], r[2]), int(r[3]), int(r[4]))
            if len(rows) < chunk:
                return
            last = (str(rows[-1][5]), int(rows[-1][6]), int(rows[-1][7]))

    async def raw_rows(self, chunk: int = 2000) -> AsyncIterator[RawRow]:
        """Every row of the events table as stored, in chain order, nothing decoded."""
        last: tuple[str, int, int] = ("", 0, 0)
        while True:
            rows = [
                RawRow(*r)
                for r in await fetch(
                    self._db,
                    "SELECT origin, epoch, seq, id, kind, wall_ms, header, sig, payload, status "
                    "FROM events WHERE (origin, epoch, seq) > (?, ?, ?) "
                    "ORDER BY origin, epoch, seq LIMIT ?",
                    (*last, chunk),
                )
            ]
            for r in rows:
                yield r
            if len(rows) < chunk:
                return
            last = (rows[-1].origin, rows[-1].epoch, rows[-1].seq)

    # -- writing ------------------------------------------------------------------

    async def commit(self, batch: Batch) -> None:
        """Write a batch in one durable transaction, or nothing at all.

        The whole transaction runs as one function on aiosqlite's connection
        thread (its `_execute`): one hand-over between threads per batch instead
        of one per statement, which is most of a single event's commit latency.
        """
        try:
            async with self._writing:  # each slice of a run merged by one commit only
                batch.ids_merge = await self._id_runs.next(self._db)
                await self._db._execute(commit_sync, self._db._conn, batch)  # type: ignore[no-untyped-call]
                self._id_runs.committed(len(batch.events), batch.ids_merge)
            if batch.drop_payloads or self._scrub_owed:
                # The WAL still holds the pages as they were: fold it into the
                # database and empty it, so the deleted payloads leave the disk;
                # if a read is in the way, once it has ended.
                self._scrub_owed = not await checkpoint(self._db)
                idle = self._rescrub is None or self._rescrub.done()
                if self._scrub_owed and idle and not self._closing:
                    self._rescrub = asyncio.create_task(self._scrub_later(), name="rescrub")
        except sqlite3.Error as exc:
            raise StoreError(f"could not write to the store at {self.path}: {exc}") from exc

    async def _scrub_later(self) -> None:
        """Empty the WAL once the read in its way has ended, whether or not anything is
        committed meanwhile: a quiet node kept a deleted alert's payloads on disk until
        its next commit, which may be hours away."""
        warned = False
        while self._scrub_owed and not self._closing:
            await asyncio.sleep(_RESCRUB_S)
            try:
                self._scrub_owed = not await checkpoint(self._db)
            except ValueError:  # the connection closed: the next start empties it
                return
            except sqlite3.Error as exc:  # tried again; said once
                if not warned:
                    logger.warning("could not empty the store's write-ahead log: %s", exc)
                warned = True

    def stop_scrubbing(self) -> None:
        """Stop trying again in the background (the store is closing; the WAL is emptied
        when the last connection closes, or at the next start's first checkpoint)."""
        self._closing = True
        if self._rescrub is not None:
            self._rescrub.cancel()

    async def find_events(self, ids: Iterable[bytes]) -> dict[bytes, Placed]:
        """Where each of these events is stored, its kind and when it was stored, by id."""
        return await find_events(self._db, ids)


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (comments dropped; no ';' in strings)."""
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]
