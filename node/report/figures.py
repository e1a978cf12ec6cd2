"""The figures of a response report: are defenders answered in time, and do supporters
act on what is asked of them?

Owns what `rrn report` counts, from the alert states a node holds (their signed
times) and the members' coverage declarations. Only routable facts are read:
countries, incident types, severity, urgency, members, times. Never a pseudonym,
a sealed detail or an alert id. Pure: the store is read by node/report/build.py.

Times to claim, pledge and act are from the raise's signed time to the earliest
allowed event's (PROTOCOL 4.3b); medians and 90th percentiles are nearest-rank
(the smallest value with at least that share of the values at or below it).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import msgspec

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import AlertState
from rrn.federation.coverage import Shift

__all__ = [
    "AskFlow",
    "CoverageFigures",
    "Report",
    "Tally",
    "Timing",
    "figures",
    "nearest_rank",
]

_HOUR = 3_600_000


class Tally(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    count: int


class Timing(msgspec.Struct, frozen=True, kw_only=True):
    """Raise to first claim for a group of alerts."""

    key: str
    alerts: int
    claimed: int
    median_s: float | None
    p90_s: float | None
    #: The policy's first step for the group (urgency rows), and how many were claimed
    #: within it.
    deadline_s: int | None = None
    within: int | None = None


class AskFlow(msgspec.Struct, frozen=True, kw_only=True):
    """What was asked of supporters, what they pledged, what they did, and how fast."""

    action: str
    to: str
    asked: int
    pledged: int
    acted: int
    median_pledge_s: float | None
    median_act_s: float | None


class CoverageFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Declared cover over the period, and how alerts fared in and out of it."""

    hours: int
    #: Hours of the period in which no responder had declared itself on duty.
    gap_hours: int
    raised_covered: int
    median_claim_covered_s: float | None
    raised_in_gap: int
    median_claim_in_gap_s: float | None
    #: Per member: hours on duty as declared.
    declared_hours: list[Tally]


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """Everything `rrn report` shows (also its --json, and a JSON block in the page)."""

    network: str
    member: str
    from_ms: int
    to_ms: int
    made_ms: int
    alerts: int
    by_country: list[Tally]
    by_type: list[Tally]
    by_severity: list[Tally]
    by_urgency: list[Tally]
    claim_by_urgency: list[Timing]
    claim_by_member: list[Timing]
    escalation_depth: list[Tally]
    coverage: CoverageFigures
    asks: list[AskFlow]
    #: Exercise alerts (drills), kept out of every figure above.
    exercises: int
    exercise_claims: Timing


