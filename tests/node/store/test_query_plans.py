"""Every query the store runs per event, per request or per sweep finds its rows
through an index: sqlite's own plan (EXPLAIN QUERY PLAN) of each statement, as the
store sends it to a real store file with the real schema, scans no large table
and sorts no large result. What grows with the history must not grow every call."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rrn.federation.alerts import OPEN_STATUSES
from rrn.node.alerting.retention import forget
from rrn.node.store.db import Store
from rrn.node.store.migrations import SMALL_KINDS
from rrn.protocol.alerts import AlertResolved
from rrn.protocol.vocabulary import Outcome, TombstoneReason
from tests.node.conftest import Pipeline, running_pipeline
from tests.support import Chain, Net, raised

#: Tables that grow with the history (the others hold a row per chain, member or request;
#: event_ids_new the ids of at most about a run, node/store/ids.py).
_LARGE = {"events", "alerts", "e", "event_ids"}
#: Statements that read a whole large table on purpose, and why that is bounded.
_WHOLE = {
    # Once per start (the ingest counter), never per event.
    "SELECT COUNT(*) FROM events",
    # Every alert id, from the smallest index: for what lists every alert (a report,
    # `--all`, the integrators' bucket's fill), never per event.
    "SELECT id FROM alerts",
}

Statement = tuple[str, tuple[Any, ...]]


def plan(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[str]:
    """sqlite's plan of one statement, one line per step."""
    with sqlite3.connect(db) as conn:
        return [str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args)]


def faults(steps: list[str]) -> list[str]:
    """The steps of a plan that read a large table whole or sort rows in a temporary tree."""
    bad = []
    for step in steps:
        scan = re.match(r"SCAN (\w+)", step)
        if scan and scan.group(1) in _LARGE and "INDEX" not in step:
            bad.append(step)
        if "TEMP B-TREE FOR ORDER BY" in step or "TEMP B-TREE FOR RIGHT PART" in step:
            bad.append(step)
    return bad


async def recorded(store: Store, reads: Callable[[], Awaitable[object]]) -> list[Statement]:
    """Each statement (with its arguments, as bound) that `reads` sends to the store."""
    seen: list[Statement] = []
    conn = store._db
    real, real_all = conn.execute, conn.execute_fetchall

    def execute(sql: str, args: Any = None) -> Any:
        seen.append((sql, tuple(args or ())))
        return real(sql, args)

    def execute_fetchall(sql: str, args: Any = None) -> Any:
        seen.append((sql, tuple(args or ())))
        return real_all(sql, args)

    conn.execute = execute  # type: ignore[method-assign]
    conn.execute_fetchall = execute_fetchall  # type: ignore[method-assign]
    try:
        await reads()
    finally:
        conn.execute, conn.execute_fetchall = real, real_all  # type: ignore[method-assign]
    return seen


async def _history(p: Pipeline, tn: Net) -> tuple[bytes, bytes]:
    """Open, closed and deleted alerts of two members; (an own alert, a position's origin)."""
    mine = [(await p.ingestor.append(raised(i))).id for i in range(4)]
    await p.ingestor.append(AlertResolved(alert=mine[1], outcome=Outcome.SAFE))
    for event in Chain(tn, "nairobi-dl").lifecycle(3):
        await (await p.ingestor.submit(event.envelope()))
    return mine[0], mine[1]


