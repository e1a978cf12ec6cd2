"""NATS subject names. They carry no personal data: only network and org ids.

Owns every subject rrn publishes or subscribes to (docs/PROTOCOL.md,
"Subjects"). Each organisation publishes only inside its own space
`rrn.<net>.<org>.>`, which is what NATS permissions and imports enforce
between members. Pure.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONTROL_PREFIX",
    "EVENT_ID_HEADER",
    "LOCAL_ALERTS_PREFIX",
    "LOCAL_EVENTS_PREFIX",
    "alive",
    "any_peer",
    "control",
    "events",
    "fork_proofs",
    "heartbeats",
    "local_event",
    "local_notice",
    "net_token",
    "publisher_of",
    "requests",
    "responses",
    "rosters",
    "space",
]

#: Control requests from the CLI to its own daemon. Never leave the node.
CONTROL_PREFIX: Final = "rrn.local.ctl"
#: Verified events re-published for integrators on the node's own server.
LOCAL_EVENTS_PREFIX: Final = "rrn.local.events"


#: The header of an integrator's copy of an event that holds the event's id (hex). Not
#: Nats-Msg-Id: JetStream keeps every such id of its duplicate window in memory (a
#: catch-up of thousands of events a second held hundreds of thousands), and an
#: event is published once, after its commit.
EVENT_ID_HEADER: Final = "Rrn-Event-Id"


def local_event(origin: str, kind: str) -> str:
    """Where a node shows its integrators a verified event, by origin and kind (the
    event id is its EVENT_ID_HEADER: a subject per event cost nats-server half a
    kilobyte of memory per event kept)."""
    return f"{LOCAL_EVENTS_PREFIX}.{origin}.{kind}"


#: Alert notifications for the node's own people.
LOCAL_ALERTS_PREFIX: Final = "rrn.local.alerts"


def local_notice(kind: str, alert: str) -> str:
    """Where a node tells its people and integrators what an alert (hex id) asks or
    did: one subject per notice type and alert, so that a tombstone can erase exactly
    that alert's notices from the stream."""
    return f"{LOCAL_ALERTS_PREFIX}.{kind}.{alert}"


def net_token(net: bytes) -> str:
    """The network's token in subjects: the first 16 hex digits of its id."""
    return net[:8].hex()


def space(net: bytes, org: str) -> str:
    """The wildcard covering everything `org` may publish in network `net`."""
    return f"rrn.{net_token(net)}.{org}.>"


def events(net: bytes, publisher: str) -> str:
    """Signed events published (or relayed) live by `publisher`."""
    return f"rrn.{net_token(net)}.{publisher}.ev"


def heartbeats(net: bytes, publisher: str) -> str:
    """Signed heartbeats of `publisher`."""
    return f"rrn.{net_token(net)}.{publisher}.hb"


def software(net: bytes, publisher: str) -> str:
    """Signed announcements of what `publisher` runs (10.1a)."""
    return f"rrn.{net_token(net)}.{publisher}.sw"


def alive(net: bytes, publisher: str) -> str:
    """Signs of life of `publisher` and of members it relays (10.1b)."""
    return f"rrn.{net_token(net)}.{publisher}.alive"


def fork_proofs(net: bytes, publisher: str) -> str:
    """Fork proofs found or relayed by `publisher`."""
    return f"rrn.{net_token(net)}.{publisher}.sec"


def rosters(net: bytes, publisher: str) -> str:
    """Roster certificates `publisher` adopted (so peers can adopt them at once)."""
    return f"rrn.{net_token(net)}.{publisher}.roster"


def requests(net: bytes, requester: str, responder: str) -> str:
    """Sync requests from `requester` to `responder`."""
    return f"rrn.{net_token(net)}.{requester}.req.{responder}"


def responses(net: bytes, responder: str, requester: str) -> str:
    """Sync responses from `responder` to `requester`."""
    return f"rrn.{net_token(net)}.{responder}.rsp.{requester}"


def any_peer(net: bytes, tail: str) -> str:
    """`tail` (e.g. 'ev', 'req.<me>') in every member's space."""
    return f"rrn.{net_token(net)}.*.{tail}"


def publisher_of(subject: str) -> str | None:
    """The org whose space a network subject is in, or None."""
    parts = subject.split(".")
    return parts[2] if len(parts) >= 4 and parts[0] == "rrn" and parts[1] != "local" else None


def control(org: str, op: str) -> str:
    """A control operation addressed to the daemon of `org`."""
    return f"{CONTROL_PREFIX}.{org}.{op}"
