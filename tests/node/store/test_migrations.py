"""A store made by an earlier release is migrated on open, its rows kept: the indexes
of migrations 6 and 7 are built over the alerts and events it already holds,
migration 8 lays its alerts out in raise order, and migration 9 finds every event
it holds by id without migration 7's index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rrn.federation.alerts import OPEN_STATUSES
from rrn.node.store.db import open_store
from rrn.node.store.migrations import MIGRATIONS
from rrn.protocol.alerts import AlertResolved
from rrn.protocol.errors import StoreError
from rrn.protocol.vocabulary import Outcome
from tests.node.conftest import running_pipeline
from tests.node.store.test_query_plans import plan
from tests.support import Chain, Net, raised

_NEW_INDEXES = {"alerts_by_time", "alerts_closed", "events_by_kind"}


def _indexes(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


_COLUMNS = "id, state, status, origin, country, severity, urgency, exercise, raised_ms, updated_ms"


def _as_schema_5(db: Path) -> None:
    """Turn a store back into what migrations 1 to 5 made (6 and 7 only add indexes;
    8 turned the alerts table keyed by id into one in raise order; 9 added the tables
    of event ids and dropped 7's index)."""
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE event_ids")
        conn.execute("DROP TABLE event_ids_new")
        conn.execute(
            "CREATE TABLE old_alerts (id BLOB PRIMARY KEY, state BLOB NOT NULL, status TEXT, "
            "origin TEXT, country TEXT, severity TEXT, urgency TEXT, exercise INTEGER, "
            "raised_ms INTEGER, updated_ms INTEGER) WITHOUT ROWID"
        )
        conn.execute(f"INSERT INTO old_alerts ({_COLUMNS}) SELECT {_COLUMNS} FROM alerts")
        conn.execute("DROP TABLE alerts")  # and its indexes
        conn.execute("ALTER TABLE old_alerts RENAME TO alerts")
        conn.execute("CREATE INDEX alerts_by_status ON alerts (status, raised_ms)")
        for name in _NEW_INDEXES - {"alerts_by_time", "alerts_closed"}:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("PRAGMA user_version = 5")


async def test_a_store_of_schema_5_gains_the_indexes_and_keeps_its_alerts(
    tmp_path: Path, tn: Net
) -> None:
    assert len(MIGRATIONS) == 9
    db = tmp_path / "store.db"
    async with running_pipeline(db, tn) as p:
        mine = [(await p.ingestor.append(raised(i))).id for i in range(3)]
        await p.ingestor.append(AlertResolved(alert=mine[0], outcome=Outcome.SAFE))
        for event in Chain(tn, "nairobi-dl").lifecycle(2):
            await (await p.ingestor.submit(event.envelope()))
        authority = p.ingestor.network.authority
        listed = await p.store.alerts(statuses=None, limit=100, authority=authority)
        held = [r.id async for r in p.store.raw_rows(chunk=100)]
    _as_schema_5(db)
    assert not _indexes(db) & _NEW_INDEXES
    with pytest.raises(StoreError, match="unexpected schema version"):
        async with open_store(db, readonly=True):
            pass  # a read-only open never migrates

    async with open_store(db) as store:
        assert await store._user_version() == 9
        assert _indexes(db) >= _NEW_INDEXES | {"alerts_by_id"}
        assert "events_by_id" not in _indexes(db)
        assert (await store.find_events(held)).keys() == set(held), "every event, by id"
        assert await store.alerts(statuses=None, limit=100, authority=authority) == listed
        opened = await store.alerts(statuses=sorted(OPEN_STATUSES), limit=100, authority=authority)
        assert [v.alert for v in opened] == mine[:0:-1], "newest first, the closed one left out"
        closed = await store.closed_before("lima-hr", 1 << 50, limit=10)
        assert [s.alert for _, s in closed] == [mine[0]]
        assert await store.first_closed_ms("lima-hr") == closed[0][0]
        assert len(await store.events_of_kinds(["roster.proposed", "roster.approved"])) == 0
    newest = "SELECT id FROM alerts WHERE status IS NOT NULL ORDER BY raised_ms DESC, id LIMIT 5"
    assert plan(db, newest) == ["SCAN alerts USING COVERING INDEX alerts_by_time"]
    one = ("SELECT state FROM alerts WHERE id = ?", (b"x" * 32,))
    assert plan(db, *one) == ["SEARCH alerts USING INDEX alerts_by_id (id=?)"]
    with sqlite3.connect(db) as conn:
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'alerts'").fetchone()
        stored = [r[0] for r in conn.execute("SELECT raised_ms FROM alerts ORDER BY rowid")]
    assert "WITHOUT ROWID" not in sql.upper()
    assert len(stored) == 5 and stored == sorted(stored), "laid out in raise order"
