"""What one member may make every other node hold, and the time its events may claim.

Owns the per-member bounds the roster's policy sets (protocol/roster.py
MemberLimits; the defaults when it sets none) and the rules every node applies
alike when it appends an event to a chain:

- time only moves forward along an origin's history: an event signed earlier
  than the latest time its chain already claimed is kept (the chain stays whole)
  but not applied (`time_regression`); so does the roster version an event names
  (`roster_regression`): a signer never goes back to an older roster;
- no event of a kind this version defines names other events in `refs`
  (`refs_not_empty`): refs have no meaning yet, so no implementation may give
  them one alone;
- a chain adds at most `day_events` events and `day_bytes` payload bytes per
  UTC day of its signed time; an event beyond is refused (`quota_exceeded`) on
  every node, so the same events are refused everywhere;
- an event claiming a time more than MAX_FUTURE_MS ahead of the receiver's clock
  waits (held) until that time is near; it is never applied early, so no view
  holds a time from the far future.

Usage carries across a key rotation (the new epoch continues its origin's
history), so rotating cannot reset a quota. Pure; imports protocol only.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from rrn.protocol.envelope import Header
from rrn.protocol.errors import Reason
from rrn.protocol.kinds import Kind
from rrn.protocol.policy import MemberLimits
from rrn.protocol.roster import Roster

__all__ = [
    "DAY_MS",
    "DEFAULT_LIMITS",
    "MAX_FUTURE_MS",
    "Usage",
    "charge",
    "limits_of",
    "over_quota",
]

DAY_MS: Final = 86_400_000
KNOWN_KINDS: Final = frozenset(str(k) for k in Kind)
#: How far ahead of a receiver's clock an event's time may be and still be applied.
MAX_FUTURE_MS: Final = 10 * 60 * 1000

#: The limits of a network whose roster sets none.
DEFAULT_LIMITS: Final = MemberLimits(
    held_events=2_000,
    held_bytes=8 << 20,
    day_events=5_000,
    day_bytes=16 << 20,
    relay_per_s=50,
    relay_burst=500,
    sync_pages_per_min=120,
)


def limits_of(roster: Roster) -> MemberLimits:
    """The limits a roster sets (the defaults when it sets none)."""
    if roster.policy is None or roster.policy.limits is None:
        return DEFAULT_LIMITS
    return roster.policy.limits


class Usage(NamedTuple):
    """One chain's history so far: the latest time it claimed, what it added on that UTC
    day (events, payload bytes), and the latest roster version it named."""

    wall_ms: int = 0
    events: int = 0
    bytes: int = 0
    roster_ver: int = 0

    @property
    def day(self) -> int:
        return self.wall_ms // DAY_MS


def charge(usage: Usage, header: Header) -> tuple[Usage, Reason | None]:
    """The chain's usage once `header` is appended, and why the event is kept unapplied
    if it goes back (in time or roster version) or names refs.

    An event earlier than the chain's latest time counts on the latest time's
    day (so going back cannot open a fresh day's quota).
    """
    problem = None
    if header.wall_ms < usage.wall_ms:
        problem = Reason.TIME_REGRESSION
    elif header.roster_ver < usage.roster_ver:
        problem = Reason.ROSTER_REGRESSION
    elif header.refs and header.kind in KNOWN_KINDS:
        problem = Reason.REFS_NOT_EMPTY
    at = max(usage.wall_ms, header.wall_ms)
    roster_ver = max(usage.roster_ver, header.roster_ver)
    if at // DAY_MS != usage.day:
        return Usage(at, 1, header.payload_len, roster_ver), problem
    return Usage(at, usage.events + 1, usage.bytes + header.payload_len, roster_ver), problem


def over_quota(usage: Usage, limits: MemberLimits) -> str | None:
    """What a chain with this usage exceeds, or None."""
    if usage.events > limits.day_events:
        return f"more than {limits.day_events} events in one day"
    if usage.bytes > limits.day_bytes:
        return f"more than {limits.day_bytes} payload bytes in one day"
    return None
