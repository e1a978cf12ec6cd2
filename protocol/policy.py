"""The network's policy, part of the threshold-approved roster: how fast alerts climb
the escalation ladder, and what one member may make every other node hold.

Pure; encoded inside the roster (protocol/roster.py).
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from msgspec import Meta

__all__ = [
    "MAX_LINKS",
    "MAX_STEP_S",
    "MIN_LINKS",
    "MIN_STEP_S",
    "MemberLimits",
    "NetworkPolicy",
    "StepSeconds",
]


#: Shortest and longest time an escalation step may be given (seconds).
MIN_STEP_S: Final = 1


MAX_STEP_S: Final = 7 * 86400


StepSeconds = Annotated[int, Meta(ge=MIN_STEP_S, le=MAX_STEP_S)]

#: Fewest and most links per member a sparse mesh may ask for (PROTOCOL.md 10.5).
MIN_LINKS: Final = 2
MAX_LINKS: Final = 255


class MemberLimits(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """What one member may make every other node hold: the network agrees on it.

    Per origin: events (and their payload bytes) held behind a gap; events (and
    payload bytes) its chain may add per UTC day of its signed time; events per
    second (with a burst) of its chain relayed live; and, per peer, sync pages
    a node serves it per minute.
    """

    held_events: Annotated[int, Meta(ge=16, le=1_000_000)]
    held_bytes: Annotated[int, Meta(ge=65_536, le=1 << 34)]
    day_events: Annotated[int, Meta(ge=100, le=100_000_000)]
    day_bytes: Annotated[int, Meta(ge=1 << 20, le=1 << 40)]
    relay_per_s: Annotated[int, Meta(ge=1, le=100_000)]
    relay_burst: Annotated[int, Meta(ge=1, le=10_000_000)]
    sync_pages_per_min: Annotated[int, Meta(ge=1, le=100_000)]


class NetworkPolicy(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """Escalation policy every node applies: part of the threshold-approved roster.

    How long each step of an alert's escalation ladder lasts, by urgency tier, and
    how many single members are asked in turn before the fallback pool; and,
    optionally (absent: the defaults, and not encoded at all), the limits on what
    one member may make the others hold, and how many direct links each member
    holds (absent: a full mesh; federation/topology.py).
    """

    immediate_s: StepSeconds
    days_s: StepSeconds
    weeks_s: StepSeconds
    max_direct: Annotated[int, Meta(ge=0, le=16)]
    limits: MemberLimits | None = None
    links: Annotated[int, Meta(ge=MIN_LINKS, le=MAX_LINKS)] | None = None
