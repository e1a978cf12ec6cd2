"""The ingest pipeline over a real sqlite store: chains, gaps, forks, projection."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import msgspec
import pytest

from rrn.federation.alerts import AlertStatus
from rrn.federation.limits import DEFAULT_LIMITS
from rrn.node.alerting.retention import forget
from rrn.node.pipeline.ingest import Outcome
from rrn.node.store.db import open_store
from rrn.node.store.rows import APPLIED, FROZEN, UNAPPLIED
from rrn.node.store.writes import Batch
from rrn.protocol.alerts import AlertClaimed, AlertResolved
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event, sign_event
from rrn.protocol.errors import Reason, StoreError
from rrn.protocol.vocabulary import Outcome as AlertOutcome
from rrn.protocol.vocabulary import TombstoneReason
from tests.node.conftest import Pipeline, running_pipeline
from tests.support import Chain, Net, network, raised


async def _submit(p: Pipeline, event: Event | bytes) -> Outcome:
    raw = event if isinstance(event, bytes) else event.envelope()
    result = await (await p.ingestor.submit(raw))
    assert isinstance(result, Outcome)
    return result


async def test_own_appends_chain_and_survive_reopening(tmp_path: Path, tn: Net) -> None:
    db = tmp_path / "store.db"
    async with running_pipeline(db, tn) as p:
        first = await p.ingestor.append(raised(0))
        second = await p.ingestor.append(AlertClaimed(alert=first.id))
        assert (first.header.seq, second.header.seq) == (1, 2)
        assert second.header.prev == first.id
    async with running_pipeline(db, tn) as p:
        third = await p.ingestor.append(raised(1))
        assert third.header.seq == 3 and third.header.prev == second.id
        assert p.ingestor.stored == 3


async def test_foreign_chain_appends_and_duplicates_are_no_ops(tmp_path: Path, tn: Net) -> None:
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        events = list(Chain(tn, "nairobi-dl").lifecycle(2))
        for e in events:
            assert (await _submit(p, e)).verdict == "appended"
        assert (await _submit(p, events[1])).verdict == "duplicate"
        assert p.sample("rrn_ingest_duplicates_total") == 1
        assert p.sample("rrn_ingest_events_total", kind="alert.raised") == 2
        assert p.ingestor.stored == 6
        alerts = await p.store.alerts(
            statuses=None, limit=10, authority=p.ingestor.network.authority
        )
        assert {a.status for a in alerts} == {AlertStatus.RESOLVED}


async def test_gap_is_held_then_released_even_across_a_restart(tmp_path: Path, tn: Net) -> None:
    db = tmp_path / "s.db"
    events = list(Chain(tn, "nairobi-dl").lifecycle(2))  # seq 1..6
    async with running_pipeline(db, tn) as p:
        for e in reversed(events[2:]):
            assert (await _submit(p, e)).verdict == "held"
        assert p.sample("rrn_ingest_held_events") == 4
        assert p.ingestor.stored == 0
    async with running_pipeline(db, tn) as p:  # held events were persisted
        assert (await _submit(p, events[0])).verdict == "appended"
        assert p.ingestor.stored == 1
        assert (await _submit(p, events[1])).verdict == "appended"
        assert p.ingestor.stored == 6, "seq 3..6 follow as soon as the gap closes"
        assert p.sample("rrn_ingest_held_events") == 0
        assert await p.store.pending() == []


async def test_held_events_are_bounded_per_origin_by_the_roster(tmp_path: Path) -> None:
    """The network's limits, not a local constant, bound what one member can make a node
    hold: across all of its chains."""
    limits = msgspec.structs.replace(DEFAULT_LIMITS, held_events=16)
    tn = network("lima-hr", "nairobi-dl", "jakarta-pb", limits=limits)
    events = list(Chain(tn, "nairobi-dl").lifecycle(10))
    others = list(Chain(tn, "jakarta-pb").lifecycle(2))
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        outcomes = [await _submit(p, e) for e in events[1:]]
        assert sum(o.verdict == "held" for o in outcomes) == 16
        assert outcomes[-1].reason is Reason.GAP_OVERFLOW
        assert p.sample("rrn_ingest_rejected_total", reason="gap_overflow") == len(events) - 17
        assert p.sample("rrn_peer_rejected_total", peer="nairobi-dl", reason="gap_overflow") == 0
        # Another member's gap is not charged to nairobi-dl's bound.
        assert all([(await _submit(p, e)).verdict == "held" for e in others[1:]])


async def test_fork_is_recorded_and_freezes_the_chain(tmp_path: Path, tn: Net) -> None:
    honest = Chain(tn, "nairobi-dl")
    a1, a2, a3 = honest.next(raised(0)), honest.next(raised(1)), honest.next(raised(2))
    evil = Chain(tn, "nairobi-dl")
    evil.next(raised(0))
    b2 = evil.next(raised(3))
    db = tmp_path / "s.db"
    async with running_pipeline(db, tn) as p:
        for e in (a1, a2, a3):
            await _submit(p, e)
        assert (
            len(
                await p.store.alerts(
                    statuses=None, limit=10, authority=p.ingestor.network.authority
                )
            )
            == 3
        )
        assert (await _submit(p, b2)).verdict == "fork"
        assert p.sample("rrn_ingest_fork_proofs_total") == 1
        ((origin, epoch, frozen_after, _),) = await p.store.fork_proofs()
        assert (origin, epoch, frozen_after) == ("nairobi-dl", 1, 1)
        alerts = await p.store.alerts(
            statuses=None, limit=10, authority=p.ingestor.network.authority
        )
        assert [a.alert for a in alerts] == [a1.id], "events after the freeze are not applied"
        a4 = honest.next(raised(4))
        out = await _submit(p, a4)
        assert out.reason is Reason.FEED_FROZEN
    async with open_store(db) as store:
        statuses = {row.event.header.seq: row.status async for row in store.iter_events()}
        assert statuses == {1: APPLIED, 2: FROZEN, 3: FROZEN}


async def test_conflict_with_own_chain_blocks_own_appends(tmp_path: Path, tn: Net) -> None:
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        # Our own key signed seq 5 somewhere else: this store is behind the network.
        ghost = Chain(tn, "lima-hr")
        for _ in range(4):
            ghost.next(raised(0))
        ahead = ghost.next(raised(1))
        assert (await _submit(p, ahead)).verdict == "held"
        assert p.ingestor.appends_blocked is not None
        with pytest.raises(StoreError):
            await p.ingestor.append(raised(2))


async def test_rejections_are_counted_by_reason(tmp_path: Path, tn: Net) -> None:
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        e = Chain(tn, "nairobi-dl").next(raised())
        bad_sig = encode((e.header_bytes, bytes(64), e.payload))
        assert (await _submit(p, bad_sig)).reason is Reason.BAD_SIGNATURE
        assert (await _submit(p, b"\x00garbage")).reason is Reason.MALFORMED_ENVELOPE
        assert p.sample("rrn_ingest_rejected_total", reason="bad_signature") == 1
        assert p.sample("rrn_ingest_rejected_total", reason="malformed_envelope") == 1
        assert p.ingestor.stored == 0


async def test_authentic_event_with_bad_payload_keeps_the_chain_whole(
    tmp_path: Path, tn: Net
) -> None:
    db = tmp_path / "s.db"
    chain = Chain(tn, "nairobi-dl")
    odd = sign_event(
        tn.keys["nairobi-dl"],
        net=tn.net,
        origin="nairobi-dl",
        epoch=1,
        seq=1,
        prev=None,
        kind="alert.raised",
        wall_ms=1,
        roster_ver=0,
        payload=b"\x81\xa7country\xa2??",
    )
    chain.seq, chain.prev = 1, odd.id
    after = chain.next(raised())
    future = chain.next(raised(1))
    future_kind = sign_event(
        tn.keys["nairobi-dl"],
        net=tn.net,
        origin="nairobi-dl",
        epoch=1,
        seq=4,
        prev=future.id,
        kind="pledge.made",
        wall_ms=chain.wall_ms + 1000,
        roster_ver=0,
        payload=b"\x80",
    )
    async with running_pipeline(db, tn) as p:
        for e in (odd, after, future, future_kind):
            assert (await _submit(p, e)).verdict == "appended"
        assert p.sample("rrn_ingest_unapplied_total", reason="malformed_payload") == 1
        assert p.sample("rrn_ingest_unapplied_total", reason="unknown_kind") == 1
        assert p.sample("rrn_ingest_events_total", kind="other") == 1
        assert (
            len(
                await p.store.alerts(
                    statuses=None, limit=10, authority=p.ingestor.network.authority
                )
            )
            == 2
        )
    async with open_store(db) as store:
        statuses = [row.status async for row in store.iter_events()]
        assert statuses == [UNAPPLIED, APPLIED, APPLIED, UNAPPLIED]


async def test_open_alert_gauge_follows_the_life_cycle(tmp_path: Path, tn: Net) -> None:
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        r = await p.ingestor.append(raised(0))
        labels = {"severity": "severe", "urgency": "immediate", "exercise": "false"}
        assert p.sample("rrn_alerts_open", **labels) == 1
        await p.ingestor.append(AlertResolved(alert=r.id, outcome=AlertOutcome.SAFE))
        assert p.sample("rrn_alerts_open", **labels) == 0
        assert p.ingestor.open_alerts == 0


async def test_claim_arriving_before_its_alert_is_applied_once_it_arrives(
    tmp_path: Path, tn: Net
) -> None:
    lima = Chain(tn, "nairobi-dl")
    r = lima.next(raised())
    claim = Chain(tn, "jakarta-pb").next(AlertClaimed(alert=r.id))
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        await _submit(p, claim)
        assert (
            await p.store.alerts(statuses=None, limit=10, authority=p.ingestor.network.authority)
            == []
        )
        await _submit(p, r)
        (alert,) = await p.store.alerts(
            statuses=None, limit=10, authority=p.ingestor.network.authority
        )
        assert alert.status is AlertStatus.CLAIMED and alert.claimants == ("jakarta-pb",)


async def test_a_rebuild_keeps_an_erased_alert_erased(tmp_path: Path, tn: Net) -> None:
    """After a fork the node rebuilds every alert from its events; a tombstoned alert's
    raise has no payload any more, yet it must stay erased as on every other node."""
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        r = await p.ingestor.append(raised(0))
        await p.ingestor.append(AlertClaimed(alert=r.id))
        (state,) = (await p.store.alert_states([r.id])).values()
        await forget(p.ingestor, state, TombstoneReason.CONSENT_WITHDRAWN)
        before = (await p.store.alert_states([r.id]))[r.id]
        assert before.erased == "lima-hr" and before.raised is None
        await p.ingestor.rebuild_projection()
        after = (await p.store.alert_states([r.id]))[r.id]
        assert after == before, "the rebuilt state differs from the state every node holds"
        assert (
            await p.store.alerts(statuses=None, limit=10, authority=p.ingestor.network.authority)
            == []
        )


async def test_a_reader_sees_a_batch_only_once_it_is_committed(tmp_path: Path, tn: Net) -> None:
    """The pipeline projects the next batch while the last one commits: an `rrn alert
    show` in between must not show a claim that is not yet on disk (it may never be)."""
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        alert = await p.ingestor.append(raised(0))
        gate = asyncio.Event()
        commit = p.store.commit

        async def held(batch: Batch) -> None:  # the real sqlite commit, once let through
            await gate.wait()
            await commit(batch)

        p.store.commit = held  # type: ignore[method-assign]
        claiming = asyncio.ensure_future(p.ingestor.append(AlertClaimed(alert=alert.id)))
        projection = p.ingestor.projection
        for _ in range(200):  # until the claim is projected, its commit held
            state = await projection.state(alert.id)
            if state is not None and state.claims:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the claim was never projected")
        shown = await projection.committed_state(alert.id)
        assert shown is not None and not shown.claims, "shown before it is durable"
        gate.set()
        await claiming
        shown = await projection.committed_state(alert.id)
        assert shown is not None and shown.claims


async def test_a_rebuild_lays_the_alerts_out_in_raise_order(tmp_path: Path, tn: Net) -> None:
    """The alerts table keeps alerts in the order they were raised, so a change lands
    among the alerts of the same days (migration 8); a rebuild, which reads the events
    chain by chain, writes them back in that order too."""
    db = tmp_path / "s.db"
    async with running_pipeline(db, tn) as p:
        p.clock.advance(60_000)  # Lima's alerts a minute after Nairobi's, whose chain sorts after
        for n in range(3):
            await p.ingestor.append(raised(n))
        for event in Chain(tn, "nairobi-dl").lifecycle(3):
            await (await p.ingestor.submit(event.envelope()))
        await p.ingestor.rebuild_projection()
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT raised_ms, origin FROM alerts ORDER BY rowid").fetchall()
    assert {o for _, o in rows} == {"lima-hr", "nairobi-dl"} and len(rows) == 6
    assert [t for t, _ in rows] == sorted(t for t, _ in rows)
