"""Pull sync: asking peers for the ranges of chains this node lacks, and serving theirs.

Owns range requests and responses (docs/PROTOCOL.md 10.2). Requests are signed
and answered only once (nonces), responses are accepted only for a nonce this
node sent to that peer and for the chain it asked; every envelope in a response
is verified on its own by the ingest pipeline. A response an honest peer could not
have sent (an envelope that is not the next event of the chain asked for, or bytes no
store holds) rests that peer at once; an envelope refused for what this node's view
of keys and rules may explain counts a failure; either way its range is asked for
again at once, of the peer with the fewest failures. Any peer that holds a
range can serve it, so a node catches up while the origin itself is offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError

from rrn.federation.limits import limits_of
from rrn.federation.ratelimit import TokenBucket
from rrn.federation.sync import gaps
from rrn.node.home.clock import Clock, wait_set
from rrn.node.peering.peers import FAILURES_TO_REST, Peers, PeerState
from rrn.node.peering.ranges import Ranges
from rrn.node.pipeline.batch import Item
from rrn.node.pipeline.ingest import Ingestor
from rrn.node.pipeline.verify import Checked
from rrn.node.store.db import Store
from rrn.protocol import subjects
from rrn.protocol.envelope import Event, open_envelope
from rrn.protocol.errors import ProtocolError, Reason
from rrn.protocol.messages import (
    MAX_RANGE_EVENTS,
    MAX_RESPONSE_BYTES,
    MESSAGE_VERSION,
    HeadEntry,
    RangeRequest,
    RangeResponse,
    decode_response,
    encode_response,
    open_request,
    sign_request,
)

__all__ = ["Sync"]

logger = logging.getLogger(__name__)

_REQUEST_TIMEOUT_S: Final = 10.0
_MAX_SKEW_MS: Final = 10 * 60 * 1000
_NONCES_KEPT: Final = 10_000
_PER_PEER_REQUESTS: Final = 4
#: Pages of one chain asked for at once: the next is on its way while one is stored (one
#: at a time, a catch-up slowed by a quarter once its last chain was all that was left).
_PAGES_AHEAD: Final = 2
#: Pages of a peer's serving budget (the roster's sync_pages_per_min) left unasked: a
#: request it would drop costs a request timeout, so this node asks within it.
_ASK_MARGIN: Final = 4
_BACKOFF_S: Final = 30.0
#: Refusals of an envelope, in the place asked for, that no honest peer serves: it
#: stores only what verified, and these do not depend on which keys or rules a node
#: knows. (Not a bad signature: a node behind on the roster, or shown one side of a
#: forked rotation, holds another key for the same epoch; nor an unknown origin or
#: epoch, nor a chain rule, which the origin broke, not the peer.)
_SERVED_FALSE: Final = frozenset(
    {Reason.WRONG_NETWORK, Reason.PAYLOAD_LENGTH_MISMATCH, Reason.PAYLOAD_HASH_MISMATCH}
)


@dataclass
class _Request:
    peer: str
    origin: str
    epoch: int
    from_seq: int
    limit: int
    sent: float


class Sync:
    """This node's range requests in flight, and the peers' requests it has answered."""

    def __init__(
        self, *, nc: NatsClient, ingestor: Ingestor, store: Store, peers: Peers, clock: Clock
    ) -> None:
        self.nc = nc
        self.ingestor = ingestor
        self.store = store
        self.peers = peers
        self.metrics = peers.metrics
        self.clock = clock
        self.wake = asyncio.Event()
        self._requests: dict[bytes, _Request] = {}
        #: What of each chain is asked for and what came back (node/peering/ranges.py).
        #: An answer counts as held for two request timeouts: a page lost below it is
        #: given up after one and asked for again, and the answer still covers its range.
        self._ranges = Ranges(keep_s=2 * _REQUEST_TIMEOUT_S, page=MAX_RANGE_EVENTS)
        #: Peer -> the pages this node may ask of it now (what it serves, PROTOCOL 10.2).
        self._asking: dict[str, TokenBucket] = {}
        self._seen_nonces: OrderedDict[bytes, None] = OrderedDict()
        ingestor.on_pulled = self._checked

    @property
    def _me(self) -> str:
        return self.ingestor.me.org

    @property
    def _net(self) -> bytes:
        return self.ingestor.network.net

    # -- serving --------------------------------------------------------------------

    async def serve(self, org: str, data: bytes) -> None:
        """Answer a range request `org` sent (already admitted by its budget)."""
        if not self.peers.may_serve(org):
            return
        try:
            req = open_request(data, net=self._net, key_for=self.ingestor.network.keyring.current)
        except ProtocolError as exc:
            self.peers.count(org, exc.reason)
            return
        fresh = abs(req.wall_ms - self.clock.now_ms()) <= _MAX_SKEW_MS
        if (
            req.requester != org
            or req.responder != self._me
            or not fresh
            or self._replayed(req.nonce)
        ):
            self.peers.count(org, Reason.STALE_MESSAGE)
            return
        events, more = await self.store.envelopes(
            req.origin, req.epoch, req.from_seq, limit=req.limit, max_bytes=MAX_RESPONSE_BYTES
        )
        resp = RangeResponse(
            nonce=req.nonce, origin=req.origin, epoch=req.epoch, events=events, more=more
        )
        self.metrics.sync_served.labels(peer=org).inc(len(events))
        with contextlib.suppress(NatsError):
            await self.nc.publish(
                subjects.responses(self._net, self._me, org), encode_response(resp)
            )

    def _replayed(self, nonce: bytes) -> bool:
        if nonce in self._seen_nonces:
            return True
        self._seen_nonces[nonce] = None
        while len(self._seen_nonces) > _NONCES_KEPT:
            self._seen_nonces.popitem(last=False)
        return False

    # -- pulling ----------------------------------------------------------------------

    async def run(self) -> None:
        """Ask for what peers hold and this node lacks, until cancelled."""
        while True:
            await wait_set(self.wake, self._pause_s())
            self.wake.clear()
            self._expire_requests()
            await self._request_gaps()

    def _pause_s(self) -> float:
        """Until the next look: a second, or sooner when a page could not be asked for
        only because a peer's budget had run out (it refills a page at a time)."""
        now, pause = self.peers.monotonic(), 1.0
        for bucket in self._asking.values():
            if bucket.left(now) < 1:
                pause = min(pause, (1 - bucket.left(now)) / bucket.rate)
        return max(0.05, pause)

    def _expire_requests(self) -> None:
        now = self.peers.monotonic()
        for nonce, req in list(self._requests.items()):
            if now - req.sent > _REQUEST_TIMEOUT_S:
                self._drop(nonce)
                self._failed(req.peer, "timeout")
        self._ranges.expire(now, older_s=30 * _REQUEST_TIMEOUT_S)

    def _drop(self, nonce: bytes) -> _Request | None:
        req = self._requests.pop(nonce, None)
        if req is not None:
            self._ranges.closed((req.origin, req.epoch), req.from_seq, nonce)
            self.peers.peer(req.peer).outstanding -= 1
        return req

    def _failed(self, org: str, outcome: str, *, rest: bool = False) -> None:
        state = self.peers.peer(org)
        state.failures = max(state.failures + 1, FAILURES_TO_REST if rest else 0)
        self.metrics.sync_requests.labels(peer=org, outcome=outcome).inc()
        if state.failures >= FAILURES_TO_REST:
            state.resting_until = self.peers.monotonic() + _BACKOFF_S
            if rest:
                logger.warning("peer %s served a page no honest peer could; resting it", org)
            else:
                logger.warning("peer %s failed %d sync requests; resting it", org, state.failures)

    def _held_now(self) -> dict[tuple[str, int], int]:
        """The seq this node holds of each chain: its head, events held right after it
        (waiting for their time), and ranges pulled that are still being stored."""
        now = self.peers.monotonic()
        chains = self.ingestor.chains
        keys = chains.heads.keys() | set(chains.held.chains()) | set(self._ranges.keys())
        mine = {k: self._ranges.have(k, chains.held_upto(k), now) for k in keys}
        # Past an event refused for good (a quota) nothing can be placed: ask for nothing.
        mine |= {k: 1 << 62 for k in chains.stuck}
        return mine

    async def _request_gaps(self) -> None:
        now = self.peers.monotonic()
        mine = self._held_now()
        roster = self.ingestor.network.roster
        members = set(roster.orgs()) | {m.org for m in roster.former}
        for state in sorted(self.peers.states.values(), key=lambda p: p.failures):
            if state.last_heartbeat is None or now < state.resting_until:
                continue
            if now - state.last_heartbeat > 3 * self.peers.config.heartbeat_s + 5:
                continue  # silent peer: its heads are stale
            for gap in gaps(
                mine, _entries(state.heads), frozen=self.ingestor.chains.frozen, known_orgs=members
            ):
                if state.outstanding >= _PER_PEER_REQUESTS:
                    break
                await self._ask(state, gap.origin, gap.epoch, gap.to_seq)

    async def _ask(self, state: PeerState, origin: str, epoch: int, upto: int) -> None:
        """Ask `state`'s peer for what of a chain up to `upto` is neither held nor asked
        for, a page at a time, at most _PAGES_AHEAD of the chain in flight, within its
        budget."""
        key, keyring = (origin, epoch), self.ingestor.network.keyring
        while self._ranges.in_flight(key) < _PAGES_AHEAD and state.outstanding < _PER_PEER_REQUESTS:
            held = self.ingestor.chains.held_upto(key)
            ask = self._ranges.next_ask(key, held, upto, self.peers.monotonic())
            if (
                ask is None
                # An epoch we do not know yet comes after its rotation; none past a cutoff.
                or not keyring.may_sign(origin, epoch, ask[0])
                or not await self._send_request(state, origin, epoch, *ask)
            ):
                return

    async def pull_rotation(self, org: str) -> None:
        """A peer signs with a key epoch we do not know: it rotated, and we have not got
        the rotation yet. Its heartbeats cannot be read until we do, so ask it for the
        rest of its latest epoch we know (the answer is verified event by event)."""
        keyring = self.ingestor.network.keyring
        epoch = keyring.latest(org)
        state = self.peers.peer(org)
        if (
            epoch is None
            or self._ranges.in_flight((org, epoch))
            or state.outstanding >= _PER_PEER_REQUESTS
            or self.peers.monotonic() < state.resting_until
        ):
            return
        head = self.ingestor.heads.get((org, epoch))
        from_seq = head.seq + 1 if head is not None else 1
        if keyring.may_sign(org, epoch, from_seq):
            await self._send_request(state, org, epoch, from_seq)

    async def _send_request(
        self,
        state: PeerState,
        origin: str,
        epoch: int,
        from_seq: int,
        limit: int = MAX_RANGE_EVENTS,
    ) -> bool:
        """Ask for one page; whether it was sent (not if the peer's budget is spent)."""
        if not self._budget(state.org).allow(self.peers.monotonic()):
            return False
        nonce = secrets.token_bytes(16)
        req = RangeRequest(
            v=MESSAGE_VERSION,
            net=self._net,
            requester=self._me,
            responder=state.org,
            epoch_of_requester=self.ingestor.me.epoch,
            nonce=nonce,
            wall_ms=self.clock.now_ms(),
            origin=origin,
            epoch=epoch,
            from_seq=from_seq,
            limit=limit,
        )
        self._requests[nonce] = _Request(
            state.org, origin, epoch, from_seq, limit, self.peers.monotonic()
        )
        self._ranges.asked((origin, epoch), from_seq, limit, nonce)
        state.outstanding += 1
        try:
            await self.nc.publish(
                subjects.requests(self._net, self._me, state.org),
                sign_request(self.ingestor.me.key, req),
            )
        except NatsError:
            self._drop(nonce)
            return False
        return True

    def _budget(self, org: str) -> TokenBucket:
        """What this node may ask of `org`: its serving bucket for this node as every node
        keeps it (Peers.may_serve, from the roster), less _ASK_MARGIN pages."""
        per_min = limits_of(self.ingestor.network.roster).sync_pages_per_min
        burst = max(1, per_min - _ASK_MARGIN)
        bucket = self._asking.get(org)
        if bucket is None or bucket.burst != burst:
            bucket = self._asking[org] = TokenBucket(per_min / 60, burst, self.peers.monotonic())
        return bucket

    async def answered(self, org: str, data: bytes) -> None:
        """A response `org` sent: accepted only as the answer to a request we sent it."""
        if self.peers.peer(org).outstanding <= 0:
            self.peers.count(org, Reason.STALE_MESSAGE)  # nothing asked of it: not even decoded
            return
        try:
            resp = decode_response(data)
        except ProtocolError as exc:
            self.peers.count(org, exc.reason)
            return
        req = self._requests.get(resp.nonce)
        if req is None or req.peer != org or (resp.origin, resp.epoch) != (req.origin, req.epoch):
            self.peers.count(org, Reason.STALE_MESSAGE)  # not an answer to anything we asked
            return
        self._drop(resp.nonce)
        state = self.peers.peer(org)
        state.unserved = not resp.events
        if not resp.events:
            self._failed(org, "empty")  # it advertised events it does not serve
            return
        if len(resp.events) > req.limit:  # more than asked: it covers pages in flight
            self.peers.count(org, Reason.MALFORMED_MESSAGE)
            self._failed(org, "false", rest=True)
            return
        self.metrics.sync_pulled.inc(len(resp.events))
        # Before anything yields: count these as held and ask for what follows now
        # (the rest of a page cut short by size too), so nothing asks for this range
        # again while it is being stored. Its failures are forgiven once all of it
        # verifies (`_checked`), not now: garbage would keep a peer believed.
        key, last = (req.origin, req.epoch), req.from_seq + len(resp.events) - 1
        page = self._ranges.answered(key, req.from_seq, last, self.peers.monotonic(), org)
        if resp.more:  # at least the next page, whatever its last heartbeat said
            await self._ask(state, *key, max(last + 1, state.heads.get(key, 0)))
        for envelope in resp.events:
            await self.ingestor.enqueue(envelope, peer=org, page=page)

    def _checked(self, item: Item, verified: Checked | None) -> None:
        """The pipeline checked an envelope of a page. One that is not the event asked
        for, or bytes no store holds, proves the page false: the peer rests at once.
        One refused for what this node's view of keys and rules may explain counts a
        failure. Either way the page's range is asked for again (of the peer with the
        fewest failures). A page all of whose envelopes verified in their places
        forgives its peer's failures."""
        try:
            found = self._ranges.checked(item.page)
            if found is None or item.raw is None:
                return
            page, seq = found
            verdict = _verdict(item.raw, verified, page.key, seq)
            if verdict and not page.bad:
                page.bad = verdict
                self._ranges.forget(page)
                self._failed(page.peer, verdict, rest=verdict == "false")
            elif seq == page.last and not page.bad:
                self.peers.peer(page.peer).failures = 0
                self.peers.pulled()
                self.metrics.sync_requests.labels(peer=page.peer, outcome="ok").inc()
        except Exception:  # the pipeline's one writer must not stop for its bookkeeping
            logger.exception("a pulled envelope's check was not recorded")


def _verdict(raw: bytes, verified: Checked | None, key: tuple[str, int], seq: int) -> str:
    """ "" if a pulled envelope verified in its place (chain `key`, `seq`); "false" if no
    honest peer could have served it; "refused" if it was refused for another reason."""
    if isinstance(verified, Event):
        header = verified.header
    else:
        try:
            header = open_envelope(raw).header
        except ProtocolError as exc:  # bytes no store holds, unless of a newer protocol
            return "refused" if exc.reason is Reason.UNSUPPORTED_VERSION else "false"
    if (header.origin, header.epoch, header.seq) != (*key, seq):
        return "false"
    if isinstance(verified, ProtocolError):
        return "false" if verified.reason in _SERVED_FALSE else "refused"
    return ""


def _entries(heads: dict[tuple[str, int], int]) -> list[HeadEntry]:
    return [HeadEntry(origin=o, epoch=e, seq=s, id=bytes(32)) for (o, e), s in heads.items()]
