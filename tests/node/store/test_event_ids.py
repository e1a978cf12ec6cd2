"""Events are found by id (what a tombstone lists) whether their ids still wait at the
end of the new ids or were merged into the tree, across runs cut short by a restart;
and the new ids do not pile up (node/store/ids.py, with runs made small here)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rrn.node.store import ids
from rrn.protocol.alerts import AlertClaimed
from tests.node.conftest import Pipeline, running_pipeline
from tests.support import Chain, Net, raised

_RUN, _SLICES = 7, 3


def _counts(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        tree = conn.execute("SELECT COUNT(*) FROM event_ids").fetchone()[0]
        new = conn.execute("SELECT COUNT(*) FROM event_ids_new").fetchone()[0]
    return int(tree), int(new)


async def _places(p: Pipeline) -> dict[bytes, tuple[str, int, int, str]]:
    return {r.id: (r.origin, r.epoch, r.seq, r.kind) async for r in p.store.raw_rows(chunk=50)}


async def test_every_event_is_found_by_id_across_runs_and_restarts(
    tmp_path: Path, tn: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ids, "RUN", _RUN)
    monkeypatch.setattr(ids, "SLICES", _SLICES)
    db = tmp_path / "store.db"
    async with running_pipeline(db, tn) as p:
        for event in Chain(tn, "nairobi-dl").lifecycle(4):  # one commit each
            await (await p.ingestor.submit(event.envelope()))
        mine = await p.ingestor.append(raised(0))
        await p.ingestor.flush()
        tree, new = _counts(db)
        assert tree > 0, "no run was merged"
        assert new > 0, "stopped with a run part merged and new ids waiting"
    async with running_pipeline(db, tn) as p:  # the run cut short is merged again
        for event in Chain(tn, "jakarta-pb").lifecycle(5):
            await (await p.ingestor.submit(event.envelope()))
        await p.ingestor.append(AlertClaimed(alert=mine.id))
        await p.ingestor.flush()
        stored = await _places(p)
        found = await p.store.find_events(stored)
        near = mine.id[:8] + bytes(24)  # shares the tree's key with a stored event
        assert near not in await p.store.find_events([near, bytes(32)])
    assert {i: (f.origin, f.epoch, f.seq, f.kind) for i, f in found.items()} == stored
    tree, new = _counts(db)
    assert len(stored) > 4 * _RUN
    assert tree + new >= len(stored) and tree <= len(stored)
    assert new < _RUN + _SLICES, "the new ids pile up instead of being merged"
