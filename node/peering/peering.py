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
import functools
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Final

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from rrn.federation.topology import backup_relayers
from rrn.node.home.clock import Clock, Slicer
from rrn.node.home.config import FederationConfig
from rrn.node.peering.alive import SignsOfLife
from rrn.node.peering.metrics import PeerMetrics
from rrn.node.peering.peers import Peers
from rrn.node.peering.restored import Restored
from rrn.node.peering.sync import Sync
from rrn.node.pipeline.ingest import Ingestor, Outcome
from rrn.node.store.db import Store
from rrn.protocol import subjects
from rrn.protocol.envelope import Event, Header, open_envelope
from rrn.protocol.errors import FederationError, ProtocolError, Reason
from rrn.protocol.messages import (
    MESSAGE_VERSION,
    HeadEntry,
    Heartbeat,
    Software,
    open_heartbeat,
    open_software,
    sign_heartbeat,
    sign_software,
)

__all__ = ["SECURITY_SUBJECT", "Peering"]

logger = logging.getLogger(__name__)

SECURITY_SUBJECT: Final = "rrn.local.alerts.security"
#: Event kinds someone must act on at once: backup relayers pass them on (10.3).
URGENT_KINDS: Final = frozenset({"alert.raised", "alert.escalated"})
#: Heartbeats between two announcements of what this node runs (10.1a); a peer that
#: (re)starts gets one sooner.
_SOFTWARE_EVERY: Final = 150


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
        self.clock = clock
        self.boot = secrets.token_bytes(16)
        self.peers = Peers(ingestor=ingestor, config=config, metrics=metrics, monotonic=monotonic)
        self.sync = Sync(nc=nc, ingestor=ingestor, store=store, peers=self.peers, clock=clock)
        #: The wait of a store restored from a backup (node/peering/restored.py).
        self.restored = Restored(ingestor=ingestor, store=store)
        self._counter = 0
        self._subs: list[Subscription] = []
        #: Called with roster certificates peers announce (set by the daemon).
        self.on_roster: Callable[[bytes], Awaitable[None]] | None = None
        #: What this node runs, announced to peers (set by the daemon; 10.1a).
        #: (rrn, protocol, nats-server, tz database, lock digest); empty: say nothing.
        self.software: tuple[str, int, str, str, str] | tuple[()] = ()
        #: A peer (re)started: announce soon, at most every 10 heartbeats.
        self._announce, self._announced = False, -10
        #: Signs of life across hops (10.1b).
        self.alive = SignsOfLife(nc=nc, ingestor=ingestor, peers=self.peers, clock=clock)

    @property
    def me(self) -> str:
        return self.ingestor.me.org

    @property
    def net(self) -> bytes:
        return self.ingestor.network.net

    @property
    def config(self) -> FederationConfig:
        return self.peers.config

    def monotonic(self) -> float:
        """The clock liveness is measured on."""
        return self.peers.monotonic()

    def down(self) -> set[str]:
        """Members whose heartbeats stopped (see Peers.down)."""
        return self.peers.down()

    def reconfigure(self, config: FederationConfig) -> None:
        """New [federation] settings (SIGHUP): heartbeat interval and peer limits."""
        self.peers.reconfigure(config)

    async def start(self) -> None:
        """Subscribe to every member's space (what NATS imports let through)."""
        await self.restored.load()
        self.peers.started()
        self.peers.update_gauges()  # every member's series from the start
        net = self.net
        for tail, handler in (
            ("ev", self._on_event),
            ("hb", self._on_heartbeat),
            ("alive", self._on_alive),
            ("sw", self._on_software),
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
            tg.create_task(self.sync.run(), name="sync")

    # -- what the node says ------------------------------------------------------

    async def _heartbeats(self) -> None:
        while True:
            if self._counter % _SOFTWARE_EVERY == 0 or (
                self._announce and self._counter - self._announced >= 10
            ):
                self._announce, self._announced = False, self._counter
                await self.publish_software()
            await self.publish_heartbeat()
            await self.alive.publish(self.boot, self._counter)
            self.peers.update_gauges()
            await asyncio.sleep(self.config.heartbeat_s)

    async def publish_software(self) -> None:
        """What this node runs (10.1a), at start and every few minutes after."""
        if not self.software:
            return
        rrn, protocol, nats_server, tz_database, lock = self.software
        sw = Software(
            v=MESSAGE_VERSION,
            net=self.net,
            org=self.me,
            epoch=self.ingestor.me.epoch,
            wall_ms=self.clock.now_ms(),
            rrn=rrn,
            protocol=protocol,
            nats_server=nats_server,
            tz_database=tz_database,
            lock=lock,
        )
        with contextlib.suppress(NatsError):
            await self.nc.publish(
                subjects.software(self.net, self.me), sign_software(self.ingestor.me.key, sw)
            )

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

    async def committed(self, events: list[tuple[Event, str, bool]]) -> None:
        """After a commit: publish own events, relay live ones where a peer does not hear
        their origin directly (10.3; not what an honest node would not apply: peers
        that want it pull it), feed integrators."""
        out, slicer = subjects.events(self.net, self.me), Slicer()
        for event, source, relay in events:
            await slicer.step()  # a catch-up's batch is a thousand events
            envelope = event.envelope()
            h = event.header
            if source == "own" or (source == "live" and relay and self._passes_on(h)):
                await self.nc.publish(out, envelope)
            await self.nc.publish(
                subjects.local_event(h.origin, h.kind),
                envelope,
                headers={subjects.EVENT_ID_HEADER: event.id.hex()},
            )
        self.sync.wake.set()

    def _passes_on(self, h: Header) -> bool:
        """Whether a live event goes on from here (PROTOCOL.md 10.3): a live peer does
        not hear its origin directly, or it is an alert raise or escalation and this
        node is one of its origin's backup relayers."""
        if self.alive.wanted(h.origin):
            return True
        return h.kind in URGENT_KINDS and self.me in backup_relayers(
            self.ingestor.network.roster, h.origin
        )

    async def broadcast_fork(self, proof: bytes) -> None:
        """Send a fork proof to every peer, and tell the node's own people."""
        await self.nc.publish(subjects.fork_proofs(self.net, self.me), proof)
        notice = {"type": "fork", "detail": "a member signed two conflicting histories"}
        await self.nc.publish(SECURITY_SUBJECT, json.dumps(notice).encode())

    # -- what the node hears ------------------------------------------------------

    def _sender(self, msg: Msg) -> str | None:
        """The member whose space the message came through, if it is a peer."""
        org = subjects.publisher_of(msg.subject)
        if org is None or org == self.me or org not in self.ingestor.network.roster.orgs():
            return None
        return org

    async def _on_event(self, msg: Msg) -> None:
        """An event a peer pushes: charged to its origin (the peer may be relaying it),
        except what turns out invalid or a copy, which costs the peer."""
        org = self._sender(msg)
        if org is None:
            return
        if self.peers.peer(org).bucket.left(self.monotonic()) < 1:
            self.peers.count(org, Reason.RATE_LIMITED)  # it sent too much that was no use
            return
        try:
            origin = open_envelope(msg.data).header.origin
        except ProtocolError as exc:
            self.peers.count(org, exc.reason)
            self.peers.settle(org, "", "rejected")
            return
        if self.peers.origin_spent(origin):
            return
        outcome = self.ingestor.offer(msg.data, peer=org)
        if outcome is None:  # the queue is full (counted): the origin's token comes back
            self.peers.origin_budget(origin).refund(self.monotonic(), 1)
            return
        outcome.add_done_callback(functools.partial(self._settle, org, origin))

    def _settle(self, org: str, origin: str, outcome: asyncio.Future[Outcome | Event]) -> None:
        if outcome.cancelled():
            return
        result = outcome.exception() or outcome.result()
        verdict = result.verdict if isinstance(result, Outcome) else "rejected"
        self.peers.settle(org, origin, verdict)

    async def _on_heartbeat(self, msg: Msg) -> None:
        org = self._sender(msg)
        if org is None or not self.peers.admit(org, 0.1):
            return
        try:
            hb = open_heartbeat(
                msg.data, net=self.net, key_for=self.ingestor.network.keyring.current
            )
        except ProtocolError as exc:
            self.peers.count(org, exc.reason)
            if exc.reason is Reason.UNKNOWN_EPOCH:
                await self.sync.pull_rotation(org)
            return
        state = self.peers.peer(org)
        if hb.org != org:
            self.peers.count(org, Reason.MALFORMED_MESSAGE)  # signed by one member, sent by another
            return
        if hb.boot == state.boot and hb.counter <= state.counter:
            self.peers.count(org, Reason.STALE_MESSAGE)  # a replayed heartbeat
            return
        if hb.boot != state.boot:
            self._announce = True  # it may have missed our announcement
        state.boot, state.counter = hb.boot, hb.counter
        state.last_heartbeat = self.monotonic()
        state.skew_ms = hb.wall_ms - self.clock.now_ms()
        state.roster_ver = hb.roster_ver
        # What it says it holds is a hint: sync asks it for what we lack, and only
        # events that verify count (even of our own chain, which only we sign).
        state.heads = {(h.origin, h.epoch): h.seq for h in hb.heads}
        self.sync.wake.set()
        await self.restored.heard(org, hb)

    async def _on_alive(self, msg: Msg) -> None:
        org = self._sender(msg)
        if org is not None and self.peers.admit(org, 0.1):
            await self.alive.heard(org, msg.data)

    async def _on_software(self, msg: Msg) -> None:
        org = self._sender(msg)
        if org is None or not self.peers.admit(org, 0.1):
            return
        try:
            sw = open_software(
                msg.data, net=self.net, key_for=self.ingestor.network.keyring.current
            )
        except ProtocolError as exc:
            self.peers.count(org, exc.reason)
            return
        state = self.peers.peer(org)
        if sw.org != org:
            self.peers.count(org, Reason.MALFORMED_MESSAGE)
        elif state.software is not None and sw.wall_ms <= state.software.wall_ms:
            self.peers.count(org, Reason.STALE_MESSAGE)
        else:
            state.software = sw

    async def _on_fork_proof(self, msg: Msg) -> None:
        org = self._sender(msg)
        if org is None or not self.peers.admit(org):
            return
        try:
            outcome = await self.ingestor.record_fork_proof(msg.data, peer=org)
        except ProtocolError as exc:
            self.peers.count(org, exc.reason)
            return
        if outcome.verdict == "fork":  # new to us: pass it on, beyond our direct links
            await self.broadcast_fork(msg.data)

    async def broadcast_roster(self, cert: bytes) -> None:
        """Tell peers about a roster version this node adopted."""
        with contextlib.suppress(NatsError):
            await self.nc.publish(subjects.rosters(self.net, self.me), cert)

    async def _on_roster(self, msg: Msg) -> None:
        org = self._sender(msg)
        if org is None or not self.peers.admit(org, 5) or self.on_roster is None:
            return
        try:
            await self.on_roster(msg.data)
        except (ProtocolError, FederationError) as exc:
            self.peers.count(org, exc.reason)
            logger.warning("refused a roster certificate from %s: %s", org, exc.reason)

    # -- sync (node/peering/sync.py) -----------------------------------------------

    async def _on_request(self, msg: Msg) -> None:
        org = self._sender(msg)
        if org is not None and self.peers.admit(org, 5):
            await self.sync.serve(org, msg.data)

    async def _on_response(self, msg: Msg) -> None:
        # Not metered: this node asked for it (and accepts only what it asked).
        org = self._sender(msg)
        if org is not None:
            await self.sync.answered(org, msg.data)
