"""When a node that just started may act on what it holds (escalations, missed
check-ins): once it holds what the peers it believes say they hold and has stored and
announced all it took in, or after SETTLE_S. Over a real pipeline and store; the
peers' heartbeats and sync outcomes are set by hand (delivery is tested on real
networks: tests/node/devnet/test_wan.py restarts a node behind 2 s round trips)."""

from __future__ import annotations

from pathlib import Path

from rrn.node.home.config import FederationConfig
from rrn.node.peering.peers import FAILURES_TO_REST, SETTLE_S
from tests.node.peering.support import peers_on_pipeline
from tests.support import Chain, Net

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
        reply = await p.ingestor.submit(next(Chain(tn, NAIROBI).lifecycle(1)).envelope())
        assert peers.behind_total() == 0
        assert not peers.settled(), "an event is taken in, not yet stored"
        await reply
        await p.ingestor.flush()
        assert peers.settled()


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
