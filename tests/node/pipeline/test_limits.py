"""What one member can make a node hold is bounded, and the time it claims moves forward
only: the rules of federation/limits.py in the pipeline, over a real sqlite store."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest

from rrn.federation.limits import DEFAULT_LIMITS, MAX_FUTURE_MS
from rrn.node.pipeline.ingest import Outcome
from rrn.node.store.db import open_store
from rrn.node.store.rows import APPLIED, UNAPPLIED
from rrn.protocol.alerts import AlertClaimed
from rrn.protocol.errors import ProtocolError, Reason
from rrn.protocol.kinds import encode_payload
from tests.node.conftest import Pipeline, running_pipeline
from tests.support import Chain, Net, network, raised

DAY_EVENTS = 100  # the smallest quota a roster may set


def _net(**limits: int) -> Net:
    return network(
        "lima-hr",
        "nairobi-dl",
        "jakarta-pb",
        limits=msgspec.structs.replace(DEFAULT_LIMITS, **limits),
    )


async def _submit(p: Pipeline, raw: bytes) -> Outcome:
    result = await (await p.ingestor.submit(raw))
    assert isinstance(result, Outcome)
    return result


async def _stored_ids(db: Path) -> set[bytes]:
    async with open_store(db) as store:
        return {row.event.id async for row in store.iter_events()}


async def test_a_daily_quota_refuses_the_same_events_on_every_node(tmp_path: Path) -> None:
    """Past its day's quota an origin's chain stops, on every node alike, whatever the
    order events arrive in; nothing after the refused event is asked for again."""
    tn = _net(day_events=DAY_EVENTS)
    chain = Chain(tn, "nairobi-dl")
    events = [chain.next(raised(i)) for i in range(DAY_EVENTS + 5)]
    stored = []
    for seed in range(2):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        db = tmp_path / f"node{seed}.db"
        async with running_pipeline(db, tn) as p:
            for e in shuffled:
                await _submit(p, e.envelope())
            assert p.ingestor.stored == DAY_EVENTS
            assert p.ingestor.chains.stuck == {("nairobi-dl", 1): DAY_EVENTS + 1}
            assert p.sample("rrn_ingest_rejected_total", reason="quota_exceeded") >= 1
        stored.append(await _stored_ids(db))
    assert stored[0] == stored[1] == {e.id for e in events[:DAY_EVENTS]}


async def test_the_quota_counts_payload_bytes_too(tmp_path: Path) -> None:
    tn = _net(day_bytes=1 << 20)
    chain = Chain(tn, "nairobi-dl")
    small = chain.next(raised(0))
    heavy = [chain.raw("junk.kind", bytes(60_000)) for _ in range(20)]
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        outcomes = [await _submit(p, e.envelope()) for e in [small, *heavy]]
        appended = [o for o in outcomes if o.verdict == "appended"]
        assert len(appended) == 1 + (1 << 20) // 60_000
        assert outcomes[len(appended)].reason is Reason.QUOTA_EXCEEDED


async def test_this_node_never_signs_past_its_quota(tmp_path: Path) -> None:
    tn = _net(day_events=DAY_EVENTS)
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        first = await p.ingestor.append(raised(0))
        for _ in range(DAY_EVENTS - 1):
            await p.ingestor.append(AlertClaimed(alert=first.id))
        with pytest.raises(ProtocolError) as err:
            await p.ingestor.append(AlertClaimed(alert=first.id))
        assert err.value.reason is Reason.QUOTA_EXCEEDED
        assert "events in one day" in str(err.value)
        p.clock.advance(86_400_000)  # the next UTC day of its own clock
        assert (await p.ingestor.append(AlertClaimed(alert=first.id))).header.seq == DAY_EVENTS + 1


async def test_the_quota_survives_a_restart(tmp_path: Path) -> None:
    tn = _net(day_events=DAY_EVENTS)
    chain = Chain(tn, "nairobi-dl")
    events = [chain.next(raised(i)) for i in range(DAY_EVENTS + 1)]
    db = tmp_path / "s.db"
    async with running_pipeline(db, tn) as p:
        for e in events[:60]:
            assert (await _submit(p, e.envelope())).verdict == "appended"
    async with running_pipeline(db, tn) as p:
        outcomes = [await _submit(p, e.envelope()) for e in events[60:]]
        assert [o.verdict for o in outcomes].count("appended") == DAY_EVENTS - 60
        assert outcomes[-1].reason is Reason.QUOTA_EXCEEDED


async def test_time_going_back_along_a_chain_is_kept_but_not_applied(tmp_path: Path) -> None:
    tn = _net()
    chain = Chain(tn, "nairobi-dl")
    first = chain.next(raised(0))
    earlier = chain.raw("alert.raised", encode_payload(raised(1)), wall_ms=first.header.wall_ms - 1)
    later = chain.next(raised(2))
    db = tmp_path / "s.db"
    async with running_pipeline(db, tn) as p:
        for e in (first, earlier, later):
            assert (await _submit(p, e.envelope())).verdict == "appended"
        assert p.sample("rrn_ingest_unapplied_total", reason="time_regression") == 1
        views = await p.store.alerts(
            statuses=None, limit=10, authority=p.ingestor.network.authority
        )
        assert {v.alert for v in views} == {first.id, later.id}
    async with open_store(db) as store:
        assert [r.status async for r in store.iter_events()] == [APPLIED, UNAPPLIED, APPLIED]


async def test_own_events_never_go_back_in_time(tmp_path: Path) -> None:
    tn = _net()
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        first = await p.ingestor.append(raised(0))
        p.clock.set(first.header.wall_ms - 60_000)  # the clock is stepped back a minute
        second = await p.ingestor.append(AlertClaimed(alert=first.id))
        assert second.header.wall_ms == first.header.wall_ms


async def test_an_event_from_the_future_waits_until_its_time(tmp_path: Path) -> None:
    tn = _net()
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        now = p.clock.now_ms()
        chain = Chain(tn, "nairobi-dl", start_ms=now + MAX_FUTURE_MS + 60_000 - 1000)
        ahead, after = chain.next(raised(0)), chain.next(raised(1))
        assert (await _submit(p, ahead.envelope())).verdict == "held"
        assert (await _submit(p, after.envelope())).verdict == "held"
        assert p.ingestor.stored == 0
        p.clock.advance(61_000)
        await p.ingestor.release_due_now()
        assert p.ingestor.stored == 2, "placed once its time is near, with what followed it"
        assert await p.store.pending() == []


async def test_an_absurd_time_is_never_applied_and_never_crashes(tmp_path: Path) -> None:
    tn = _net()
    chain = Chain(tn, "nairobi-dl")
    first = chain.next(raised(0))
    absurd = chain.raw("alert.raised", encode_payload(raised(1)), wall_ms=2**53 - 1)
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        assert (await _submit(p, first.envelope())).verdict == "appended"
        assert (await _submit(p, absurd.envelope())).verdict == "held"
        p.clock.advance(365 * 86_400_000)
        await p.ingestor.release_due_now()
        assert p.ingestor.stored == 1
        views = await p.store.alerts(
            statuses=None, limit=10, authority=p.ingestor.network.authority
        )
        assert [v.alert for v in views] == [first.id]


async def test_two_events_held_at_one_position_are_fork_evidence(tmp_path: Path) -> None:
    """A second, different event at a held position is never held: it proves the origin
    signed two histories."""
    tn = _net()
    honest, liar = Chain(tn, "nairobi-dl"), Chain(tn, "nairobi-dl")
    a1, a2 = honest.next(raised(0)), honest.next(raised(1))
    liar.next(raised(0))
    b2 = liar.next(raised(2))
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        assert (await _submit(p, a2.envelope())).verdict == "held"
        assert (await _submit(p, b2.envelope())).verdict == "fork"
        assert p.ingestor.chains.frozen[("nairobi-dl", 1)] == 1
        assert p.sample("rrn_ingest_held_events") == 1
        assert (await _submit(p, a1.envelope())).verdict == "appended"


async def test_held_bytes_are_bounded_per_origin(tmp_path: Path) -> None:
    tn = _net(held_bytes=65_536 * 2)
    chain = Chain(tn, "nairobi-dl")
    chain.next(raised(0))  # never delivered: everything after it waits
    waiting = [chain.raw("junk.kind", bytes(60_000)) for _ in range(4)]
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        outcomes = [await _submit(p, e.envelope()) for e in waiting]
        assert [o.verdict for o in outcomes] == ["held", "held", "rejected", "rejected"]
        assert outcomes[-1].reason is Reason.GAP_OVERFLOW


async def test_a_roster_version_going_back_or_refs_are_kept_but_not_applied(
    tmp_path: Path,
) -> None:
    """roster_ver never goes back along a chain, and no v1 kind names refs: a signer that
    breaks either keeps its chain whole and changes no view."""
    tn = _net()
    chain = Chain(tn, "nairobi-dl")
    first = chain.next(raised(0))
    at = first.header.wall_ms
    newer = chain.raw("alert.raised", encode_payload(raised(1)), wall_ms=at + 1000, roster_ver=5)
    older = chain.raw("alert.raised", encode_payload(raised(2)), wall_ms=at + 2000, roster_ver=4)
    with_refs = chain.raw(
        "alert.raised", encode_payload(raised(3)), wall_ms=at + 3000, roster_ver=5, refs=[first.id]
    )
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        for e in (first, newer, older, with_refs):
            assert (await _submit(p, e.envelope())).verdict == "appended"
        assert p.sample("rrn_ingest_unapplied_total", reason="roster_regression") == 1
        assert p.sample("rrn_ingest_unapplied_total", reason="refs_not_empty") == 1
        views = await p.store.alerts(
            statuses=None, limit=10, authority=p.ingestor.network.authority
        )
        assert {v.alert for v in views} == {first.id, newer.id}
