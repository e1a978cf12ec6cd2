"""Response-time metrics from signed timestamps: time to claim, to first action, escalations.

Owns what a change of one alert's state adds to the response metrics. Times are
differences of signed wall clocks (the raiser's and the responder's), so every
node measures the same value for the same alert; a negative difference (clocks
apart) counts as zero. Observed once, when the first claim or action becomes
known to this node, whatever order the events arrived in.
"""

from __future__ import annotations

from typing import TypeVar

from federation.alerts import Acted, AlertState, Claimed
from node.metrics import Metrics
from protocol.roster import Roster

__all__ = ["observe_responses", "role_of"]


def role_of(roster: Roster, org: str) -> str:
    """The metric label for a member's role: its first role in the roster."""
    member = roster.known(org)
    return str(member.roles[0]) if member is not None and member.roles else "unknown"


def observe_responses(
    metrics: Metrics, roster: Roster, old: AlertState | None, new: AlertState
) -> None:
    """Add what changed between two states of one alert to the response metrics."""
    if new.raised is None:
        return  # measured once the raise is known
    # What was measured before: nothing while the raise was unknown.
    prior = old if old is not None and old.raised is not None else AlertState(new.alert)
    if (len(prior.claims), len(prior.actions), len(prior.escalations)) == (
        len(new.claims),
        len(new.actions),
        len(new.escalations),
    ):
        return  # nothing this measures changed (the common case: updates, endings)
    raised_ms = new.raised.pos.wall_ms
    urgency = str(new.raised.body.urgency)
    first = _first(new.claims)
    if first is not None and not prior.claims:
        metrics.time_to_claim.labels(urgency=urgency, role=role_of(roster, first.pos.org)).observe(
            max(0, first.pos.wall_ms - raised_ms) / 1000
        )
    act = _first(new.actions)
    if act is not None and not prior.actions:
        metrics.time_to_action.labels(urgency=urgency, role=role_of(roster, act.pos.org)).observe(
            max(0, act.pos.wall_ms - raised_ms) / 1000
        )
    seen = {e.body.level for e in prior.escalations}
    for level in sorted({e.body.level for e in new.escalations} - seen):
        metrics.escalated_to(level)


T = TypeVar("T", Claimed, Acted)


def _first(facts: tuple[T, ...]) -> T | None:
    return min(facts, key=lambda f: (f.pos.wall_ms, f.pos.id), default=None)
