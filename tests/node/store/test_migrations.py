"""A store made by the previous release is migrated on open, its rows kept: the
indexes of migrations 6 and 7 are built over the alerts and events it already holds."""

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

_NEW_INDEXES = {"alerts_by_time", "alerts_closed", "events_by_kind", "events_by_id"}


def _indexes(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def _as_schema_5(db: Path) -> None:
    """Turn a store back into what migrations 1 to 5 made (6 and 7 only add indexes)."""
    with sqlite3.connect(db) as conn:
        for name in _NEW_INDEXES:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("PRAGMA user_version = 5")


async def test_a_store_of_schema_5_gains_the_indexes_and_keeps_its_alerts(
    tmp_path: Path, tn: Net
) -> None:
    assert len(MIGRATIONS) == 7
    db = tmp_path / "store.db"
    async with running_pipeline(db, tn) as p:
        mine = [(await p.ingestor.append(raised(i))).id for i in range(3)]
        await p.ingestor.append(AlertResolved(alert=mine[0], outcome=Outcome.SAFE))
        for event in Chain(tn, "nairobi-dl").lifecycle(2):
            await (await p.ingestor.submit(event.envelope()))
        authority = p.ingestor.network.authority
        listed = await p.store.alerts(statuses=None, limit=100, authority=authority)
    _as_schema_5(db)
    assert not _indexes(db) & _NEW_INDEXES
    with pytest.raises(StoreError, match="unexpected schema version"):
        async with open_store(db, readonly=True):
            pass  # a read-only open never migrates

    async with open_store(db) as store:
        assert await store._user_version() == 7
        assert _indexes(db) >= _NEW_INDEXES
        assert await store.alerts(statuses=None, limit=100, authority=authority) == listed
        opened = await store.alerts(statuses=sorted(OPEN_STATUSES), limit=100, authority=authority)
        assert [v.alert for v in opened] == mine[:0:-1], "newest first, the closed one left out"
        closed = await store.closed_before("lima-hr", 1 << 50, limit=10)
        assert [s.alert for _, s in closed] == [mine[0]]
        assert await store.first_closed_ms("lima-hr") == closed[0][0]
        assert len(await store.events_of_kinds(["roster.proposed", "roster.approved"])) == 0
    newest = "SELECT id FROM alerts WHERE status IS NOT NULL ORDER BY raised_ms DESC, id LIMIT 5"
    assert plan(db, newest) == ["SCAN alerts USING COVERING INDEX alerts_by_time"]
