"""When a node that just started may act on what it holds (escalations, missed
check-ins): once it holds what the peers it believes say they hold and has stored and
announced all it took in; after SETTLE_S if its catch-up stopped progressing; after
SETTLE_MAX_S in any case. Over a real pipeline and store; the
peers' heartbeats and sync outcomes are set by hand (delivery is tested on real
networks: tests/node/devnet/test_wan.py restarts a node behind 2 s round trips)."""

from __future__ import annotations

from pathlib import Path

from rrn.node.home.config import FederationConfig
from rrn.node.peering.peers import (
    BACKLOG,
    FAILURES_TO_REST,
    PROGRESS_S,
    SETTLE_MAX_S,
    SETTLE_S,
    Peers,
)
from tests.node.conftest import Pipeline
from tests.node.peering.support import peers_on_pipeline
from tests.support import Chain, Net, raised

NAIROBI, JAKARTA = "nairobi-dl", "jakarta-pb"
#: Three heartbeats: a node waits that long to hear every member that is up.
HEARD_ALL_S = 3 * FederationConfig().heartbeat_s


async def test_a_late_answer_does_not_make_a_node_behind_look_caught_up(
    tmp_path: Path, tn: Net
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        assert not peers.settled(), "heard nobody yet"
        nairobi = peers.peer(NAIROBI)
        nairobi.last_heartbeat, nairobi.heads = clock.now, {(NAIROBI, 1): 3}
        assert not peers.settled(), "Nairobi holds three events this node lacks"
        nairobi.failures = 1  # a request to it timed out: a slow link, not a lie
        assert not peers.settled()
        assert peers.behind_total() == 3
        for event in Chain(tn, NAIROBI).lifecycle(1):
            await (await p.ingestor.submit(event.envelope()))
        assert not peers.settled(), "caught up with Nairobi, but others may not be heard yet"
        clock.now += HEARD_ALL_S
        assert peers.settled()
        clock.now += SETTLE_S  # latched
        nairobi.heads = {(NAIROBI, 1): 9}
        assert peers.settled()


async def test_what_a_peer_that_does_not_serve_it_says_holds_nothing_back(
    tmp_path: Path, tn: Net
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (_p, clock, peers):
        clock.now += HEARD_ALL_S
        liar = peers.peer(JAKARTA)
        liar.last_heartbeat, liar.heads = clock.now, {(NAIROBI, 1): 1_000_000}
        assert not peers.settled()
        liar.unserved = True  # it answered a range it says it holds with nothing
        assert not peers.settled(), "a liar heard is not a peer believed"
        nairobi = peers.peer(NAIROBI)
        nairobi.last_heartbeat, nairobi.heads = clock.now, {}
        assert peers.behind_total() == 0
        assert peers.settled()


async def test_a_node_waits_while_what_it_placed_is_not_yet_stored_and_announced(
    tmp_path: Path, tn: Net
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        nairobi = peers.peer(NAIROBI)
        nairobi.last_heartbeat, nairobi.heads = clock.now, {}
        clock.now += HEARD_ALL_S
        await _settles_once_stored(p, tn, peers, "an event is taken in, not yet stored")


async def test_peers_that_only_fail_or_silence_leave_a_node_to_act_after_settle_s(
    tmp_path: Path, tn: Net
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (_p, clock, peers):
        for org in (NAIROBI, JAKARTA):
            state = peers.peer(org)
            state.last_heartbeat, state.failures = clock.now, FAILURES_TO_REST
        assert peers.behind_total() == 0
        assert not peers.settled(), "rested peers say nothing either way"
        clock.now += SETTLE_S - 1
        assert not peers.settled()
        clock.now += 1
        assert peers.settled(), "alone, or behind links too slow to tell, it must act"


async def test_what_no_sync_could_fetch_holds_nothing_back(tmp_path: Path, tn: Net) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (_, clock, peers):
        clock.now += HEARD_ALL_S
        nairobi = peers.peer(NAIROBI)
        # An origin no roster names: no request for it is ever sent, so no answer could
        # ever unsay the claim (a turned member could hold every restart back a minute).
        nairobi.last_heartbeat, nairobi.heads = clock.now, {("nobody-xx", 1): 500}
        assert peers.behind_total() == 0
        assert peers.settled()


async def test_a_late_joiner_pulling_history_waits_past_settle_s_until_it_holds_it(
    tmp_path: Path, tn: Net
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        chain = Chain(tn, NAIROBI)
        history = [chain.next(raised(i)) for i in range(BACKLOG + 10)]
        nairobi = peers.peer(NAIROBI)
        nairobi.last_heartbeat, nairobi.heads = clock.now, {(NAIROBI, 1): len(history)}
        for page in range(4):  # a page every 20 s, as over a slow link
            await (await p.ingestor.submit(history[page].envelope()))
            peers.pulled()  # (sync says so once a page pulled verified: test_pulling.py)
            clock.now += 20
            nairobi.last_heartbeat = clock.now
            assert not peers.settled(), "a page or more behind: an alert's claim may be missing"
        assert clock.now - 100.0 > SETTLE_S
        for event in history[4:20]:
            await (await p.ingestor.submit(event.envelope()))
        await p.ingestor.flush()
        peers.pulled()
        assert peers.behind_total() < BACKLOG
        assert peers.settled(), "less than a page behind: the newest events, not old claims"


async def test_a_catch_up_that_stops_progressing_leaves_a_node_to_act_after_settle_s(
    tmp_path: Path, tn: Net
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (_p, clock, peers):
        nairobi = peers.peer(NAIROBI)
        nairobi.last_heartbeat, nairobi.heads = clock.now, {(NAIROBI, 1): 5 * BACKLOG}
        clock.now += SETTLE_S - 10
        peers.pulled()
        assert not peers.settled()
        clock.now += 10
        assert not peers.settled(), "a page came 10 s ago"
        clock.now += PROGRESS_S - 10
        assert peers.settled(), "nothing more came in PROGRESS_S: it acts on what it has"


async def test_live_traffic_is_not_progress_of_a_stalled_catch_up(tmp_path: Path, tn: Net) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        nairobi = peers.peer(NAIROBI)
        # Jakarta's chain is claimed and never comes; Nairobi's own events flow live.
        nairobi.last_heartbeat, nairobi.heads = clock.now, {(JAKARTA, 1): 5 * BACKLOG}
        live = Chain(tn, NAIROBI)
        for i in range(7):
            await (await p.ingestor.submit(live.next(raised(i)).envelope()))
            clock.now += 10
            nairobi.last_heartbeat = clock.now
        await p.ingestor.flush()
        assert clock.now - 100.0 >= SETTLE_S
        assert peers.settled(), "behind on a chain that does not come: it acts after SETTLE_S"


async def test_a_node_kept_a_few_events_behind_by_a_busy_network_acts_after_settle_s(
    tmp_path: Path, tn: Net
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        nairobi = peers.peer(NAIROBI)
        while clock.now - 100.0 < SETTLE_S:  # lost events pulled again, new ones claimed
            nairobi.last_heartbeat, nairobi.heads = clock.now, {(JAKARTA, 1): 3}
            peers.pulled()
            assert not peers.settled()
            clock.now += 5
        reply = await p.ingestor.submit(Chain(tn, NAIROBI).next(raised()).envelope())
        assert peers.settled(), "a few events behind a live network, busy, is not a backlog"
        await reply


async def test_a_node_waits_while_the_last_pages_of_a_backlog_are_stored(
    tmp_path: Path, tn: Net
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        nairobi = peers.peer(NAIROBI)
        nairobi.last_heartbeat, nairobi.heads = clock.now, {(JAKARTA, 1): 5 * BACKLOG}
        clock.now += SETTLE_S
        peers.pulled()
        assert not peers.settled(), "a backlog"
        nairobi.heads = {}  # its last page pulled: nothing more is claimed
        await _settles_once_stored(p, tn, peers, "its last page is taken in, not yet stored")


async def test_a_peer_that_feeds_history_slowly_holds_a_node_back_no_longer_than_the_max(
    tmp_path: Path, tn: Net
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (_p, clock, peers):
        turned = peers.peer(NAIROBI)
        turned.last_heartbeat, turned.heads = clock.now, {(NAIROBI, 1): 5 * BACKLOG}
        step = PROGRESS_S - 1  # a real page just often enough to look like progress
        while clock.now - 100.0 + step < SETTLE_MAX_S:
            peers.pulled()
            clock.now += step
            turned.last_heartbeat = clock.now
            assert not peers.settled()
        clock.now = 100.0 + SETTLE_MAX_S
        assert peers.settled(), "a trickle holds its escalations back at most SETTLE_MAX_S"


async def _settles_once_stored(p: Pipeline, tn: Net, peers: Peers, why: str) -> None:
    """An event of Nairobi's taken in: the node settles once it is stored and announced."""
    reply = await p.ingestor.submit(next(Chain(tn, NAIROBI).lifecycle(1)).envelope())
    assert peers.behind_total() == 0
    assert not peers.settled(), why
    await reply
    await p.ingestor.flush()
    assert peers.settled()
