"""The conversation with the other members: heartbeats, relay, sync, fork proofs.

Owns what a node says to and hears from its peers over NATS. NATS is an
untrusted transport here: every event is verified by the ingest pipeline,
heartbeats and requests carry signatures, and the subject a message came on only
tells which member's space (and so which link) it crossed, which NATS
permissions guarantee. Live delivery is best effort; reliability comes from
comparing heartbeat heads and pulling what is missing from any peer that has it,
so events reach members with no direct link, and a node that was away catches
up even while the origin is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from rrn.federation.chain import Head
from rrn.federation.ratelimit import TokenBucket
from rrn.federation.sync import gaps
from rrn.node.home.clock import Clock, wait_set
from rrn.node.home.config import FederationConfig
from rrn.node.peering.metrics import PeerMetrics
from rrn.node.pipeline.ingest import Ingestor
from rrn.node.store.db import Store
from rrn.protocol import subjects
from rrn.protocol.envelope import MAX_ENVELOPE_BYTES, Event
from rrn.protocol.errors import FederationError, ProtocolError, Reason
from rrn.protocol.messages import (
    MAX_RANGE_EVENTS,
    MAX_RESPONSE_BYTES,
    MESSAGE_VERSION,
    HeadEntry,
    Heartbeat,
    RangeRequest,
    RangeResponse,
    decode_response,
    encode_response,
    open_heartbeat,
    open_request,
    sign_heartbeat,
    sign_request,
)

__all__ = ["PeerState", "Peering"]

logger = logging.getLogger(__name__)

_REQUEST_TIMEOUT_S: Final = 10.0
_MAX_SKEW_MS: Final = 10 * 60 * 1000
_NONCES_KEPT: Final = 10_000
_PER_PEER_REQUESTS: Final = 4
_BACKOFF_S: Final = 30.0
SECURITY_SUBJECT: Final = "rrn.local.alerts.security"


@dataclass
class PeerState:
    """What this node knows about one other member."""

    org: str
    bucket: TokenBucket
    boot: bytes | None = None
    counter: int = -1
    last_heartbeat: float | None = None  # monotonic seconds
    skew_ms: int = 0
    roster_ver: int = 0
    heads: dict[tuple[str, int], int] = field(default_factory=dict)
    failures: int = 0
    resting_until: float = 0.0
    outstanding: int = 0


@dataclass
class _Request:
    peer: str
    origin: str
    epoch: int
    from_seq: int
    sent: float


class Peering:
    """Heartbeats, live relay, pull sync and fork-proof gossip for one node."""

    def __init__(
        self,
        *,
        nc: NatsClient,
        ingestor: Ingestor,
        store: Store,
        config: FederationConfig,
        metrics: PeerMetrics,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nc = nc
        self.ingestor = ingestor
        self.store = store
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.monotonic = monotonic
        self.boot = secrets.token_bytes(16)
        self.peers: dict[str, PeerState] = {}
        self._counter = 0
        self._requests: dict[bytes, _Request] = {}
        self._requested: dict[tuple[str, int], bytes] = {}  # chain -> nonce in flight
        self._seen_nonces: OrderedDict[bytes, None] = OrderedDict()
        #: Chain -> (last seq pulled, when): counts as held for a while, so a range is
        #: not asked for again while the pipeline is still storing it.
        self._pulled: dict[tuple[str, int], tuple[int, float]] = {}
        self._subs: list[Subscription] = []
        self._wake = asyncio.Event()
        self._started = self.monotonic()
        #: Called with roster certificates peers announce (set by the daemon).
        self.on_roster: Callable[[bytes], Awaitable[None]] | None = None

    @property
    def me(self) -> str:
        return self.ingestor.me.org

    @property
    def net(self) -> bytes:
        return self.ingestor.network.net

    def _members(self) -> list[str]:
        return [m for m in self.ingestor.network.roster.orgs() if m != self.me]

    def peer(self, org: str) -> PeerState:
        state = self.peers.get(org)
        if state is None:
            now = self.monotonic()
            state = self.peers[org] = PeerState(
                org, TokenBucket(self.config.peer_rate, self.config.peer_burst, now)
            )
        return state

    def reconfigure(self, config: FederationConfig) -> None:
        """New [federation] settings (SIGHUP): heartbeat interval and peer limits."""
        self.config = config
        now = self.monotonic()
        for state in self.peers.values():
            state.bucket = TokenBucket(config.peer_rate, config.peer_burst, now)

    # -- lifecycle ------------------------------------------------------------

    def down_after_s(self) -> float:
        """Silence after which a member counts as down (five heartbeats, at least 3 s)."""
        return max(3.0, 5 * self.config.heartbeat_s)

    def down(self) -> set[str]:
        """Members whose heartbeats stopped (or never came since this node started).

        Only direct heartbeats count: a member this node has no link to looks
        down from here although it may be live. Escalation treats down members
        as skipped, which asks more people sooner, never fewer.
        """
        now, limit = self.monotonic(), self.down_after_s()
        if now - self._started < limit:
            return set()
        return {
            org
            for org in self._members()
            if (last := self.peer(org).last_heartbeat) is None or now - last > limit
        }

    async def start(self) -> None:
        """Subscribe to every member's space (what NATS imports let through)."""
        self._started = self.monotonic()
        net = self.net
        for tail, handler in (
            ("ev", self._on_event),
            ("hb", self._on_heartbeat),
            ("sec", self._on_fork_proof),
            ("roster", self._on_roster),
            (f"req.{self.me}", self._on_request),
            (f"rsp.{self.me}", self._on_response),
        ):
            self._subs.append(await self.nc.subscribe(subjects.any_peer(net, tail), cb=handler))
        await self.nc.flush()

    async def stop(self) -> None:
        """Stop listening (the NATS connection itself is closed by the daemon)."""
        for sub in self._subs:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()
        self._subs.clear()

    async def run(self) -> None:
        """Heartbeats and sync until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._heartbeats(), name="heartbeats")
            tg.create_task(self._syncing(), name="sync")

    # -- what the node says ------------------------------------------------------

    async def _heartbeats(self) -> None:
        while True:
            await self.publish_heartbeat()
            self._update_gauges()
            await asyncio.sleep(self.config.heartbeat_s)

    async def publish_heartbeat(self) -> None:
        self._counter += 1
        hb = Heartbeat(
            v=MESSAGE_VERSION,
            net=self.net,
            org=self.me,
            epoch=self.ingestor.me.epoch,
            boot=self.boot,
            counter=self._counter,
            wall_ms=self.clock.now_ms(),
            roster_ver=self.ingestor.network.roster_version,
            heads=[
                HeadEntry(origin=o, epoch=e, seq=h.seq, id=h.id)
                for (o, e), h in sorted(self.ingestor.heads.items())
            ],
        )
        with contextlib.suppress(NatsError):
            await self.nc.publish(
                subjects.heartbeats(self.net, self.me), sign_heartbeat(self.ingestor.me.key, hb)
            )

    async def committed(self, events: list[tuple[Event, str]]) -> None:
        """After a commit: publish own events, relay live ones, feed integrators."""
        out = subjects.events(self.net, self.me)
        for event, source in events:
            envelope = event.envelope()
            h = event.header
            if source in ("own", "live"):
                await self.nc.publish(out, envelope)
            await self.nc.publish(
                subjects.local_event(h.origin, h.kind, event.id),
                envelope,
                headers={"Nats-Msg-Id": event.id.hex()},
            )
        self._wake.set()

    async def broadcast_fork(self, proof: bytes) -> None:
        """Send a fork proof to every peer, and tell the node's own people."""
        await self.nc.publish(subjects.fork_proofs(self.net, self.me), proof)
        notice = {"type": "fork", "detail": "a member signed two conflicting histories"}
        await self.nc.publish(SECURITY_SUBJECT, json.dumps(notice).encode())

    # -- what the node hears ------------------------------------------------------

    def _current_key(self, org: str, epoch: int) -> Ed25519PublicKey:
        return self.ingestor.network.keyring.current(org, epoch)

    def _sender(self, msg: Msg) -> str | None:
        """The member whose space the message came through, if it is a peer."""
        org = subjects.publisher_of(msg.subject)
        if org is None or org == self.me or org not in self.ingestor.network.roster.orgs():
            return None
        return org

    def _admit(self, org: str, cost: float = 1.0) -> bool:
        if self.peer(org).bucket.allow(self.monotonic(), cost):
            return True
        self._count(org, Reason.RATE_LIMITED)
        return False

    def _count(self, org: str, reason: Reason) -> None:
        self.metrics.rejected.labels(reason=str(reason)).inc()
        self.metrics.peer_rejected.labels(peer=org, reason=str(reason)).inc()

    async def _on_event(self, msg: Msg) -> None:
        org = self._sender(msg)
        if org is None or not self._admit(org):
            return
        if len(msg.data) > MAX_ENVELOPE_BYTES:
            self._count(org, Reason.OVERSIZE_ENVELOPE)
            return
        self.ingestor.submit_nowait(msg.data, source="live", peer=org)

    async def _on_heartbeat(self, msg: Msg) -> None:
        org = self._sender(msg)
        if org is None or not self._admit(org, 0.1):
            return
        try:
            hb = open_heartbeat(
                msg.data, net=self.net, key_for=self.ingestor.network.keyring.current
            )
        except ProtocolError as exc:
            self._count(org, exc.reason)
            if exc.reason is Reason.UNKNOWN_EPOCH:
                await self._pull_rotation(org)
            return
        state = self.peer(org)
        if hb.org != org:
            self._count(org, Reason.MALFORMED_MESSAGE)  # signed by one member, sent by another
            return
        if hb.boot == state.boot and hb.counter <= state.counter:
            self._count(org, Reason.STALE_MESSAGE)  # a replayed heartbeat
            return
        state.boot, state.counter = hb.boot, hb.counter
        state.last_heartbeat = self.monotonic()
        state.skew_ms = hb.wall_ms - self.clock.now_ms()
        state.roster_ver = hb.roster_ver
        state.heads = {(h.origin, h.epoch): h.seq for h in hb.heads}
        self._check_own_chain(state)
        self._wake.set()

    async def _pull_rotation(self, org: str) -> None:
        """A peer signs with a key epoch we do not know: it rotated, and we have not got
        the rotation yet. Its heartbeats cannot be read until we do, so ask it for the
        rest of its latest epoch we know (the answer is verified event by event)."""
        keyring = self.ingestor.network.keyring
        epoch = keyring.latest(org)
        state = self.peer(org)
        if (
            epoch is None
            or (org, epoch) in self._requested
            or state.outstanding >= _PER_PEER_REQUESTS
            or self.monotonic() < state.resting_until
        ):
            return
        head = self.ingestor.heads.get((org, epoch))
        from_seq = head.seq + 1 if head is not None else 1
        if keyring.may_sign(org, epoch, from_seq):
            await self._send_request(state, org, epoch, from_seq)

    def _check_own_chain(self, state: PeerState) -> None:
        """A peer holding more of our own chain than we do means our store is behind."""
        key = (self.me, self.ingestor.me.epoch)
        mine = self.ingestor.heads.get(key, Head(0, b"")).seq
        theirs = state.heads.get(key, 0)
        if theirs > mine:
            self.ingestor.block_own(
                "behind",
                f"{state.org} holds this node's own events up to seq {theirs} but the store "
                f"only to {mine}; catching up before signing anything new",
            )
        elif self._own_caught_up(key, mine):
            self.ingestor.unblock_own("behind")

    def _own_caught_up(self, key: tuple[str, int], mine: int) -> bool:
        return all(p.heads.get(key, 0) <= mine for p in self.peers.values())

    async def _on_fork_proof(self, msg: Msg) -> None:
        org = self._sender(msg)
        if org is None or not self._admit(org):
            return
        try:
            outcome = await self.ingestor.record_fork_proof(msg.data, peer=org)
        except ProtocolError as exc:
            self._count(org, exc.reason)
            return
        if outcome.verdict == "fork":  # new to us: pass it on, beyond our direct links
            await self.broadcast_fork(msg.data)

    async def broadcast_roster(self, cert: bytes) -> None:
        """Tell peers about a roster version this node adopted."""
        with contextlib.suppress(NatsError):
            await self.nc.publish(subjects.rosters(self.net, self.me), cert)

    async def _on_roster(self, msg: Msg) -> None:
        org = self._sender(msg)
        if org is None or not self._admit(org, 5) or self.on_roster is None:
            return
        try:
            await self.on_roster(msg.data)
        except (ProtocolError, FederationError) as exc:
            self._count(org, exc.reason)
            logger.warning("refused a roster certificate from %s: %s", org, exc.reason)

    # -- serving sync requests ---------------------------------------------------

    async def _on_request(self, msg: Msg) -> None:
        org = self._sender(msg)
        if org is None or not self._admit(org, 5):
            return
        try:
            req = open_request(
                msg.data, net=self.net, key_for=self.ingestor.network.keyring.current
            )
        except ProtocolError as exc:
            self._count(org, exc.reason)
            return
        fresh = abs(req.wall_ms - self.clock.now_ms()) <= _MAX_SKEW_MS
        if (
            req.requester != org
            or req.responder != self.me
            or not fresh
            or self._replayed(req.nonce)
        ):
            self._count(org, Reason.STALE_MESSAGE)
            return
        events, more = await self.store.envelopes(
            req.origin, req.epoch, req.from_seq, limit=req.limit, max_bytes=MAX_RESPONSE_BYTES
        )
        resp = RangeResponse(
            nonce=req.nonce, origin=req.origin, epoch=req.epoch, events=events, more=more
        )
        self.metrics.sync_served.labels(peer=org).inc(len(events))
        with contextlib.suppress(NatsError):
            await self.nc.publish(subjects.responses(self.net, self.me, org), encode_response(resp))

    def _replayed(self, nonce: bytes) -> bool:
        if nonce in self._seen_nonces:
            return True
        self._seen_nonces[nonce] = None
        while len(self._seen_nonces) > _NONCES_KEPT:
            self._seen_nonces.popitem(last=False)
        return False

    # -- pulling what we lack --------------------------------------------------------

    async def _syncing(self) -> None:
        while True:
            await wait_set(self._wake, 1.0)
            self._wake.clear()
            self._expire_requests()
            await self._request_gaps()

    def _expire_requests(self) -> None:
        now = self.monotonic()
        for nonce, req in list(self._requests.items()):
            if now - req.sent > _REQUEST_TIMEOUT_S:
                self._drop(nonce)
                self._failed(req.peer, "timeout")

    def _drop(self, nonce: bytes) -> _Request | None:
        req = self._requests.pop(nonce, None)
        if req is not None:
            self._requested.pop((req.origin, req.epoch), None)
            self.peer(req.peer).outstanding -= 1
        return req

    def _failed(self, org: str, outcome: str) -> None:
        state = self.peer(org)
        state.failures += 1
        self.metrics.sync_requests.labels(peer=org, outcome=outcome).inc()
        if state.failures >= 3:
            state.resting_until = self.monotonic() + _BACKOFF_S
            logger.warning("peer %s failed %d sync requests; resting it", org, state.failures)

    async def _request_gaps(self) -> None:
        now = self.monotonic()
        mine = {k: h.seq for k, h in self.ingestor.heads.items()}
        for key, (upto, at) in list(self._pulled.items()):
            if now - at > _REQUEST_TIMEOUT_S:
                del self._pulled[key]
            elif upto > mine.get(key, 0):
                mine[key] = upto
        members = set(self.ingestor.network.roster.orgs()) | {
            m.org for m in self.ingestor.network.roster.former
        }
        for state in sorted(self.peers.values(), key=lambda p: p.failures):
            if state.last_heartbeat is None or now < state.resting_until:
                continue
            if now - state.last_heartbeat > 3 * self.config.heartbeat_s + 5:
                continue  # silent peer: its heads are stale
            for gap in gaps(
                mine, _entries(state.heads), frozen=self.ingestor.frozen, known_orgs=members
            ):
                if state.outstanding >= _PER_PEER_REQUESTS:
                    break
                if (gap.origin, gap.epoch) in self._requested:
                    continue
                # An epoch we do not know yet comes after its rotation; none past a cutoff.
                if not self.ingestor.network.keyring.may_sign(gap.origin, gap.epoch, gap.from_seq):
                    continue
                await self._send_request(state, gap.origin, gap.epoch, gap.from_seq)

    async def _send_request(self, state: PeerState, origin: str, epoch: int, from_seq: int) -> None:
        nonce = secrets.token_bytes(16)
        req = RangeRequest(
            v=MESSAGE_VERSION,
            net=self.net,
            requester=self.me,
            responder=state.org,
            epoch_of_requester=self.ingestor.me.epoch,
            nonce=nonce,
            wall_ms=self.clock.now_ms(),
            origin=origin,
            epoch=epoch,
            from_seq=from_seq,
            limit=MAX_RANGE_EVENTS,
        )
        self._requests[nonce] = _Request(state.org, origin, epoch, from_seq, self.monotonic())
        self._requested[origin, epoch] = nonce
        state.outstanding += 1
        try:
            await self.nc.publish(
                subjects.requests(self.net, self.me, state.org),
                sign_request(self.ingestor.me.key, req),
            )
        except NatsError:
            self._drop(nonce)

    async def _on_response(self, msg: Msg) -> None:
        org = self._sender(msg)
        if org is None:
            return
        try:
            resp = decode_response(msg.data)
        except ProtocolError as exc:
            self._count(org, exc.reason)
            return
        req = self._requests.get(resp.nonce)
        if req is None or req.peer != org or (resp.origin, resp.epoch) != (req.origin, req.epoch):
            self._count(org, Reason.STALE_MESSAGE)  # not an answer to anything we asked
            return
        self._drop(resp.nonce)
        state = self.peer(org)
        state.failures = 0
        self.metrics.sync_requests.labels(peer=org, outcome="ok").inc()
        self.metrics.sync_pulled.inc(len(resp.events))
        if not resp.events:
            self._failed(org, "empty")  # it advertised events it does not serve
            return
        # Before anything yields: count these as held and ask for the next page
        # now, so nothing asks for this range again while it is being stored.
        last = req.from_seq + len(resp.events) - 1
        self._pulled[req.origin, req.epoch] = (last, self.monotonic())
        if resp.more:
            await self._send_request(state, req.origin, req.epoch, last + 1)
        for envelope in resp.events:
            await self.ingestor.enqueue(envelope, source="pull", peer=org)

    # -- gauges --------------------------------------------------------------------

    def _update_gauges(self) -> None:
        now = self.monotonic()
        connected = 0
        best: dict[tuple[str, int], int] = {}
        for org in self._members():
            state = self.peer(org)
            if state.last_heartbeat is None:
                continue
            age = now - state.last_heartbeat
            connected += age <= 3 * self.config.heartbeat_s
            self.metrics.heartbeat_age.labels(peer=org).set(age)
            self.metrics.clock_skew.labels(peer=org).set(state.skew_ms / 1000)
            for key, seq in state.heads.items():
                best[key] = max(best.get(key, 0), seq)
        self.metrics.peers_connected.set(connected)
        behind: dict[str, int] = {}
        for (origin, epoch), seq in best.items():
            have = self.ingestor.heads.get((origin, epoch), Head(0, b"")).seq
            behind[origin] = behind.get(origin, 0) + max(0, seq - have)
        for origin in self.ingestor.network.roster.orgs():
            self.metrics.behind.labels(origin=origin).set(behind.get(origin, 0))


def _entries(heads: dict[tuple[str, int], int]) -> list[HeadEntry]:
    return [HeadEntry(origin=o, epoch=e, seq=s, id=bytes(32)) for (o, e), s in heads.items()]
