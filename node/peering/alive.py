"""Signs of life across hops (PROTOCOL.md 10.1b).

Owns how a node learns that members it does not hear directly are live: those it
has no link to (both behind NAT, a sparse mesh) and those whose link to it is
down while others still reach them (a partial partition). Each member publishes a
small signed sign of life with each heartbeat, saying whom it hears directly; a
node passes a member's sign on (once per second at most) when one of its live
direct peers says it does not hear that member, so signs cross any path of links
and a healthy full mesh relays none. Escalation then skips only members nobody
hears.

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

from rrn.federation.topology import heard_in, hears_bits
from rrn.node.home.clock import Clock
from rrn.node.peering.peers import Peers
from rrn.node.pipeline.ingest import Ingestor
from rrn.protocol import subjects
from rrn.protocol.errors import ProtocolError, Reason
from rrn.protocol.messages import MESSAGE_VERSION, Alive, open_alive, sign_alive

__all__ = ["SignsOfLife"]

#: A node passes on one sign of each member per this share of a down-interval at
#: most (1 s for the shortest, 3.3 s for the default 2 s heartbeat): every second
#: or third sign, so a sparse mesh's relayed signs cost half or less, while three
#: still cross each hop before the member would look down.
RELAY_SHARE: Final = 1 / 3


class SignsOfLife:
    """Publishes this node's signs of life and hears (and passes on) others'."""

    def __init__(self, *, nc: NatsClient, ingestor: Ingestor, peers: Peers, clock: Clock) -> None:
        self.nc = nc
        self.ingestor = ingestor
        self.peers = peers
        self.clock = clock

    def _direct(self) -> set[str]:
        """Members whose heartbeats arrive here now (a live direct link)."""
        now, limit = self.peers.monotonic(), self.peers.down_after_s()
        return {
            org
            for org in self.peers.members()
            if (t := self.peers.peer(org).last_heartbeat) is not None and now - t <= limit
        }

    async def publish(self, boot: bytes, counter: int) -> None:
        """This node's sign of life, saying whom it hears directly."""
        me = self.ingestor.me
        network = self.ingestor.network
        alive = Alive(
            v=MESSAGE_VERSION,
            net=network.net,
            org=me.org,
            epoch=me.epoch,
            boot=boot,
            counter=counter,
            wall_ms=self.clock.now_ms(),
            roster_ver=network.roster_version,
            hears=hears_bits(network.roster, self._direct()),
        )
        with contextlib.suppress(NatsError):
            await self.nc.publish(subjects.alive(network.net, me.org), sign_alive(me.key, alive))

    def wanted(self, origin: str) -> bool:
        """Whether a live direct peer (other than `origin`) does not hear `origin`
        directly, by its latest sign (none yet, or of another roster: it may not)."""
        network = self.ingestor.network
        for org in self._direct() - {origin}:
            said = self.peers.peer(org).hears
            if said is None or said[0] != network.roster_version:
                return True
            if not heard_in(network.roster, said[1], origin):
                return True
        return False

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
        if abs(alive.wall_ms - self.clock.now_ms()) > self.peers.down_after_s() * 1000:
            self.peers.count(alive.org, Reason.STALE_MESSAGE)  # held back, or its clock is off
            return
        state = self.peers.peer(alive.org)
        if alive.org == peer:  # from itself: whom it hears (a hint for passing signs on)
            state.hears = (alive.roster_ver, alive.hears)
        if alive.wall_ms <= state.alive_wall_ms:
            return  # heard already: it comes over every path
        now = self.peers.monotonic()
        state.alive_wall_ms, state.last_alive = alive.wall_ms, now
        every = self.peers.down_after_s() * RELAY_SHARE
        if now - state.alive_relayed >= every and self.wanted(alive.org):
            state.alive_relayed = now
            with contextlib.suppress(NatsError):
                await self.nc.publish(subjects.alive(network.net, self.ingestor.me.org), data)
