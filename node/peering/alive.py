"""Signs of life across hops (PROTOCOL.md 10.1b).

Owns how a node learns that members it has no direct link to are live. A member
that some other member cannot reach directly publishes a small signed sign of
life with each heartbeat; nodes whose direct peers lack a link to it pass it on,
once per second at most, so it crosses any path of links. Escalation then skips
only members nobody hears, not members this node happens not to be linked to.

What a sign proves is its signer's (a relayer cannot make one up); when it was
signed is judged by this node's clock: a relayer that holds signs back can make
a dead member look live for at most one down-interval, and a member whose clock
is off by more than that looks down from afar — which asks more people sooner,
never fewer.
"""

from __future__ import annotations

import contextlib
from typing import Final

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError

from rrn.federation.topology import relayed_signs
from rrn.node.home.clock import Clock
from rrn.node.peering.peers import Peers
from rrn.node.pipeline.ingest import Ingestor
from rrn.protocol import subjects
from rrn.protocol.errors import ProtocolError, Reason
from rrn.protocol.messages import MESSAGE_VERSION, Alive, open_alive, sign_alive

__all__ = ["SignsOfLife"]

#: A node passes on one sign of each member per this many seconds at most.
RELAY_EVERY_S: Final = 1.0


class SignsOfLife:
    """Publishes this node's signs of life and hears (and passes on) others'."""

    def __init__(self, *, nc: NatsClient, ingestor: Ingestor, peers: Peers, clock: Clock) -> None:
        self.nc = nc
        self.ingestor = ingestor
        self.peers = peers
        self.clock = clock
        #: (roster version, whether we publish, whose we pass on), per roster.
        self._signs: tuple[int, bool, frozenset[str]] = (-1, False, frozenset())

    def signs(self) -> tuple[bool, frozenset[str]]:
        """Whether this node publishes signs of life, and whose it passes on."""
        network = self.ingestor.network
        if self._signs[0] != network.roster_version:
            me = self.ingestor.me.org
            self._signs = (network.roster_version, *relayed_signs(network.roster, me))
        return self._signs[1], self._signs[2]

    async def publish(self, boot: bytes, counter: int) -> None:
        """This node's sign of life, if some member has no direct link to it."""
        if not self.signs()[0]:
            return
        me = self.ingestor.me
        net = self.ingestor.network.net
        alive = Alive(
            v=MESSAGE_VERSION,
            net=net,
            org=me.org,
            epoch=me.epoch,
            boot=boot,
            counter=counter,
            wall_ms=self.clock.now_ms(),
        )
        with contextlib.suppress(NatsError):
            await self.nc.publish(subjects.alive(net, me.org), sign_alive(me.key, alive))

    async def heard(self, peer: str, data: bytes) -> None:
        """A sign of life that came through `peer` (already charged to it)."""
        network = self.ingestor.network
        try:
            alive = open_alive(data, net=network.net, key_for=network.keyring.current)
        except ProtocolError as exc:
            self.peers.count(peer, exc.reason)
            return
        if alive.org == self.ingestor.me.org:
            return
        state = self.peers.peer(alive.org)
        if alive.wall_ms <= state.alive_wall_ms:
            return  # heard already: it comes over every path
        if abs(alive.wall_ms - self.clock.now_ms()) > self.peers.down_after_s() * 1000:
            self.peers.count(alive.org, Reason.STALE_MESSAGE)  # held back, or its clock is off
            return
        now = self.peers.monotonic()
        state.alive_wall_ms, state.last_alive = alive.wall_ms, now
        if alive.org in self.signs()[1] and now - state.alive_relayed >= RELAY_EVERY_S:
            state.alive_relayed = now
            with contextlib.suppress(NatsError):
                await self.nc.publish(subjects.alive(network.net, self.ingestor.me.org), data)
