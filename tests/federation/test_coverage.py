"""Coverage from declarations: DST in both hemispheres, midnight and week ends, gaps."""

from __future__ import annotations

import datetime
import zoneinfo

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrn.federation.coverage import covers, dst_problems, gaps, on_duty, shifts
from rrn.protocol.coverage import (
    CoverageDeclared,
    CoverException,
    Weekday,
    Window,
    check_declaration,
)
from rrn.protocol.errors import PayloadError
from rrn.protocol.kinds import decode_payload, encode_payload

UTC = datetime.UTC
ALL_DAYS = list(Weekday)


def ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0, tz: str = "UTC") -> int:
    zone = zoneinfo.ZoneInfo(tz)
    return int(datetime.datetime(y, mo, d, h, mi, tzinfo=zone).timestamp() * 1000)


def decl(
    tz: str, *windows: Window, exceptions: tuple[CoverException, ...] = ()
) -> CoverageDeclared:
    return CoverageDeclared(tz=tz, windows=list(windows), exceptions=list(exceptions))


def window(start: str, end: str, days: list[Weekday] | None = None, **kw: list[str]) -> Window:
    return Window(
        days=days or ALL_DAYS,
        start=start,
        end=end,
        regions=kw.get("regions", ["*"]),
        languages=kw.get("languages", []),
    )


HOUR = 3_600_000


def test_day_shift_keeps_local_hours_across_spring_forward_in_berlin() -> None:
    d = decl("Europe/Berlin", window("08:00", "20:00"))
    # 2026-03-29: clocks go from 02:00 CET to 03:00 CEST.
    before = shifts("berlin-fd", d, ms(2026, 3, 28), ms(2026, 3, 29))
    change = shifts("berlin-fd", d, ms(2026, 3, 29), ms(2026, 3, 30))
    assert [(s.start_ms, s.end_ms) for s in before] == [(ms(2026, 3, 28, 7), ms(2026, 3, 28, 19))]
    assert [(s.start_ms, s.end_ms) for s in change] == [(ms(2026, 3, 29, 6), ms(2026, 3, 29, 18))]


def test_night_shift_is_an_hour_longer_when_clocks_go_back() -> None:
    d = decl("Europe/Berlin", window("22:00", "06:00"))
    # Night of 24-25 Oct 2026: 03:00 CEST becomes 02:00 CET.
    (night,) = [s for s in shifts("b", d, ms(2026, 10, 24, 12), ms(2026, 10, 25, 12))]
    assert night.start_ms == ms(2026, 10, 24, 20)  # 22:00 CEST
    assert night.end_ms == ms(2026, 10, 25, 5)  # 06:00 CET
    assert night.end_ms - night.start_ms == 9 * HOUR


def test_southern_hemisphere_dst_in_sydney() -> None:
    d = decl("Australia/Sydney", window("09:00", "17:00", [Weekday.SAT, Weekday.SUN]))
    # DST ends 2026-04-05 (AEDT +11 -> AEST +10), starts 2026-10-04 (+10 -> +11).
    april = shifts("syd", d, ms(2026, 4, 3, 12), ms(2026, 4, 6))
    assert [s.start_ms for s in april] == [ms(2026, 4, 3, 22), ms(2026, 4, 4, 23)]
    october = shifts("syd", d, ms(2026, 10, 2, 12), ms(2026, 10, 5))
    assert [s.start_ms for s in october] == [ms(2026, 10, 2, 23), ms(2026, 10, 3, 22)]


def test_zone_without_dst_is_steady() -> None:
    d = decl("Asia/Jakarta", window("08:00", "16:00"))
    for month in (1, 4, 7, 10):
        (s,) = shifts("jkt", d, ms(2026, month, 14), ms(2026, month, 15))
        assert s.start_ms == ms(2026, month, 14, 1)


