"""Who is on duty when: shifts from signed declarations, gaps, DST checks.

Owns the translation of members' declarations (weekly windows in their IANA
zone plus dated exceptions, protocol/coverage.py) into shifts on the UTC time
line, the same on every node, and the coverage questions asked of them: who is
on duty at an instant for a country and languages, and where the gaps are.

Local times are turned into instants with Python's zoneinfo and PEP 495 `fold=0`:
a time that occurs twice at a DST change means its first occurrence; a time that
does not exist (skipped when clocks go forward) is read with the offset in force
before the change, i.e. it lands just after the jump. `dst_problems` finds such
times so that `rrn coverage declare` can refuse them before they are signed;
receivers apply the rule above and never refuse on it. A window keeps its local
wall-clock bounds across DST: "08:00"-"20:00" is 11 or 13 hours long on the two
change days. Pure (zoneinfo reads the time zone database).
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from rrn.protocol.coverage import (
    ANYWHERE,
    Capability,
    CoverageDeclared,
    CoverException,
    Weekday,
    Window,
    minutes_of,
)

__all__ = [
    "Shift",
    "covers",
    "dst_problems",
    "gaps",
    "on_duty",
    "shifts",
]

_DAY: Final = datetime.timedelta(days=1)
_WEEKDAYS: Final = list(Weekday)


@dataclass(frozen=True, order=True)
class Shift:
    """One member on duty over [start_ms, end_ms), for these regions and languages."""

    start_ms: int
    end_ms: int
    org: str
    regions: frozenset[str]
    languages: frozenset[str]
    capabilities: frozenset[Capability]

    def covers(self, country: str | None, languages: Iterable[str] = ()) -> bool:
        """True when this shift takes alerts from `country` (None: any) in any of `languages`."""
        if country is not None and country not in self.regions and ANYWHERE not in self.regions:
            return False
        wanted = set(languages)
        return not wanted or not self.languages or bool(wanted & self.languages)


def _instant(local: datetime.datetime, zone: zoneinfo.ZoneInfo) -> int:
    """Milliseconds since the epoch of a naive local time in `zone` (fold=0 rule)."""
    return int(local.replace(tzinfo=zone, fold=0).timestamp() * 1000)


def _local(ms: int, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, zone).replace(tzinfo=None)


def _at(day: datetime.date, hhmm: str) -> datetime.datetime:
    minutes = minutes_of(hhmm)
    return datetime.datetime.combine(day, datetime.time()) + datetime.timedelta(minutes=minutes)


def _weekly(
    org: str,
    windows: Sequence[Window],
    zone: zoneinfo.ZoneInfo,
    first: datetime.date,
    last: datetime.date,
) -> list[Shift]:
    found = []
    day = first
    while day <= last:
        weekday = _WEEKDAYS[day.weekday()]
        for w in windows:
            if weekday not in w.days:
                continue
            start = _at(day, w.start)
            end = _at(day, w.end)
            if end <= start:
                end += _DAY  # past midnight into the next day
            found.append(
                Shift(
                    _instant(start, zone),
                    _instant(end, zone),
                    org,
                    frozenset(w.regions),
                    frozenset(w.languages),
                    frozenset(w.capabilities),
                )
            )
        day += _DAY
    return found


def _parse(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M")


def _subtract(shift: Shift, start: int, end: int) -> list[Shift]:
    if end <= shift.start_ms or start >= shift.end_ms:
        return [shift]
    parts = []
    if shift.start_ms < start:
        parts.append(_with(shift, shift.start_ms, start))
    if end < shift.end_ms:
        parts.append(_with(shift, end, shift.end_ms))
    return parts


def _with(shift: Shift, start: int, end: int) -> Shift:
    return Shift(start, end, shift.org, shift.regions, shift.languages, shift.capabilities)


def shifts(org: str, decl: CoverageDeclared, start_ms: int, end_ms: int) -> list[Shift]:
    """The member's shifts overlapping [start_ms, end_ms), clipped to it, sorted.

    Dated exceptions override the weekly pattern for their span: `off` removes
    cover, otherwise the exception's cover replaces the weekly one.
    """
    zone = zoneinfo.ZoneInfo(decl.tz)
    first = _local(start_ms, zone).date() - _DAY
    last = _local(end_ms, zone).date() + _DAY
    found = _weekly(org, decl.windows, zone, first, last)
    for x in decl.exceptions:
        x_start, x_end = _instant(_parse(x.start), zone), _instant(_parse(x.end), zone)
        found = [part for s in found for part in _subtract(s, x_start, x_end)]
        if not x.off:
            found.append(_exception_shift(org, x, x_start, x_end))
    clipped = [
        _with(s, max(s.start_ms, start_ms), min(s.end_ms, end_ms))
        for s in found
        if s.end_ms > start_ms and s.start_ms < end_ms and s.end_ms > s.start_ms
    ]
    return sorted(clipped)


def _exception_shift(org: str, x: CoverException, start: int, end: int) -> Shift:
    return Shift(
        start, end, org, frozenset(x.regions), frozenset(x.languages), frozenset(x.capabilities)
    )


def on_duty(all_shifts: Iterable[Shift], at_ms: int) -> list[Shift]:
    """Shifts running at this instant."""
    return [s for s in all_shifts if s.start_ms <= at_ms < s.end_ms]


def covers(
    all_shifts: Iterable[Shift], at_ms: int, country: str | None, languages: Iterable[str] = ()
) -> set[str]:
    """Members on duty at `at_ms` for this country and (any of) these languages."""
    wanted = list(languages)
    return {s.org for s in on_duty(all_shifts, at_ms) if s.covers(country, wanted)}


def gaps(
    all_shifts: Iterable[Shift],
    start_ms: int,
    end_ms: int,
    *,
    country: str | None = None,
    language: str | None = None,
) -> list[tuple[int, int]]:
    """Spans of [start_ms, end_ms) with nobody on duty for the country and language."""
    langs = [language] if language is not None else []
    spans = sorted(
        (max(s.start_ms, start_ms), min(s.end_ms, end_ms))
        for s in all_shifts
        if s.covers(country, langs) and s.end_ms > start_ms and s.start_ms < end_ms
    )
    found = []
    cursor = start_ms
    for s, e in spans:
        if s > cursor:
            found.append((cursor, s))
        cursor = max(cursor, e)
    if cursor < end_ms:
        found.append((cursor, end_ms))
    return found


def dst_problems(decl: CoverageDeclared, today: datetime.date, days: int = 400) -> list[str]:
    """Local times in the declaration that do not exist or occur twice, from `today` on.

    Checked over `days` days (weekly windows) and at their dates (exceptions);
    each message names the window or exception, the time and the date.
    """
    zone = zoneinfo.ZoneInfo(decl.tz)
    problems: list[str] = []
    for number, w in enumerate(decl.windows, 1):
        problem = _window_dst(w, zone, today, days)
        if problem:
            problems.append(f"window {number}: {problem} in {decl.tz}")
    for number, x in enumerate(decl.exceptions, 1):
        for value in (x.start, x.end):
            found = _ambiguity(_parse(value), zone)
            if found:
                problems.append(f"exception {number}: {value} {found} in {decl.tz}")
    return problems


def _window_dst(w: Window, zone: zoneinfo.ZoneInfo, today: datetime.date, days: int) -> str:
    overnight = minutes_of(w.end) <= minutes_of(w.start)
    day = today
    for _ in range(days):
        weekday = _WEEKDAYS[day.weekday()]
        yesterday = _WEEKDAYS[(day.weekday() - 1) % 7]
        checks = []
        if weekday in w.days:
            checks.append(w.start)
        if w.end != "24:00" and (yesterday if overnight else weekday) in w.days:
            checks.append(w.end)
        for hhmm in checks:
            problem = _ambiguity(_at(day, hhmm), zone)
            if problem:
                return f"{hhmm} {problem} on {day.isoformat()}"
        day += _DAY
    return ""


def _ambiguity(local: datetime.datetime, zone: zoneinfo.ZoneInfo) -> str | None:
    early = local.replace(tzinfo=zone, fold=0)
    late = local.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return None
    back = datetime.datetime.fromtimestamp(early.timestamp(), zone).replace(tzinfo=None)
    if back != local:
        return "does not exist (clocks go forward)"
    return "occurs twice (clocks go back)"
