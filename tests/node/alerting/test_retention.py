"""Retention: this member's alerts closed for `[retention] closed_days` are deleted
everywhere, found through the store's index of closed alerts a batch at a time, and
the sweep looks when the next one is due rather than after every change."""

from __future__ import annotations

from pathlib import Path

import pytest

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import AlertState
from rrn.node.alerting import retention
from rrn.node.alerting.retention import Retention
from rrn.node.home.config import RetentionConfig
from rrn.protocol.alerts import AlertCancelled, AlertResolved
from rrn.protocol.vocabulary import CancelReason, Outcome
from tests.node.conftest import Pipeline, running_pipeline
from tests.support import Chain, Net, raised

_DAY_MS = 86_400_000


def _retention(p: Pipeline, days: float) -> Retention:
    return Retention(
        ingestor=p.ingestor, store=p.store, config=RetentionConfig(closed_days=days), clock=p.clock
    )


async def _listed(p: Pipeline) -> set[bytes]:
    views = await p.store.alerts(statuses=None, limit=1000, authority=p.ingestor.network.authority)
    return {v.alert for v in views}


async def _changes(p: Pipeline, ids: list[bytes]) -> list[tuple[AlertState, AlertView | None]]:
    authority = p.ingestor.network.authority
    views = {
        v.alert: v for v in await p.store.alerts(statuses=None, limit=1000, authority=authority)
    }
    return [(s, views.get(a)) for a, s in (await p.store.alert_states(ids)).items()]


async def test_only_own_alerts_closed_long_enough_are_deleted_in_batches(
    tmp_path: Path, tn: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "_BATCH", 3)  # several passes over the index
    async with running_pipeline(tmp_path / "store.db", tn) as p:
        old = [(await p.ingestor.append(raised(i))).id for i in range(7)]
        for n, alert in enumerate(old):
            if n % 2:
                await p.ingestor.append(AlertResolved(alert=alert, outcome=Outcome.SAFE))
            else:
                await p.ingestor.append(AlertCancelled(alert=alert, reason=CancelReason.DUPLICATE))
        still_open = (await p.ingestor.append(raised(8))).id
        p.clock.advance(10 * _DAY_MS)
        recent = (await p.ingestor.append(raised(9))).id
        await p.ingestor.append(AlertResolved(alert=recent, outcome=Outcome.SAFE))
        theirs = Chain(tn, "nairobi-dl", start_ms=p.clock.now_ms() - 20 * _DAY_MS)
        for event in theirs.lifecycle(2):  # another member's: only its own node deletes them
            await (await p.ingestor.submit(event.envelope()))
        others = await _listed(p) - {*old, still_open, recent}
        assert len(others) == 2

        r = _retention(p, days=5)
        assert await r.sweep() == 7
        assert await _listed(p) == {still_open, recent, *others}
        assert all(s.erased == "lima-hr" for s in (await p.store.alert_states(old)).values())
        # The next one due is the recent alert, five days after it closed.
        assert r._until_due() == 60.0
        assert r._due_ms == p.clock.now_ms() + 5 * _DAY_MS
        assert await r.sweep() == 0, "nothing else is due yet"

        p.clock.advance(5 * _DAY_MS + 1)
        assert await r.sweep() == 1
        assert await _listed(p) == {still_open, *others}
        assert r._due_ms is None, "nothing of ours is closed any more"


async def test_a_change_wakes_the_sweep_only_when_it_brings_a_deletion_sooner(
    tmp_path: Path, tn: Net
) -> None:
    async with running_pipeline(tmp_path / "store.db", tn) as p:
        first = (await p.ingestor.append(raised(0))).id
        second = (await p.ingestor.append(raised(1))).id
        r = _retention(p, days=1)
        assert await r.sweep() == 0
        assert r._until_due() == 60.0, "nothing closed: a look a minute"
        await p.ingestor.append(AlertResolved(alert=first, outcome=Outcome.SAFE))
        r.alerts_changed(await _changes(p, [first]))
        assert r._wake.is_set(), "a closed alert of ours: due in a day"
        assert r._due_ms == p.clock.now_ms() + _DAY_MS
        r._wake.clear()

        p.clock.advance(1000)
        await p.ingestor.append(AlertResolved(alert=second, outcome=Outcome.SAFE))
        r.alerts_changed(await _changes(p, [second]))
        assert not r._wake.is_set(), "due after the one already awaited"

        p.clock.advance(_DAY_MS - 1000 + 1)
        assert r._until_due() == 60.0, "one already due: look now, then no sooner than a minute"
        assert await r.sweep() == 1
        assert await _listed(p) == {second}
        assert r._due_ms == p.clock.now_ms() + 999

        r.alerts_changed(None)  # every alert recomputed: look again
        assert r._wake.is_set() and r._due_ms is None