async def test_every_hot_query_of_the_store_uses_an_index(tmp_path: Path, tn: Net) -> None:
    db = tmp_path / "store.db"
    async with running_pipeline(db, tn) as p:
        alert, closed = await _history(p, tn)
        s, authority, me = p.store, p.ingestor.network.authority, p.ingestor.me.org

        async def reads() -> None:
            await s.alerts(statuses=sorted(OPEN_STATUSES), limit=200, authority=authority)
            await s.alerts(statuses=None, limit=100_000, authority=authority)
            await s.closed_before(me, p.clock.now_ms(), after=(5, b"\x01"), limit=50)
            await s.first_closed_ms(me)
            await s.alert_states([alert, closed])
            await s.find_events([alert, closed])
            await s.alert_ids_with_prefix(alert[:2])
            await s.alert_ids_with_prefix(alert[:2], hidden=True)
            await s.alert_ids_present([alert, closed, bytes(32)])
            await s.open_alert_states()
            await s.open_alert_ids()
            await s.open_alert_counts()
            await s.plans.states()
            await s.events_of_kinds(list(SMALL_KINDS))
            await s.head_events("key.rotated")
            await s.envelopes("nairobi-dl", 1, 2, limit=100, max_bytes=1 << 20)
            await s.event_at("nairobi-dl", 1, 2)
            await s.heads()
            await s.usage()
            await s.freezes()
            _ = [r async for r in s.iter_events(applied_only=True, chunk=2)]
            _ = [r async for r in s.raw_rows(chunk=2)]
            await s.requests.recent(0)
            await s.get_meta("net")
            await s.alert_ids()
            _ = [page async for page in s.alert_id_pages(page=2)]
            await s.count_events()

        statements = await recorded(s, reads)
    assert len(statements) > 20
    for sql, args in statements:
        if sql in _WHOLE:
            continue
        steps = plan(db, sql, args)
        assert not faults(steps), f"{sql}\n  {steps}"


async def test_listing_walks_the_newest_alerts_and_retention_only_those_due(
    tmp_path: Path, tn: Net
) -> None:
    db = tmp_path / "store.db"
    async with running_pipeline(db, tn) as p:
        await _history(p, tn)
        s, authority = p.store, p.ingestor.network.authority
        listing = await recorded(
            s, lambda: s.alerts(statuses=sorted(OPEN_STATUSES), limit=5, authority=authority)
        )
        everything = await recorded(
            s, lambda: s.alerts(statuses=None, limit=5, authority=authority)
        )
        due = await recorded(s, lambda: s.closed_before("lima-hr", 1 << 50, limit=50))
        first = await recorded(s, lambda: s.first_closed_ms("lima-hr"))
        kinds = await recorded(s, lambda: s.events_of_kinds(["coverage.declared"]))
    # Ids from the index in its order (LIMIT bound as a parameter), then states by id.
    for statements in (listing, everything):
        assert plan(db, *statements[0]) == ["SCAN alerts USING COVERING INDEX alerts_by_time"]
        assert plan(db, *statements[1]) == ["SEARCH alerts USING INDEX alerts_by_id (id=?)"]
    assert plan(db, *due[0]) == [
        "SEARCH alerts USING COVERING INDEX alerts_closed "
        "(origin=? AND (updated_ms,id)>(?,?) AND updated_ms<?)"
    ]
    assert plan(db, *first[0]) == ["SEARCH alerts USING COVERING INDEX alerts_closed (origin=?)"]
    assert plan(db, *kinds[0])[0] == "SEARCH events USING INDEX events_by_kind (kind=?)"


async def test_the_commit_path_finds_rows_by_key(tmp_path: Path, tn: Net) -> None:
    """What an ingest batch writes, a tombstone's deletions included (the events it
    lists, found by id)."""
    db = tmp_path / "store.db"
    async with running_pipeline(db, tn) as p:
        alert, closed = await _history(p, tn)
        written: list[str] = []
        await p.store._db.set_trace_callback(written.append)
        state = (await p.store.alert_states([closed]))[closed]
        await forget(p.ingestor, state, TombstoneReason.RETENTION_ENDED)
        await p.ingestor.append(AlertResolved(alert=alert, outcome=Outcome.SAFE))
        for event in Chain(tn, "jakarta-pb").lifecycle(1):
            await (await p.ingestor.submit(event.envelope()))
        await p.ingestor.flush()
        await p.store._db.set_trace_callback(lambda _: None)
    changes = [w for w in written if re.match(r"\s*(UPDATE|DELETE|SELECT)", w)]
    assert any(w.startswith("UPDATE events SET payload = NULL") for w in changes)
    for sql in changes:
        steps = plan(db, sql)
        assert not faults(steps), f"{sql}\n  {steps}"
