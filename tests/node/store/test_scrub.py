"""Deleted payloads leave the disk even when a read is in the way: the WAL is
emptied after the commit that deleted them, or once the read has ended, and the commit
itself never fails for it (it did: "database table is locked")."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from rrn.node.alerting.retention import forget
from rrn.protocol.vocabulary import TombstoneReason
from tests.node.conftest import running_pipeline
from tests.support import Net, raised


def _wal_bytes(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


async def test_a_tombstone_commits_while_a_query_is_part_read(tmp_path: Path, tn: Net) -> None:
    db = tmp_path / "store.db"
    async with running_pipeline(db, tn) as p:
        alert = await p.ingestor.append(raised(0))
        await p.ingestor.append(raised(1))
        # aiosqlite steps a query once in execute and reads the rest later: between
        # the two, this connection has a statement in progress.
        part_read = await p.store._db.execute("SELECT id FROM events")
        state = (await p.store.alert_states([alert.id]))[alert.id]
        await forget(p.ingestor, state, TombstoneReason.RETENTION_ENDED)
        owed = [p.store._scrub_owed]
        await part_read.fetchall()
        await part_read.close()
        await p.ingestor.append(raised(2))  # the next commit empties it
        owed.append(p.store._scrub_owed)
        assert owed == [True, False], "owed while the query was open, done after"
        assert _wal_bytes(db) == 0
    with sqlite3.connect(db) as conn:
        (payload,) = conn.execute("SELECT payload FROM events WHERE id = ?", (alert.id,)).fetchone()
    assert payload is None


async def test_a_wal_a_reader_kept_full_empties_once_it_ends_with_no_commit_after(
    tmp_path: Path, tn: Net
) -> None:
    db = tmp_path / "store.db"
    async with running_pipeline(db, tn) as p:
        alert = await p.ingestor.append(raised(0))
        # Another process (`rrn log verify`, a backup) reads a snapshot from before the
        # tombstone: the WAL cannot be emptied while it reads.
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM events").fetchall()
        state = (await p.store.alert_states([alert.id]))[alert.id]
        await forget(p.ingestor, state, TombstoneReason.RETENTION_ENDED)
        owed = [p.store._scrub_owed]
        assert _wal_bytes(db) > 0
        reader.execute("COMMIT")
        reader.close()
        # Nothing else is committed: the store tries again by itself, a second later.
        for _ in range(100):
            if not _wal_bytes(db):
                break
            await asyncio.sleep(0.1)
        owed.append(p.store._scrub_owed)
        assert owed == [True, False] and _wal_bytes(db) == 0
    with sqlite3.connect(db) as conn:
        (payload,) = conn.execute("SELECT payload FROM events WHERE id = ?", (alert.id,)).fetchone()
    assert payload is None