def test_window_across_the_week_end_runs_into_monday() -> None:
    d = decl("America/Lima", window("22:00", "06:00", [Weekday.SUN]))
    found = shifts("lima", d, ms(2026, 11, 22), ms(2026, 11, 24))  # Sun 22nd, Mon 23rd
    assert [(s.start_ms, s.end_ms) for s in found] == [(ms(2026, 11, 23, 3), ms(2026, 11, 23, 11))]
    assert covers(found, ms(2026, 11, 23, 2, tz="America/Lima"), "PE") == {"lima"}
    assert covers(found, ms(2026, 11, 23, 7, tz="America/Lima"), "PE") == set()


def test_holiday_removes_cover_and_extra_cover_adds_it() -> None:
    d = decl(
        "Africa/Nairobi",
        window("08:00", "18:00", regions=["KE", "UG"]),
        exceptions=(
            CoverException(start="2026-12-25T00:00", end="2026-12-26T00:00", off=True),
            CoverException(start="2026-12-26T20:00", end="2026-12-27T02:00", regions=["KE"]),
        ),
    )
    day = shifts(
        "nbo", d, ms(2026, 12, 25, tz="Africa/Nairobi"), ms(2026, 12, 26, tz="Africa/Nairobi")
    )
    assert day == []
    extra = covers(
        shifts("nbo", d, ms(2026, 12, 26), ms(2026, 12, 28)),
        ms(2026, 12, 26, 23, tz="Africa/Nairobi"),
        "KE",
    )
    assert extra == {"nbo"}


def test_follow_the_sun_gaps_by_country_and_language() -> None:
    lima = decl(
        "America/Lima", window("08:00", "20:00", regions=["PE", "CO"], languages=["es", "en"])
    )
    jakarta = decl("Asia/Jakarta", window("08:00", "20:00", regions=["*"], languages=["en", "id"]))
    start, end = ms(2026, 11, 23), ms(2026, 11, 24)
    all_shifts = shifts("lima-hr", lima, start, end) + shifts("jakarta-pb", jakarta, start, end)
    # Jakarta covers 01:00-13:00 UTC for anywhere; Lima 13:00-01:00 UTC for PE.
    assert gaps(all_shifts, start, end, country="PE") == []
    assert gaps(all_shifts, start, end, country="KE") == [
        (start, ms(2026, 11, 23, 1)),
        (ms(2026, 11, 23, 13), end),
    ]
    assert gaps(all_shifts, start, end, country="PE", language="es") == [
        (ms(2026, 11, 23, 1), ms(2026, 11, 23, 13))  # Lima's evening runs to 01:00 UTC
    ]
    assert {s.org for s in on_duty(all_shifts, ms(2026, 11, 23, 14))} == {"lima-hr"}


def test_declaration_errors_name_the_problem() -> None:
    def problem(d: CoverageDeclared) -> str | None:
        return check_declaration(d)

    overlapping = decl("UTC", window("08:00", "12:00"), window("11:00", "14:00", [Weekday.MON]))
    assert "windows 1 and 2 overlap at mon 11:00" in (problem(overlapping) or "")
    night_into_monday = decl(
        "UTC", window("23:00", "02:00", [Weekday.SUN]), window("01:00", "03:00", [Weekday.MON])
    )
    assert "overlap at mon 01:00" in (problem(night_into_monday) or "")
    assert "cannot be empty" in (problem(decl("UTC", window("09:00", "09:00"))) or "")
    inverted = decl(
        "UTC",
        exceptions=(CoverException(start="2026-12-26T08:00", end="2026-12-25T08:00", off=True),),
    )
    assert "ends (2026-12-25T08:00) before it starts" in (problem(inverted) or "")
    no_date = decl(
        "UTC",
        exceptions=(CoverException(start="2026-02-30T08:00", end="2026-03-01T08:00", off=True),),
    )
    assert "not a date" in (problem(no_date) or "")
    both = decl(
        "UTC",
        exceptions=(
            CoverException(start="2026-12-24T00:00", end="2026-12-26T00:00", off=True),
            CoverException(start="2026-12-25T12:00", end="2026-12-27T00:00", off=True),
        ),
    )
    assert "exceptions 1 and 2 overlap" in (problem(both) or "")
    bad_region = decl("UTC", window("08:00", "10:00", regions=["XX"]))
    assert "XX is not an ISO 3166-1" in (problem(bad_region) or "")
    assert problem(decl("UTC", window("00:00", "24:00"))) is None


