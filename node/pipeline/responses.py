"""Response metrics from signed timestamps: time to claim, to first action, to pledge, to
feedback; escalations; pledges and their fulfilment; supporters' answers to the asks
offered them (node/pipeline/asktimes.py).

Owns what a change of one alert's state adds to the response metrics. Times are
differences of signed wall clocks (the raiser's and the responder's), so every
node measures the same value for the same alert; a negative difference (clocks
apart) counts as zero. Observed once, when the first claim or action becomes
known to this node, whatever order the events arrived in.
"""

from __future__ import annotations

from typing import Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram

from rrn.federation.alerts import Acted, AlertState, Claimed
from rrn.federation.asks import fulfilled
from rrn.node.pipeline.asktimes import AskMetrics, observe_asks
from rrn.protocol.roster import Roster

__all__ = ["ResponseMetrics", "observe_responses", "role_of"]

#: Response times: a minute to a week.
_RESPONSE_BUCKETS: Final = tuple(
    60 * m for m in (1, 5, 10, 30, 60, 120, 240, 720, 1440, 3 * 1440, 7 * 1440)
)


class ResponseMetrics:
    """How fast the network responds, measured alike on every node."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.escalations = Counter(
            "rrn_alert_escalations_total",
            "Alerts reaching a new escalation level (from any node), by level (6+ together); "
            'drills apart (exercise="true").',
            ["level", "exercise"],
            registry=r,
        )
        self.time_to_claim = Histogram(
            "rrn_alert_time_to_claim_seconds",
            "From an alert's raise to its first claim (signed times), by urgency and the "
            'claiming member\'s role; drills apart (exercise="true").',
            ["urgency", "role", "exercise"],
            buckets=_RESPONSE_BUCKETS,
            registry=r,
        )
        self.time_to_action = Histogram(
            "rrn_alert_time_to_first_action_seconds",
            "From an alert's raise to the first action recorded on it (signed times), by "
            'urgency and the acting member\'s role; drills apart (exercise="true").',
            ["urgency", "role", "exercise"],
            buckets=_RESPONSE_BUCKETS,
            registry=r,
        )
        self.time_to_pledge = Histogram(
            "rrn_alert_time_to_pledge_seconds",
            "From an alert's raise to the first pledge by a member of a role (signed times).",
            ["role"],
            buckets=_RESPONSE_BUCKETS,
            registry=r,
        )
        self.pledges = Counter(
            "rrn_pledges_total",
            "Pledges to carry out an ask, by the pledging member's role.",
            ["role"],
            registry=r,
        )
        self.pledges_fulfilled = Counter(
            "rrn_pledges_fulfilled_total",
            "Pledges followed by the pledged action (same member, same action, not declined).",
            ["role"],
            registry=r,
        )
        self.time_to_feedback = Histogram(
            "rrn_alert_time_to_feedback_seconds",
            "From an alert's raise to the first feedback its origin gave the defender.",
            ["urgency"],
            buckets=_RESPONSE_BUCKETS,
            registry=r,
        )
        #: From an ask's offer to a supporter's answer (node/pipeline/asktimes.py).
        self.asks = AskMetrics(r)

    def escalated_to(self, level: int, exercise: str) -> None:
        """Count an alert reaching `level`."""
        self.escalations.labels(level=str(level) if level <= 5 else "6+", exercise=exercise).inc()


def role_of(roster: Roster, org: str) -> str:
    """The metric label for a member's role: its first role in the roster."""
    member = roster.known(org)
    return str(member.roles[0]) if member is not None and member.roles else "unknown"


def observe_responses(
    metrics: ResponseMetrics, roster: Roster, old: AlertState | None, new: AlertState
) -> None:
    """Add what changed between two states of one alert to the response metrics."""
    if new.raised is None:
        return  # measured once the raise is known
    # What was measured before: nothing while the raise was unknown.
    prior = old if old is not None and old.raised is not None else AlertState(new.alert)
    if _measured(prior) == _measured(new):
        return  # nothing this measures changed (the common case: updates, endings)
    raised_ms = new.raised.pos.wall_ms
    urgency = str(new.raised.body.urgency)
    drill = "true" if new.raised.body.exercise else "false"  # drills never mix with the real
    first = _first(new.claims)
    if first is not None and not prior.claims:
        role = role_of(roster, first.pos.org)
        metrics.time_to_claim.labels(urgency=urgency, role=role, exercise=drill).observe(
            max(0, first.pos.wall_ms - raised_ms) / 1000
        )
    act = _first(new.actions)
    if act is not None and not prior.actions:
        role = role_of(roster, act.pos.org)
        metrics.time_to_action.labels(urgency=urgency, role=role, exercise=drill).observe(
            max(0, act.pos.wall_ms - raised_ms) / 1000
        )
    seen = {e.body.level for e in prior.escalations}
    for level in sorted({e.body.level for e in new.escalations} - seen):
        metrics.escalated_to(level, drill)
    if not new.raised.body.exercise:  # a drill asks no supporter for real
        _observe_supporters(metrics, roster, prior, new)
    observe_asks(metrics.asks, roster, prior, new, lambda org: role_of(roster, org))


def _measured(state: AlertState) -> tuple[int, ...]:
    return (
        len(state.claims),
        len(state.actions),
        len(state.escalations),
        len(state.pledges),
        len(state.feedback),
    )


def _observe_supporters(
    metrics: ResponseMetrics, roster: Roster, prior: AlertState, new: AlertState
) -> None:
    """Pledges (time to the first one per role, counts, fulfilment) and feedback."""
    assert new.raised is not None
    raised_ms = new.raised.pos.wall_ms
    before = {p.pos for p in prior.pledges}
    pledged_roles = {role_of(roster, p.pos.org) for p in prior.pledges}
    for pledge in sorted(new.pledges, key=lambda p: (p.pos.wall_ms, p.pos.id)):
        if pledge.pos in before:
            continue
        role = role_of(roster, pledge.pos.org)
        metrics.pledges.labels(role=role).inc()
        if role not in pledged_roles:
            first = min(
                (p for p in new.pledges if role_of(roster, p.pos.org) == role),
                key=lambda p: (p.pos.wall_ms, p.pos.id),
            )
            metrics.time_to_pledge.labels(role=role).observe(
                max(0, first.pos.wall_ms - raised_ms) / 1000
            )
            pledged_roles.add(role)
    for org, _ in fulfilled(new) - fulfilled(prior):
        metrics.pledges_fulfilled.labels(role=role_of(roster, org)).inc()
    origin = new.raised.pos.org
    told = [f for f in new.feedback if f.pos.org == origin]
    if told and not any(f.pos.org == origin for f in prior.feedback):
        first_told = min(f.pos.wall_ms for f in told)
        metrics.time_to_feedback.labels(urgency=str(new.raised.body.urgency)).observe(
            max(0, first_told - raised_ms) / 1000
        )


T = TypeVar("T", Claimed, Acted)


def _first(facts: tuple[T, ...]) -> T | None:
    return min(facts, key=lambda f: (f.pos.wall_ms, f.pos.id), default=None)
