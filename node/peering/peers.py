"""What this node knows of every other member: liveness, limits, clock skew, heads.

Owns the per-peer state that heartbeats, relay and sync share: a token bucket per
peer (the budget of unsolicited traffic it may send), when its last heartbeat
came, what it says it holds (a hint, checked against what verifies), and the
gauges that show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rrn.federation.chain import Head
from rrn.federation.ratelimit import TokenBucket
from rrn.node.home.config import FederationConfig
from rrn.node.peering.metrics import PeerMetrics
from rrn.node.pipeline.ingest import Ingestor
from rrn.protocol.errors import Reason

__all__ = ["PeerState", "Peers"]


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


class Peers:
    """Every other member as this node sees it."""

    def __init__(
        self,
        *,
        ingestor: Ingestor,
        config: FederationConfig,
        metrics: PeerMetrics,
        monotonic: Callable[[], float],
    ) -> None:
        self.ingestor = ingestor
        self.config = config
        self.metrics = metrics
        self.monotonic = monotonic
        self.states: dict[str, PeerState] = {}
        self._started = monotonic()

    def peer(self, org: str) -> PeerState:
        """The state of one member (made on first use)."""
        state = self.states.get(org)
        if state is None:
            now = self.monotonic()
            state = self.states[org] = PeerState(
                org, TokenBucket(self.config.peer_rate, self.config.peer_burst, now)
            )
        return state

    def members(self) -> list[str]:
        """The other current members."""
        me = self.ingestor.me.org
        return [m for m in self.ingestor.network.roster.orgs() if m != me]

    def reconfigure(self, config: FederationConfig) -> None:
        """New [federation] settings (SIGHUP): heartbeat interval and peer limits."""
        self.config = config
        now = self.monotonic()
        for state in self.states.values():
            state.bucket = TokenBucket(config.peer_rate, config.peer_burst, now)

    def started(self) -> None:
        """Start counting silence from now (the node just started listening)."""
        self._started = self.monotonic()

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
            for org in self.members()
            if (last := self.peer(org).last_heartbeat) is None or now - last > limit
        }

    def admit(self, org: str, cost: float = 1.0) -> bool:
        """Whether `org` may send this message now (counted as rate_limited if not)."""
        if self.peer(org).bucket.allow(self.monotonic(), cost):
            return True
        self.count(org, Reason.RATE_LIMITED)
        return False

    def count(self, org: str, reason: Reason) -> None:
        """Count a refusal of something `org` sent."""
        self.metrics.rejected.labels(reason=str(reason)).inc()
        self.metrics.peer_rejected.labels(peer=org, reason=str(reason)).inc()

    def update_gauges(self) -> None:
        """Links up, heartbeat ages, clock skews, and how far behind this node is."""
        now = self.monotonic()
        connected = 0
        best: dict[tuple[str, int], int] = {}
        for org in self.members():
            state = self.peer(org)
            if state.last_heartbeat is None:
                continue
            age = now - state.last_heartbeat
            connected += age <= 3 * self.config.heartbeat_s
            self.metrics.heartbeat_age.labels(peer=org).set(age)
            self.metrics.clock_skew.labels(peer=org).set(state.skew_ms / 1000)
            if state.failures:
                continue  # it did not serve what it said it holds: its claims are not believed
            for key, seq in state.heads.items():
                best[key] = max(best.get(key, 0), seq)
        self.metrics.peers_connected.set(connected)
        behind: dict[str, int] = {}
        for (origin, epoch), seq in best.items():
            have = self.ingestor.heads.get((origin, epoch), Head(0, b"")).seq
            behind[origin] = behind.get(origin, 0) + max(0, seq - have)
        for origin in self.ingestor.network.roster.orgs():
            self.metrics.behind.labels(origin=origin).set(behind.get(origin, 0))