def test_receivers_refuse_malformed_declarations() -> None:
    good = decl("America/Lima", window("08:00", "20:00"))
    assert decode_payload("coverage.declared", encode_payload(good)) == good
    bad_zone = msgspec.msgpack.encode({"tz": "Mars/Olympus", "windows": []})
    with pytest.raises(PayloadError, match="not an IANA time zone"):
        decode_payload("coverage.declared", bad_zone)
    overlap = msgspec.msgpack.encode(
        decl("UTC", window("08:00", "12:00"), window("10:00", "13:00"))
    )
    with pytest.raises(PayloadError, match="overlap"):
        decode_payload("coverage.declared", overlap)


def test_dst_gap_and_fold_are_found_before_signing() -> None:
    today = datetime.date(2026, 1, 1)
    sunday_0230 = decl("Europe/Berlin", window("02:30", "07:00", [Weekday.SUN]))
    (gap,) = dst_problems(sunday_0230, today)
    assert "02:30 does not exist (clocks go forward) on 2026-03-29" in gap
    folded = decl("Europe/Berlin", window("01:00", "02:30", [Weekday.SUN]))
    (fold,) = dst_problems(folded, datetime.date(2026, 6, 1))
    assert "02:30 occurs twice (clocks go back) on 2026-10-25" in fold
    weekdays = [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI]
    assert dst_problems(decl("Europe/Berlin", window("02:30", "07:00", weekdays)), today) == []
    sydney = decl("Australia/Sydney", window("02:15", "05:00", [Weekday.SUN]))
    assert "02:15 occurs twice (clocks go back) on 2026-04-05" in dst_problems(sydney, today)[0]
    spring = dst_problems(sydney, datetime.date(2026, 6, 1))
    assert "02:15 does not exist (clocks go forward) on 2026-10-04" in spring[0]
    assert dst_problems(decl("Asia/Jakarta", window("02:30", "07:00")), today) == []
    dated = decl(
        "America/New_York",
        exceptions=(CoverException(start="2026-03-08T02:30", end="2026-03-08T09:00", off=True),),
    )
    assert "exception 1: 2026-03-08T02:30 does not exist" in dst_problems(dated, today)[0]


ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/Lima",
    "Australia/Sydney",
    "America/Santiago",
    "Asia/Kathmandu",
]


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start_h=st.integers(0, 23),
    length_h=st.integers(1, 23),
    days=st.sets(st.sampled_from(ALL_DAYS), min_size=1),
    day_offset=st.integers(0, 365),
)
def test_gaps_and_cover_are_complementary(
    zone: str, start_h: int, length_h: int, days: set[Weekday], day_offset: int
) -> None:
    end_h = (start_h + length_h) % 24
    w = Window(
        days=sorted(days, key=ALL_DAYS.index),
        start=f"{start_h:02d}:00",
        end=f"{end_h:02d}:00",
        regions=["*"],
    )
    d = decl(zone, w)
    if check_declaration(d) is not None:
        return  # overlapping with itself across days is refused before signing
    begin = ms(2026, 1, 1) + day_offset * 24 * HOUR
    end = begin + 7 * 24 * HOUR
    found = shifts("x", d, begin, end)
    assert all(s.start_ms < s.end_ms for s in found)
    holes = gaps(found, begin, end)
    covered = sum(s.end_ms - s.start_ms for s in found)
    assert covered + sum(e - s for s, e in holes) == end - begin
    for s, e in holes:
        assert covers(found, (s + e) // 2, "PE") == set()
