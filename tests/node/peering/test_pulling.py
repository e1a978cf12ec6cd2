"""How a node pulls a chain it lacks (PROTOCOL 10.2), over a real pipeline and store
with real signed requests and events; NATS is a fake at our seam (what was published):
delivery is tested on real networks (tests/node/test_network.py).

A chain's next page is asked for while one is stored (one at a time, a catch-up
slowed by a quarter once its last chain was all that was left), and a node asks a
peer for no more pages than the peer serves it (the roster's sync_pages_per_min):
a request the peer drops costs a request timeout.

A page an honest peer could not have served (an envelope that does not verify, or
is not the next event of the chain asked for) rests that peer at once, and its range
is asked of another: it was counted as held while it was being stored, and a
turned member answering first with garbage would hold a chain's catch-up back by
20 s a page, again and again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rrn.federation.limits import limits_of
from rrn.node.peering.peers import BACKLOG, SETTLE_S, Peers
from rrn.node.peering.sync import Sync
from rrn.protocol.envelope import Event, sign_event
from rrn.protocol.messages import (
    MAX_RANGE_EVENTS,
    RangeRequest,
    RangeResponse,
    encode_response,
    open_request,
)
from tests.node.conftest import Pipeline, running_pipeline
from tests.node.peering.support import Monotonic, peers_on_pipeline
from tests.support import Chain, Net, raised

NAIROBI = "nairobi-dl"
JAKARTA = "jakarta-pb"


class _Nats:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def publish(self, subject: str, data: bytes) -> None:
        self.sent.append((subject, data))


def _sync(p: Pipeline, peers: Peers, nats: _Nats) -> Sync:
    return Sync(nc=nats, ingestor=p.ingestor, store=p.store, peers=peers, clock=p.clock)  # type: ignore[arg-type]


def _asked(p: Pipeline, nats: _Nats) -> list[RangeRequest]:
    keyring = p.ingestor.network.keyring
    found = [open_request(d, net=p.tn.net, key_for=keyring.current) for _, d in nats.sent]
    nats.sent.clear()
    return found


def _nairobi_behind(
    tn: Net, p: Pipeline, peers: Peers, clock: Monotonic, n: int, holder: str = NAIROBI
) -> tuple[_Nats, Sync, list[Event]]:
    """A sync over a fake NATS, and `n` events of Nairobi's chain that `holder` (heard
    just now) says it holds and this node lacks."""
    nats = _Nats()
    sync = _sync(p, peers, nats)
    chain = Chain(tn, NAIROBI)
    events = [chain.next(raised(i)) for i in range(n)]
    state = sync.peers.peer(holder)
    state.last_heartbeat, state.heads = clock(), {(NAIROBI, 1): len(events)}
    return nats, sync, events


async def test_the_next_page_of_a_chain_is_asked_for_while_one_is_stored(
    tmp_path: Path, tn: Net
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        nats, sync, events = _nairobi_behind(tn, p, peers, clock, 2 * MAX_RANGE_EVENTS + 500)
        await sync._request_gaps()
        first = _asked(p, nats)
        assert [(r.origin, r.from_seq) for r in first] == [(NAIROBI, 1), (NAIROBI, 2001)]
        await sync._request_gaps()
        assert _asked(p, nats) == [], "two pages of a chain at once, not more"
        # The first page comes back cut short by size: the rest of it is asked for.
        envelopes = [e.envelope() for e in events]
        short = RangeResponse(first[0].nonce, NAIROBI, 1, envelopes[:1500], True)
        await sync.answered(NAIROBI, encode_response(short))
        assert [(r.from_seq, r.limit) for r in _asked(p, nats)] == [(1501, 500)]
        # The second page, whole: the third is asked for (the rest of the first is still
        # on its way).
        second = RangeResponse(first[1].nonce, NAIROBI, 1, envelopes[2000:4000], True)
        await sync.answered(NAIROBI, encode_response(second))
        assert [(r.from_seq, r.limit) for r in _asked(p, nats)] == [(4001, 2000)]


async def test_a_node_asks_a_peer_for_no_more_pages_than_it_serves(tmp_path: Path, tn: Net) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        nats = _Nats()
        sync = _sync(p, peers, nats)
        per_min = limits_of(p.ingestor.network.roster).sync_pages_per_min
        state = sync.peers.peer(NAIROBI)
        state.last_heartbeat = clock()
        chains = [(f"chain{k}", 1) for k in range(per_min)]  # one page each
        sent = 0
        for origin, epoch in chains:
            state.outstanding = 0  # (the per-peer cap is not what is tested here)
            sent += await sync._send_request(state, origin, epoch, 1)
        assert 0 < sent < per_min, "within what the peer serves this node (less a margin)"
        assert not await sync._send_request(state, "late", 1, 1)
        pause = sync._pause_s()
        assert 0.05 <= pause < 1.0, "it looks again when a page's worth has come back"
        clock.now += 60 / per_min
        assert await sync._send_request(state, "late", 1, 1)


async def test_a_page_lost_below_one_answered_is_asked_for_again(tmp_path: Path, tn: Net) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        nats, sync, events = _nairobi_behind(tn, p, peers, clock, 3 * MAX_RANGE_EVENTS)
        nairobi = sync.peers.peer(NAIROBI)
        await sync._request_gaps()
        _, second = _asked(p, nats)
        # The second page comes; the first never does (its request times out).
        envelopes = [e.envelope() for e in events[2000:4000]]
        await sync.answered(
            NAIROBI, encode_response(RangeResponse(second.nonce, NAIROBI, 1, envelopes, True))
        )
        assert [r.from_seq for r in _asked(p, nats)] == [4001], (
            "the third page, not the second again"
        )
        clock.now += 11
        nairobi.last_heartbeat = clock()
        sync._expire_requests()
        await sync._request_gaps()
        # Both the first and the third timed out: both are asked for again, the second
        # (answered, being stored) is not.
        assert [r.from_seq for r in _asked(p, nats)] == [1, 4001], "the lost page is not hidden"


async def test_a_page_served_is_each_event_as_its_origin_signed_it(tmp_path: Path, tn: Net) -> None:
    async with running_pipeline(tmp_path / "store.db", tn) as p:
        events = list(Chain(tn, NAIROBI).lifecycle(3))
        for event in events:
            await (await p.ingestor.submit(event.envelope()))
        served, more = await p.store.envelopes(NAIROBI, 1, 2, limit=5, max_bytes=1 << 20)
        assert (served, more) == ([e.envelope() for e in events[1:6]], True)
        served, more = await p.store.envelopes(NAIROBI, 1, 8, limit=5, max_bytes=1 << 20)
        assert (served, more) == ([e.envelope() for e in events[7:]], False)


def _forged(event: Event) -> bytes:
    """The event's envelope with one bit of its signature flipped."""
    sig = bytes([event.sig[0] ^ 1]) + event.sig[1:]
    return Event(event.id, event.header, event.header_bytes, sig, event.payload).envelope()


