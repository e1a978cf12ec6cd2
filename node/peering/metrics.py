"""Metrics of the conversation with peers: links, heartbeats, clock skew, sync.

Owns the families peering observes; refusals are counted in the pipeline's
families (one count per reason, whichever part refused), passed in.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["PeerMetrics"]


class PeerMetrics:
    """What this node sees of its peers."""

    def __init__(
        self, registry: CollectorRegistry, *, rejected: Counter, peer_rejected: Counter
    ) -> None:
        r = registry
        self.rejected = rejected
        self.peer_rejected = peer_rejected
        self.peers_connected = Gauge(
            "rrn_peers_connected",
            "Members whose heartbeats arrive directly (a live link).",
            registry=r,
        )
        self.peer_up = Gauge(
            "rrn_peer_up",
            "1 while each current member's heartbeats arrive, 0 if silent or never heard "
            "since this node started; every member from the start. `link` is how this node "
            "reaches it (dials, accepts, or relayed: no direct link, so its signs of life "
            "through others count instead of heartbeats).",
            ["peer", "link"],
            registry=r,
        )
        self.peer_roster_version = Gauge(
            "rrn_peer_roster_version",
            "Roster version each member's last heartbeat said it works under.",
            ["peer"],
            registry=r,
        )
        self.heartbeat_age = Gauge(
            "rrn_peer_heartbeat_age_seconds",
            "Seconds since the last heartbeat of each directly linked member.",
            ["peer"],
            registry=r,
        )
        self.clock_skew = Gauge(
            "rrn_peer_clock_skew_seconds",
            "A member's clock minus ours, from its last heartbeat (positive: ahead).",
            ["peer"],
            registry=r,
        )
        self.tz_database_differs = Gauge(
            "rrn_peer_tz_database_differs",
            "1 when a member announced another IANA tz database release than ours: shifts "
            "and escalation steps may then be computed differently (rrn version).",
            ["peer"],
            registry=r,
        )
        self._sync_families(r)

    def _sync_families(self, r: CollectorRegistry) -> None:
        """What pull sync and live relay observe."""
        self.behind = Gauge(
            "rrn_sync_behind_events",
            "Events of each origin that some peer holds and this node does not yet.",
            ["origin"],
            registry=r,
        )
        self.sync_requests = Counter(
            "rrn_sync_requests_total",
            "Range requests this node sent, by peer and outcome "
            "(ok, timeout, empty, refused, false).",
            ["peer", "outcome"],
            registry=r,
        )
        self.sync_pulled = Counter(
            "rrn_sync_pulled_events_total",
            "Events received in answer to range requests.",
            registry=r,
        )
        self.origin_limited = Counter(
            "rrn_origin_limited_total",
            "Live events of one origin dropped unverified: its relay budget (the roster's "
            "limits) was spent. Peers that want them pull them.",
            ["origin"],
            registry=r,
        )
        self.sync_served = Counter(
            "rrn_sync_served_events_total",
            "Events sent to peers in answer to their range requests.",
            ["peer"],
            registry=r,
        )
