"""How often the fallback pool pages people (node/alerting/notices.py): about hourly in
whole rounds, and every round when rounds are that long already."""

from __future__ import annotations

from rrn.node.alerting.notices import pool_pages

MINUTE = 60_000


def _paged(rounds: int, step_ms: int, repeat_s: int = 3600) -> list[int]:
    return [r for r in range(rounds) if pool_pages(r, step_ms, repeat_s)]


def test_ten_minute_rounds_page_on_entry_then_hourly() -> None:
    assert _paged(19, 10 * MINUTE) == [0, 6, 12, 18]


def test_rounds_of_an_hour_or_more_page_every_round() -> None:
    assert _paged(4, 12 * 60 * MINUTE) == [0, 1, 2, 3], "a weeks alert: not once in 3 days"
    assert _paged(3, 60 * MINUTE) == [0, 1, 2]


def test_a_repeat_between_two_round_counts_rounds_to_the_nearer() -> None:
    assert _paged(7, 25 * MINUTE) == [0, 2, 4, 6]  # 50 min, nearer an hour than 75
    assert _paged(5, 3_000, repeat_s=6) == [0, 2, 4]
    assert _paged(2, 0) == [0, 1], "a step of no length pages each round"
