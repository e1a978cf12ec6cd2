"""What this node knows of every other member: liveness, limits, clock skew, heads.

Owns the per-peer state that heartbeats, relay and sync share: a token bucket per
peer (the budget of unsolicited traffic it may send, which relaying others'
valid events never spends), one per origin for the events of its chain pushed
live (the roster's relay limits: a flood costs its origin, not the honest nodes
that relay it), one per peer for the sync pages this node serves it; when its
last heartbeat came, what it says it holds (a hint, checked against what
verifies), and the gauges that show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from rrn.federation.chain import Head
from rrn.federation.limits import limits_of
from rrn.federation.ratelimit import TokenBucket
from rrn.federation.topology import links
from rrn.node.home.config import FederationConfig
from rrn.node.peering.metrics import PeerMetrics
from rrn.node.pipeline.ingest import Ingestor
from rrn.protocol.errors import Reason
from rrn.protocol.messages import MAX_RANGE_EVENTS, Software

__all__ = [
    "BACKLOG",
    "FAILURES_TO_REST",
    "PROGRESS_S",
    "SETTLE_MAX_S",
    "SETTLE_S",
    "PeerState",
    "Peers",
]

#: The longest a node that just started waits to catch up before it acts on what it
#: holds (escalations, pages) while its catch-up makes no progress: alone, or behind
#: links too slow to tell, it must act.
SETTLE_S: Final = 60.0
#: The longest it waits while its catch-up still makes progress. A node joining a
#: network years old takes minutes to pull the history; acting after SETTLE_S on half
#: of it paged its responders for alerts claimed and closed long ago (an alert's raise
#: arrived before its claim, from another chain). A peer that feeds it real events
#: slowly holds its escalations and check-in watch back no longer than this; the
#: other members escalate meanwhile.
SETTLE_MAX_S: Final = 900.0
#: Progress: a page of history pulled from a peer verified within this long (live
#: traffic is not progress: it arrives whether or not a chain is being caught up).
PROGRESS_S: Final = 30.0
#: A backlog: at least a page of events behind. Fewer is what a busy network's live
#: traffic and lossy links keep a node behind by at any moment (a soak's restarted
#: node, never quite caught up, waited past SETTLE_S and escalated late); the last
#: events of a chain are the newest, not the claims of alerts years old.
BACKLOG: Final = MAX_RANGE_EVENTS

#: Sync requests a peer fails in a row (timeouts, empty answers) before this node rests
#: it, and stops believing what it says it holds until it answers again.
FAILURES_TO_REST: Final = 3


@dataclass
class PeerState:
    """What this node knows about one other member."""

    org: str
    bucket: TokenBucket
    boot: bytes | None = None
    counter: int = -1
    last_heartbeat: float | None = None  # monotonic seconds
    #: Its last sign of life heard through anyone (10.1b): when, and its own wall_ms.
    last_alive: float | None = None
    alive_wall_ms: int = 0
    alive_relayed: float = float("-inf")  # when this node last passed one on
    #: Whom it last said it hears directly (roster version, bitmap): a hint (10.1b).
    hears: tuple[int, bytes] | None = None
    skew_ms: int = 0
    roster_ver: int = 0
    heads: dict[tuple[str, int], int] = field(default_factory=dict)
    failures: int = 0
    #: Its last answer to a range it said it holds was empty: what it says it holds is
    #: not believed until it serves one (a request that timed out is no such answer).
    unserved: bool = False
    resting_until: float = 0.0
    outstanding: int = 0
    #: Sync pages this node serves it (the roster's sync_pages_per_min).
    serving: TokenBucket | None = None
    #: What it last announced it runs (10.1a): a claim, shown and compared, never used.
    software: Software | None = None


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
        #: Live events of each origin's chain (the roster's relay limits).
        self._origins: dict[str, TokenBucket] = {}
        self._started = monotonic()
        #: The (peer, link) series of rrn_peer_up exported so far.
        self._up_series: set[tuple[str, str]] = set()
        #: The tz database release this node computes with (set by the daemon).
        self.tz_database = ""
        self._settled = False
        #: When a page of history pulled last verified (the catch-up progressed), and
        #: when this node was last a backlog behind.
        self._progressed = self._backlogged = float("-inf")

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

    def last_heard(self, org: str) -> float | None:
        """When `org` was last heard alive: its heartbeat, or its sign of life through
        anyone (10.1b), in monotonic seconds."""
        state = self.states.get(org)
        if state is None:
            return None
        heard = [t for t in (state.last_heartbeat, state.last_alive) if t is not None]
        return max(heard) if heard else None

    def down(self) -> set[str]:
        """Members not heard alive lately (or never since this node started): neither
        their heartbeats nor their signs of life relayed by others arrive. Escalation
        treats down members as skipped, which asks more people sooner, never fewer.
        """
        now, limit = self.monotonic(), self.down_after_s()
        if now - self._started < limit:
            return set()
        return {
            org
            for org in self.members()
            if (last := self.last_heard(org)) is None or now - last > limit
        }

    def settled(self) -> bool:
        """Whether this node has caught up since it started: three heartbeat intervals on,
        it heard a peer it believes, holds all that peers it believes say they hold, and
        has stored and announced all it took in; or it has waited SETTLE_S (alone, or
        behind links too slow to tell) and is not pulling a backlog (BACKLOG events
        behind, a page of them verified in the last PROGRESS_S); or it has waited
        SETTLE_MAX_S. Latched: once settled, always settled."""
        if self._settled:
            return True
        members = self.members()
        believed = any(self.believes(org) for org in members)
        now = self.monotonic()
        since = now - self._started
        behind, busy = self.behind_total(), self.ingestor.busy
        # Three heartbeats: time to hear every member that is up, not only the first
        # (which may be behind too, and say it holds no more than this node does).
        heard_all = since >= 3 * self.config.heartbeat_s
        caught_up = believed and heard_all and behind == 0 and not busy
        if behind >= BACKLOG:
            self._backlogged = now
        # Pulling a backlog, or storing its last pages (heads move before commit).
        storing = busy and now - self._backlogged < PROGRESS_S
        pulling = (behind >= BACKLOG or storing) and now - self._progressed < PROGRESS_S
        waited = since >= SETTLE_MAX_S or (since >= SETTLE_S and not pulling)
        if not members or waited or caught_up:
            self._settled = True
        return self._settled

    def pulled(self) -> None:
        """A page of history pulled from a peer verified in its place: the node's
        catch-up progresses (see `settled`)."""
        self._progressed = self.monotonic()

    def believes(self, org: str) -> bool:
        """Whether what `org` says it holds counts: heard, it served the last range it was
        asked for that it said it holds, and it is not rested for failing requests."""
        state = self.peer(org)
        return (
            state.last_heartbeat is not None
            and not state.unserved
            and state.failures < FAILURES_TO_REST
        )

    def claimed(self) -> dict[tuple[str, int], int]:
        """The furthest seq of each chain that peers it believes say they hold: those it
        heard but one that did not serve what it said it holds, or failed requests
        until it was rested. One late answer does not unsay a peer's claims: behind 2 s
        round trips, a request each timed out, every peer went unbelieved, "nothing to
        catch up" followed, and a restarted node escalated an alert it last saw at
        level 0 that stood at level 5."""
        best: dict[tuple[str, int], int] = {}
        for org in self.members():
            state = self.peer(org)
            if not self.believes(org):
                continue
            for key, seq in state.heads.items():
                if (upto := self._fetchable(key, seq)) > 0:
                    best[key] = max(best.get(key, 0), upto)
        return best

    def _fetchable(self, key: tuple[str, int], seq: int) -> int:
        """How far of a chain a peer claims this node could ever pull, as sync asks
        (node/peering/sync.py): nothing of an origin no roster names (a claim no
        request answers, which kept a restarted node waiting its full SETTLE_S),
        nothing past a fork's freeze or an event refused for good."""
        chains = self.ingestor.chains
        if self.ingestor.network.roster.known(key[0]) is None or key in chains.stuck:
            return 0
        return min(seq, chains.frozen.get(key, seq))

    def behind_total(self) -> int:
        """Events of any chain that peers it believes say they hold and this node lacks."""
        return sum(
            max(0, seq - self.ingestor.heads.get(key, Head(0, b"")).seq)
            for key, seq in self.claimed().items()
        )

    def admit(self, org: str, cost: float = 1.0) -> bool:
        """Whether `org` may send this message now (counted as rate_limited if not)."""
        if self.peer(org).bucket.allow(self.monotonic(), cost):
            return True
        self.count(org, Reason.RATE_LIMITED)
        return False

    def may_serve(self, org: str) -> bool:
        """Whether `org` may have one more sync page now (counted as rate_limited if not)."""
        state = self.peer(org)
        limits = limits_of(self.ingestor.network.roster)
        if state.serving is None or state.serving.burst != limits.sync_pages_per_min:
            per_min = limits.sync_pages_per_min
            state.serving = TokenBucket(per_min / 60, per_min, self.monotonic())
        if state.serving.allow(self.monotonic()):
            return True
        self.count(org, Reason.RATE_LIMITED)
        return False

    def origin_budget(self, origin: str) -> TokenBucket:
        """The bucket of live events of `origin`'s chain."""
        limits = limits_of(self.ingestor.network.roster)
        bucket = self._origins.get(origin)
        if bucket is None or (bucket.rate, bucket.burst) != (
            limits.relay_per_s,
            limits.relay_burst,
        ):
            bucket = TokenBucket(limits.relay_per_s, limits.relay_burst, self.monotonic())
            self._origins[origin] = bucket
        return bucket

    def origin_spent(self, origin: str) -> bool:
        """Whether `origin`'s live budget is spent (its events are dropped unverified:
        peers that want them pull them, which its daily quota bounds). If not, one
        token is taken now, before the event is verified, so a burst cannot pass
        while its charges are still on their way; `settle` gives it back if the
        event turns out to be no new event of the origin's."""
        if self.origin_budget(origin).allow(self.monotonic()):
            return False
        self.metrics.origin_limited.labels(origin=origin).inc()
        return True

    def settle(self, peer: str, origin: str, verdict: str) -> None:
        """Charge what a live event turned out to cost: a new event its origin's budget
        (taken on arrival); a copy already held a little of the relaying peer's;
        anything invalid (which no honest node relays) a whole token of the peer's."""
        now = self.monotonic()
        if verdict in ("appended", "held", "fork"):
            return
        if origin:
            self.origin_budget(origin).refund(now, 1)
        self.peer(peer).bucket.charge(now, 0.1 if verdict == "duplicate" else 1)

    def _peer_up(self, now: float) -> None:
        """rrn_peer_up for every current member (and none for former ones)."""
        kinds = self.link_kinds()
        for peer, link in list(self._up_series):
            if kinds.get(peer) != link:
                self.metrics.peer_up.remove(peer, link)
                self._up_series.discard((peer, link))
        for peer, link in kinds.items():
            state = self.peer(peer)
            last = state.last_alive if link == "relayed" else state.last_heartbeat
            up = last is not None and now - last <= 3 * self.config.heartbeat_s
            self.metrics.peer_up.labels(peer=peer, link=link).set(1 if up else 0)
            self._up_series.add((peer, link))

    def count(self, org: str, reason: Reason) -> None:
        """Count a refusal of something `org` sent."""
        self.metrics.rejected.labels(reason=str(reason)).inc()
        self.metrics.peer_rejected.labels(peer=org, reason=str(reason)).inc()

    def link_kinds(self) -> dict[str, str]:
        """How this node reaches each other member: dials, accepts, or relayed."""
        direct = {
            link.peer.org: "dials" if link.dial else "accepts"
            for link in links(self.ingestor.network.roster, self.ingestor.me.org)
        }
        return {org: direct.get(org, "relayed") for org in self.members()}

    def update_gauges(self) -> None:
        """Links up, heartbeat ages, clock skews, and how far behind this node is."""
        now = self.monotonic()
        connected = 0
        self._peer_up(now)
        for org in self.members():
            state = self.peer(org)
            if state.last_heartbeat is None:
                continue
            age = now - state.last_heartbeat
            connected += age <= 3 * self.config.heartbeat_s
            self.metrics.peer_roster_version.labels(peer=org).set(state.roster_ver)
            self.metrics.heartbeat_age.labels(peer=org).set(age)
            self.metrics.clock_skew.labels(peer=org).set(state.skew_ms / 1000)
            sw = state.software
            differs = sw is not None and sw.tz_database != self.tz_database
            self.metrics.tz_database_differs.labels(peer=org).set(int(differs))
        self.metrics.peers_connected.set(connected)
        behind: dict[str, int] = {}
        for (origin, epoch), seq in self.claimed().items():
            have = self.ingestor.heads.get((origin, epoch), Head(0, b"")).seq
            behind[origin] = behind.get(origin, 0) + max(0, seq - have)
        for origin in self.ingestor.network.roster.orgs():
            self.metrics.behind.labels(origin=origin).set(behind.get(origin, 0))