def nearest_rank(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile of `values` (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def figures(
    alerts: Iterable[tuple[AlertState, AlertView]],
    *,
    window: tuple[int, int],
    steps_s: dict[str, int],
    on_duty: list[Shift],
    head: tuple[str, str, int],
) -> Report:
    """The report over alerts raised in `window` = [from, to): `alerts` are the
    authorised states with their views, `steps_s` the policy's first step by urgency,
    `on_duty` every responder's declared shifts over the window, `head` = (network,
    member, made_ms)."""
    start, end = window
    real: list[tuple[AlertState, AlertView]] = []
    drills: list[tuple[AlertState, AlertView]] = []
    for state, v in alerts:
        if start <= v.raised_ms < end:
            (drills if v.exercise else real).append((state, v))
    views = [v for _, v in real]
    return Report(
        network=head[0],
        member=head[1],
        from_ms=start,
        to_ms=end,
        made_ms=head[2],
        alerts=len(real),
        by_country=_tally(v.country for v in views),
        by_type=_tally(t for v in views for t in v.incident_types),
        by_severity=_tally(str(v.severity) for v in views),
        by_urgency=_tally(str(v.urgency) for v in views),
        claim_by_urgency=[
            _timing(u, [v for v in views if v.urgency == u], steps_s.get(u)) for u in steps_s
        ],
        claim_by_member=_by_member(real),
        escalation_depth=_tally((str(v.level) for v in views), by_key=True),
        coverage=_coverage(views, on_duty, start, end),
        asks=_asks(real),
        exercises=len(drills),
        exercise_claims=_timing("exercise", [v for _, v in drills], None),
    )


def _tally(keys: Iterable[str], *, by_key: bool = False) -> list[Tally]:
    counts = Counter(keys)
    order = sorted(counts, key=(lambda k: (len(k), k)) if by_key else (lambda k: (-counts[k], k)))
    return [Tally(key=k, count=counts[k]) for k in order]


def _claim_s(v: AlertView) -> float | None:
    return None if v.first_claim_ms is None else (v.first_claim_ms - v.raised_ms) / 1000


def _median_claim(views: list[AlertView]) -> float | None:
    return nearest_rank([t for v in views if (t := _claim_s(v)) is not None], 0.5)


def _timing(key: str, views: list[AlertView], deadline_s: int | None) -> Timing:
    times = [t for v in views if (t := _claim_s(v)) is not None]
    return Timing(
        key=key,
        alerts=len(views),
        claimed=len(times),
        median_s=nearest_rank(times, 0.5),
        p90_s=nearest_rank(times, 0.9),
        deadline_s=deadline_s,
        within=None if deadline_s is None else sum(t <= deadline_s for t in times),
    )


def _by_member(alerts: list[tuple[AlertState, AlertView]]) -> list[Timing]:
    """Per member, the alerts it claimed first and how long that took."""
    firsts: dict[str, list[float]] = {}
    for state, v in alerts:
        if not state.claims:
            continue
        first = min(state.claims, key=lambda c: (c.pos.wall_ms, c.pos.id))
        firsts.setdefault(first.pos.org, []).append((first.pos.wall_ms - v.raised_ms) / 1000)
    return [
        Timing(
            key=org,
            alerts=len(t),
            claimed=len(t),
            median_s=nearest_rank(t, 0.5),
            p90_s=nearest_rank(t, 0.9),
        )
        for org, t in sorted(firsts.items())
    ]


def _coverage(
    views: list[AlertView], on_duty: list[Shift], start: int, end: int
) -> CoverageFigures:
    covered = [v for v in views if any(s.start_ms <= v.raised_ms < s.end_ms for s in on_duty)]
    gap = [v for v in views if v not in covered]
    hours = max(0, (end - start) // _HOUR)
    gap_hours = sum(
        not any(s.start_ms < h + _HOUR and s.end_ms > h for s in on_duty)
        for h in range(start, start + hours * _HOUR, _HOUR)
    )
    declared: Counter[str] = Counter()
    for s in on_duty:
        declared[s.org] += (min(s.end_ms, end) - max(s.start_ms, start)) // _HOUR
    return CoverageFigures(
        hours=hours,
        gap_hours=gap_hours,
        raised_covered=len(covered),
        median_claim_covered_s=nearest_rank(
            [t for v in covered if (t := _claim_s(v)) is not None], 0.5
        ),
        raised_in_gap=len(gap),
        median_claim_in_gap_s=_median_claim(gap),
        declared_hours=[Tally(key=o, count=n) for o, n in sorted(declared.items())],
    )


def _asks(alerts: list[tuple[AlertState, AlertView]]) -> list[AskFlow]:
    """Per (action, addressee): alerts asking it, pledged, acted on (not declined)."""
    flows: dict[tuple[str, str], list[tuple[float | None, float | None]]] = {}
    for state, v in alerts:
        for ask in {(str(a.action), str(a.to)) for a in v.asks}:
            pledges = [w for _, action, _, w in v.pledges if action == ask[0]]
            done = [
                a.pos.wall_ms
                for a in state.actions
                if str(a.body.action) == ask[0] and str(a.body.result) != "declined"
            ]
            flows.setdefault(ask, []).append(
                (
                    (min(pledges) - v.raised_ms) / 1000 if pledges else None,
                    (min(done) - v.raised_ms) / 1000 if done else None,
                )
            )
    return [
        AskFlow(
            action=action,
            to=to,
            asked=len(rows),
            pledged=sum(p is not None for p, _ in rows),
            acted=sum(a is not None for _, a in rows),
            median_pledge_s=nearest_rank([p for p, _ in rows if p is not None], 0.5),
            median_act_s=nearest_rank([a for _, a in rows if a is not None], 0.5),
        )
        for (action, to), rows in sorted(flows.items())
    ]