def _not_asked(tn: Net, events: list[Event]) -> list[bytes]:
    """Authentic events, of another chain than the one asked for."""
    other = Chain(tn, JAKARTA)
    return [other.next(raised(i)).envelope() for i in range(len(events))]


def _repeated(tn: Net, events: list[Event]) -> list[bytes]:
    """The events asked for, authentic, the first in place of the second."""
    envelopes = [e.envelope() for e in events]
    return [envelopes[0], envelopes[0], *envelopes[2:]]


def _unknown_epoch(tn: Net, events: list[Event]) -> list[bytes]:
    """Signed by no key anyone knows, under an epoch of Nairobi's nobody knows: refused
    as an unknown epoch before any signature is checked, and not the event asked for."""
    key = Ed25519PrivateKey.generate()
    return [
        sign_event(key, net=tn.net, origin=NAIROBI, epoch=9, seq=i + 1,
                   prev=None if i == 0 else bytes(32), kind="alert.raised",
                   wall_ms=e.header.wall_ms, roster_ver=0, payload=e.payload or b"").envelope()
        for i, e in enumerate(events)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "missing", "believed"),
    [
        # A bad signature may be this node's view of the keys (a roster it has not yet
        # adopted, one side of a forked rotation): a failure, not proof.
        (lambda tn, events: [_forged(events[0]), *(e.envelope() for e in events[1:])], 1, True),
        (_not_asked, 1, False),
        (_repeated, 2, False),
        (_unknown_epoch, 1, False),
    ],
    ids=["a forged signature", "another chain", "one event twice", "an unknown epoch"],
)
async def test_a_page_no_honest_peer_could_serve_rests_it_and_is_asked_of_another(
    tmp_path: Path,
    tn: Net,
    answer: Callable[[Net, list[Event]], list[bytes]],
    missing: int,
    believed: bool,
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        nats, sync, events = _nairobi_behind(tn, p, peers, clock, 50, holder=JAKARTA)
        nairobi = sync.peers.peer(NAIROBI)
        await sync._request_gaps()
        (asked,) = _asked(p, nats)
        assert asked.responder == JAKARTA
        page = RangeResponse(asked.nonce, NAIROBI, 1, answer(tn, events), False)
        await sync.answered(JAKARTA, encode_response(page))
        await p.ingestor.flush()
        assert sync.peers.believes(JAKARTA) is believed
        assert sync.peers.peer(JAKARTA).failures >= 1, "its failures are not forgiven"
        nairobi.last_heartbeat, nairobi.heads = clock(), {(NAIROBI, 1): len(events)}
        clock.now += 1  # not the 20 s an answered range counts as held
        await sync._request_gaps()
        again = _asked(p, nats)
        assert [(r.responder, r.from_seq) for r in again] == [(NAIROBI, missing)], (
            "what it did not deliver is asked of another peer, at once"
        )


async def test_a_peers_failures_are_forgiven_once_its_page_verifies_not_before(
    tmp_path: Path, tn: Net
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        nats, sync, events = _nairobi_behind(tn, p, peers, clock, 50)
        nairobi = sync.peers.peer(NAIROBI)
        await sync._request_gaps()
        (asked,) = _asked(p, nats)
        nairobi.failures = 2  # two requests timed out before
        page = RangeResponse(asked.nonce, NAIROBI, 1, [e.envelope() for e in events], False)
        await sync.answered(NAIROBI, encode_response(page))
        assert nairobi.failures == 2, "an answer is not yet a good one: its events may be false"
        await p.ingestor.flush()
        assert nairobi.failures == 0
        assert p.ingestor.heads[(NAIROBI, 1)].seq == len(events)


async def test_a_page_longer_than_asked_rests_its_peer(tmp_path: Path, tn: Net) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        nats, sync, events = _nairobi_behind(tn, p, peers, clock, 30)
        nairobi = sync.peers.peer(NAIROBI)
        assert await sync._send_request(nairobi, NAIROBI, 1, 1, limit=10)
        (asked,) = _asked(p, nats)
        page = RangeResponse(asked.nonce, NAIROBI, 1, [e.envelope() for e in events], False)
        await sync.answered(NAIROBI, encode_response(page))
        assert not sync.peers.believes(NAIROBI), "it covered pages asked of others"
        assert sync._ranges.have((NAIROBI, 1), 0, clock()) == 0, "and counts as holding nothing"


@pytest.mark.parametrize("forged", [False, True], ids=["a page that verifies", "a forged one"])
async def test_only_a_page_that_verifies_keeps_a_node_waiting_to_act(
    tmp_path: Path, tn: Net, forged: bool
) -> None:
    async with peers_on_pipeline(tmp_path / "store.db", tn) as (p, clock, peers):
        nats, sync, events = _nairobi_behind(tn, p, peers, clock, 50)
        nairobi = sync.peers.peer(NAIROBI)
        clock.now += SETTLE_S - 5
        nairobi.last_heartbeat = clock()
        await sync._request_gaps()
        (asked,) = _asked(p, nats)
        nairobi.heads = {(NAIROBI, 1): 50 + BACKLOG}  # a backlog beyond this first page
        envelopes = [e.envelope() for e in events]
        if forged:
            envelopes[0] = _forged(events[0])
        page = RangeResponse(asked.nonce, NAIROBI, 1, envelopes, False)
        await sync.answered(NAIROBI, encode_response(page))
        await p.ingestor.flush()
        clock.now += 10  # past SETTLE_S, still behind
        nairobi.last_heartbeat = clock()
        assert sync.peers.behind_total() > 0
        assert sync.peers.settled() is forged, (
            "history verified 10 s ago: it waits for the rest; garbage is no progress"
        )
