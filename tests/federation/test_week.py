"""A short simulated stretch of the week (bench/week.py) across each hemisphere's clock change.

Seeded and on a virtual clock: a day or so of alerts, outages and claims driven
by the rules every node runs. What a user asks of it: no alert dropped, each one
claimed or waiting in the fallback pool, every escalation at its deadline, and
the gaps forecast at the start the gaps that happened. The runs must cross DST.
"""

from __future__ import annotations

import datetime

import pytest

from bench.week import GATHER_MS, TICK_MS, simulate
from bench.week_report import Escalated, Result
from bench.week_world import MEMBERS, Scenario
from rrn.federation.coverage import shifts
from rrn.federation.escalation import DEFAULT_STEP_S
from rrn.protocol.vocabulary import Urgency

UTC = datetime.UTC
#: About an alert an hour; each member down every other day; two days for the last claims.
LOAD = {"alerts_per_h": 1.0, "outages_per_member_day": 0.5, "drain_h": 48.0}

#: Sydney's and Santiago's clocks go back on 5 April 2026; Berlin's go forward on 29 March.
RUNS = {
    "south": (
        Scenario(seed=7, start=datetime.datetime(2026, 4, 4, tzinfo=UTC), days=1.5, **LOAD),
        {"America/Santiago", "Australia/Sydney"},
    ),
    "north": (
        Scenario(seed=8, start=datetime.datetime(2026, 3, 28, 12, tzinfo=UTC), days=1.0, **LOAD),
        {"Europe/Berlin"},
    ),
}


@pytest.fixture(scope="module", params=sorted(RUNS))
def run(request: pytest.FixtureRequest) -> tuple[Result, set[str]]:
    scenario, zones = RUNS[request.param]
    return simulate(scenario), zones


def test_the_run_crosses_a_clock_change_with_load_and_outages(
    run: tuple[Result, set[str]],
) -> None:
    result, zones = run
    assert {d["zone"] for d in result.dst} == zones
    assert len(result.alerts) >= 20
    assert result.outages, "members must go down"
    assert result.started_in_pool, "some alerts must be raised in a coverage gap"


def test_every_alert_is_claimed_or_in_the_pool_and_none_is_dropped(
    run: tuple[Result, set[str]],
) -> None:
    result, _ = run
    assert result.dropped == 0
    assert result.waiting == 0
    assert result.claimed + result.in_pool == len(result.alerts)
    assert result.refused == 0, "every node would refuse some escalation or claim"
    assert result.off_duty_routes == 0, "an alert went first to a member not at work"


def test_every_escalation_comes_within_a_second_of_its_deadline(
    run: tuple[Result, set[str]],
) -> None:
    """Deadlines recomputed here from the signed times alone: the raise, then each level;
    and no alert sits unclaimed at a step past its deadline without climbing."""
    result, _ = run
    by_alert: dict[str, list[Escalated]] = {a.alert: [] for a in result.alerts}
    for e in result.escalations:
        by_alert[e.alert].append(e)
    deadlines = 0
    for a in result.alerts:
        step = int(DEFAULT_STEP_S[Urgency(a.urgency)] * 1000)
        since = a.raised_ms
        for e in sorted(by_alert[a.alert], key=lambda e: e.level):
            if e.cause == "deadline":
                deadlines += 1
                assert 0 <= e.at_ms - (since + step) <= 1000, e
            else:  # a skip: at the escalator's next tick after the member was noticed down
                assert e.cause == "target_down", e
                assert since <= e.at_ms and 0 <= e.late_ms <= TICK_MS + GATHER_MS + 50, e
            since = e.at_ms
        if a.claimed_ms is not None:
            assert a.claimed_ms <= since + step + 1000, a
    assert deadlines, "the run must make some alert climb"
    assert result.stalled == 0


def test_the_forecast_gaps_are_the_gaps_that_happened(run: tuple[Result, set[str]]) -> None:
    result, _ = run
    assert any(g["happened"] for g in result.gaps.values()), "a run without gaps proves nothing"
    for key, g in result.gaps.items():
        assert g["forecast"] == g["happened"], key
        assert g["equal"], key


def _starts(org: str, day: datetime.date) -> list[tuple[datetime.datetime, float]]:
    """(UTC start, hours) of `org`'s shifts starting on this UTC day."""
    a = datetime.datetime.combine(day, datetime.time(), UTC)
    ms = int(a.timestamp() * 1000)
    found = shifts(org, MEMBERS[org], ms - 86_400_000, ms + 2 * 86_400_000)
    return [
        (datetime.datetime.fromtimestamp(s.start_ms / 1000, UTC), (s.end_ms - s.start_ms) / 3.6e6)
        for s in found
        if a <= datetime.datetime.fromtimestamp(s.start_ms / 1000, UTC) < a + datetime.timedelta(1)
    ]


@pytest.mark.parametrize(
    ("org", "before", "after", "across"),
    [
        # Berlin, weekends from 10:00 local (CET, then CEST); the Saturday night desk
        # 22:00-06:00 lasts 7 h.
        ("berlin-fd", (3, 28, 9), (3, 29, 8), (3, 28, 21, 7.0)),
        # Sydney, evenings from 18:00 local (AEDT, then AEST).
        ("sydney-hr", (4, 4, 7), (4, 5, 8), None),
        # Santiago, Sundays from 10:00 local (-03, then -04); the Saturday night
        # 20:00-02:00 lasts 7 h, its 23:00 hour twice.
        ("santiago-dh", (3, 29, 13), (4, 5, 14), (4, 4, 23, 7.0)),
    ],
)
def test_a_clock_change_moves_the_member_s_shift_in_utc(
    org: str,
    before: tuple[int, int, int],
    after: tuple[int, int, int],
    across: tuple[int, int, int, float] | None,
) -> None:
    for month, day, hour in (before, after):
        starts = [t for t, _ in _starts(org, datetime.date(2026, month, day))]
        assert datetime.datetime(2026, month, day, hour, tzinfo=UTC) in starts, (org, starts)
    if across is not None:
        month, day, hour, hours = across
        found = _starts(org, datetime.date(2026, month, day))
        assert (datetime.datetime(2026, month, day, hour, tzinfo=UTC), hours) in found, found
