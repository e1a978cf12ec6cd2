"""How fast supporters answer the asks offered to them: from the offer to the first
response, to the pledge and to the action, per role across the network.

Owns the metrics of asks offered in turns (federation/turns.py, PROTOCOL 4.3c).
Offers and answers come from signed times alone, so every node measures the same
values. Each (ask, member) is observed once, when its response, pledge or action
first becomes known to this node, whatever order the events arrived in; a member
that answered an ask never offered to it is not measured. Labels are the roster
role and the drill flag only: no member is named (its own record is `rrn asks
record`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Histogram

from rrn.federation.alerts import AlertState
from rrn.federation.authority import Authority
from rrn.federation.turns import Response, responses, turns_of
from rrn.protocol.roster import Roster

__all__ = ["AskMetrics", "observe_asks"]

#: From ten seconds to a week (answer windows are 3 steps: 3 s to 21 days).
_BUCKETS: Final = (10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800)


class AskMetrics:
    """Offer-to-answer times of supporters, by role."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def histogram(name: str, what: str) -> Histogram:
            return Histogram(
                f"rrn_ask_offer_to_{name}_seconds",
                f"From an ask's offer to a member (its turn, PROTOCOL 4.3c) to the member's "
                f"first {what} (signed times), by the member's role; drills apart "
                '(exercise="true").',
                ["role", "exercise"],
                buckets=_BUCKETS,
                registry=registry,
            )

        self.response = histogram("response", "response: a pledge, an action or a decline")
        self.pledge = histogram("pledge", "pledge")
        self.action = histogram("action", "action not declined")


def _measures(state: AlertState, authority: Authority) -> dict[tuple[str, str, str], Response]:
    """Each offered member's answers, by (action, addressee, member)."""
    found = turns_of(state, authority) if state.raised is not None else None
    if found is None:
        return {}
    return {
        (r.action, r.to, r.org): r for turns in found.asks for r in responses(found.allowed, turns)
    }


def observe_asks(
    metrics: AskMetrics,
    roster: Roster,
    prior: AlertState,
    new: AlertState,
    role_of: Callable[[str], str],
) -> None:
    """Add the answers that became known between two states of one alert (`role_of`:
    the label for a member's role)."""
    assert new.raised is not None
    if not new.raised.body.asks and not any(u.body.asks for u in new.updates):
        return
    if (len(prior.pledges), len(prior.actions)) == (len(new.pledges), len(new.actions)):
        return  # no answer came (offers alone are not measured)
    authority = Authority.of(roster)
    before = _measures(prior, authority)
    drill = "true" if new.raised.body.exercise else "false"
    for key, r in _measures(new, authority).items():
        old = before.get(key)
        labels = {"role": role_of(r.org), "exercise": drill}
        for histogram, at, was in (
            (metrics.response, r.responded_ms, None if old is None else old.responded_ms),
            (metrics.pledge, r.pledged_ms, None if old is None else old.pledged_ms),
            (metrics.action, r.acted_ms, None if old is None else old.acted_ms),
        ):
            if at is not None and was is None:
                histogram.labels(**labels).observe(max(0, at - r.offered_ms) / 1000)
