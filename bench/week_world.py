"""The world of the simulated week (bench/week.py): who declares what, what happens.

Owns the members' coverage declarations (built with the protocol's own types and
checked as `rrn coverage declare` checks them), the seeded alert load and
outages, the clock changes in the window, and the people who work by their own
wall clock: each declaration read forwards, UTC to local time minute by minute,
independently of federation/coverage.py (which reads it backwards, local time to
UTC). `compare_gaps` sets the gaps those people leave against the forecast the
node's forecaster computes from the same declarations at the start of the week.
"""

from __future__ import annotations

import datetime
import random
import zoneinfo
from dataclasses import dataclass
from typing import Final

import msgspec

from rrn.federation.coverage import dst_problems, gaps
from rrn.node.alerting.coverage import all_shifts, gap_seconds
from rrn.protocol.coverage import (
    Capability,
    CoverageDeclared,
    CoverException,
    Weekday,
    Window,
    minutes_of,
)
from rrn.protocol.kinds import Kind, decode_payload
from rrn.protocol.vocabulary import ActionType, Urgency

MIN_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
#: Saturday 28 March 2026: Berlin's clocks go forward the next night, Sydney's and
#: Santiago's go back on Sunday 5 April.
START: Final = datetime.datetime(2026, 3, 28, tzinfo=datetime.UTC)


def _w(days: str, hours: str, regions: str, languages: str = "", caps: str = "") -> Window:
    week = list(Weekday)
    if "-" in days:
        first, last = (week.index(Weekday(d)) for d in days.split("-"))
        picked = week[first : last + 1]
    else:
        picked = [Weekday(d) for d in days.split(",")]
    start, end = hours.split("-")
    return Window(
        days=picked,
        start=start,
        end=end,
        regions=regions.split(),
        languages=languages.split(),
        capabilities=[Capability(c) for c in caps.split()],
    )


def _off(first: str, days: int = 1) -> CoverException:
    """Public holidays: no cover from local midnight for `days` days."""
    end = datetime.date.fromisoformat(first) + datetime.timedelta(days=days)
    return CoverException(start=f"{first}T00:00", end=f"{end}T00:00", off=True)


#: Each member's declaration, as `rrn coverage declare` would sign it. Easter 2026 is
#: 5 April: Good Friday (and Holy Thursday in Latin America) are days off.
MEMBERS: Final = {
    "lima-hr": CoverageDeclared(
        tz="America/Lima",
        windows=[
            _w("mon-fri", "08:00-18:00", "PE CO EC BO", "es en qu", "legal verification"),
            _w("sat", "09:00-13:00", "PE", "es"),
            _w("mon-sun", "18:00-23:00", "PE CO EC", "es"),  # on call in the evening
        ],
        exceptions=[_off("2026-04-02", 2)],
    ),
    "santiago-dh": CoverageDeclared(
        tz="America/Santiago",
        windows=[
            _w("mon-fri", "09:00-19:00", "CL AR PE BO", "es", "legal advocacy"),
            _w("fri,sat", "20:00-02:00", "CL AR", "es"),  # crosses the night clocks go back
            _w("sun", "10:00-16:00", "CL", "es"),
        ],
        exceptions=[_off("2026-04-03")],
    ),
    "mexico-cd": CoverageDeclared(
        tz="America/Mexico_City",
        windows=[
            _w("mon-fri", "08:00-20:00", "MX GT HN SV NI", "es en", "advocacy relocation"),
            _w("sat,sun", "10:00-18:00", "MX GT HN", "es"),
        ],
        exceptions=[_off("2026-04-02", 2)],
    ),
    "berlin-fd": CoverageDeclared(
        tz="Europe/Berlin",
        windows=[
            _w("mon-fri", "08:00-20:00", "*", "en de fr es ru", "relocation emergency_funding"),
            _w("sat,sun", "10:00-16:00", "*", "en de"),
            # The night desk (morning further east); crosses the night clocks go forward.
            _w("sat,sun,mon,tue,wed,thu", "22:00-06:00", "RU BY UA GE KZ", "ru en"),
        ],
        # Good Friday: only a day desk, for every region.
        exceptions=[
            CoverException(start="2026-04-03T00:00", end="2026-04-03T10:00", off=True),
            CoverException(
                start="2026-04-03T10:00", end="2026-04-03T16:00", regions=["*"], languages=["en"]
            ),
            CoverException(start="2026-04-03T16:00", end="2026-04-04T00:00", off=True),
        ],
    ),
    "nairobi-dl": CoverageDeclared(
        tz="Africa/Nairobi",
        windows=[
            _w("mon-sat", "07:00-19:00", "KE UG TZ ET SD SS RW CD SO", "en sw fr ar", "medical"),
            _w("sun", "09:00-15:00", "KE UG TZ", "en sw"),
        ],
        exceptions=[_off("2026-04-03")],
    ),
    "jakarta-pb": CoverageDeclared(
        tz="Asia/Jakarta",
        windows=[
            _w("mon-fri", "08:00-17:00", "ID MY PH MM TH KH", "id en ms", "digital_security"),
            _w("sat", "09:00-12:00", "ID", "id"),
        ],
        exceptions=[_off("2026-04-03")],
    ),
    "sydney-hr": CoverageDeclared(
        tz="Australia/Sydney",
        windows=[
            _w("mon-fri", "09:00-17:00", "AU PG FJ ID PH MM KH", "en", "advocacy legal"),
            _w("mon-sun", "18:00-23:00", "AU PG FJ PH MM", "en"),
        ],
        exceptions=[_off("2026-04-03")],
    ),
}

#: Where alerts come from: country, weight, the defender's languages.
COUNTRIES: Final = (
    ("CO", 8, "es"), ("MX", 8, "es"), ("PE", 5, "es qu"), ("GT", 4, "es"), ("HN", 3, "es"),
    ("BR", 4, "pt"), ("CL", 2, "es"), ("AR", 2, "es"), ("BO", 2, "es"), ("KE", 4, "sw en"),
    ("UG", 3, "en"), ("ET", 3, "am"), ("SD", 3, "ar"), ("CD", 3, "fr"), ("ZW", 2, "en"),
    ("RU", 4, "ru"), ("BY", 2, "ru"), ("TR", 3, "tr"), ("IR", 3, "fa"), ("EG", 3, "ar"),
    ("ID", 4, "id"), ("PH", 4, "en"), ("MM", 3, "my"), ("KH", 2, "km"), ("TH", 2, "th"),
    ("IN", 3, "hi en"), ("PG", 1, "en"),
)  # fmt: skip
URGENCIES: Final = ((Urgency.IMMEDIATE, 50), (Urgency.DAYS, 35), (Urgency.WEEKS, 15))
ASKS: Final = (
    ActionType.LEGAL_AID,
    ActionType.RELOCATION,
    ActionType.URGENT_APPEAL,
    ActionType.DIGITAL_SECURITY,
    ActionType.MEDICAL,
)


def check_members() -> None:
    """Refuse declarations `rrn coverage declare` would refuse (schema, rules, DST)."""
    for org, decl in MEMBERS.items():
        decode_payload(str(Kind.COVERAGE_DECLARED), msgspec.msgpack.encode(decl))
        problems = dst_problems(decl, START.date() - datetime.timedelta(days=7), days=30)
        if problems:
            raise ValueError(f"{org}: {problems[0]}")


@dataclass(frozen=True)
class Scenario:
    """What to simulate: the window, the load and the outages, from one seed."""

    seed: int = 1
    start: datetime.datetime = START
    days: float = 9.0
    alerts_per_h: float = 1.2
    outages_per_member_day: float = 0.15
    #: After the window, how long the clock runs on for the last alerts to be claimed.
    drain_h: float = 72.0

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(self.days * 24 * HOUR_MS)


@dataclass(frozen=True)
class Spec:
    """One alert to raise: when, where, in which languages, how urgent, asking what."""

    at_ms: int
    country: str
    languages: tuple[str, ...]
    urgency: Urgency
    ask: ActionType | None


def arrivals(sc: Scenario, rng: random.Random) -> list[Spec]:
    """A Poisson stream of alerts over the window."""
    found: list[Spec] = []
    t = float(sc.start_ms)
    while True:
        t += rng.expovariate(sc.alerts_per_h / HOUR_MS)
        if t >= sc.end_ms:
            return found
        ((country, _, langs),) = rng.choices(COUNTRIES, weights=[c[1] for c in COUNTRIES])
        ((urgency, _),) = rng.choices(URGENCIES, weights=[u[1] for u in URGENCIES])
        ask = rng.choice(ASKS) if rng.random() < 0.4 else None
        found.append(Spec(int(t), country, tuple(langs.split()), urgency, ask))


def outages(sc: Scenario, rng: random.Random) -> list[tuple[str, int, int]]:
    """Members down for half an hour to six hours, on whole minutes, never overlapping."""
    found = []
    for org in MEMBERS:
        t = float(sc.start_ms)
        while True:
            t += rng.expovariate(sc.outages_per_member_day / (24 * HOUR_MS))
            start = int(t) // MIN_MS * MIN_MS
            if start >= sc.end_ms:
                break
            end = start + rng.randint(30, 360) * MIN_MS
            found.append((org, start, end))
            t = end + MIN_MS
    return sorted(found, key=lambda o: o[1])


class People:
    """Who is at work, read forwards from the declarations: UTC to each member's wall clock."""

    def __init__(self) -> None:
        self.zones = {org: zoneinfo.ZoneInfo(d.tz) for org, d in MEMBERS.items()}

    def cover(self, org: str, ms: int) -> list[tuple[list[str], list[str]]]:
        """(regions, languages) of what `org` is doing at `ms` by its local clock."""
        decl, local = MEMBERS[org], datetime.datetime.fromtimestamp(ms / 1000, self.zones[org])
        stamp = local.strftime("%Y-%m-%dT%H:%M")
        for x in decl.exceptions:
            if x.start <= stamp < x.end:
                return [] if x.off else [(x.regions, x.languages)]
        week = list(Weekday)
        today, yesterday = week[local.weekday()], week[local.weekday() - 1]
        minute = local.hour * 60 + local.minute
        found = []
        for w in decl.windows:
            start, end = minutes_of(w.start), minutes_of(w.end)
            if end > start:
                on = today in w.days and start <= minute < end
            else:
                on = (today in w.days and minute >= start) or (yesterday in w.days and minute < end)
            if on:
                found.append((w.regions, w.languages))
        return found

    def covers(self, org: str, ms: int, country: str) -> bool:
        return any(country in r or "*" in r for r, _ in self.cover(org, ms))


def _match(kind: str, key: str, regions: list[str], languages: list[str]) -> bool:
    if kind == "region":
        return key in regions or "*" in regions
    return not languages or key in languages


def _spans(flags: list[bool], start_ms: int) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    for i, gap in enumerate(flags):
        at = start_ms + i * MIN_MS
        if gap and found and found[-1][1] == at:
            found[-1] = (found[-1][0], at + MIN_MS)
        elif gap:
            found.append((at, at + MIN_MS))
    return found


def compare_gaps(
    sc: Scenario, people: People, down: list[tuple[str, int, int]]
) -> dict[str, dict[str, object]]:
    """Per region and language: the gaps forecast at the start, and those that happened."""
    start, end = sc.start_ms, sc.end_ms
    found = all_shifts(dict(MEMBERS), start, end)  # what the node's forecaster computes
    gauge = gap_seconds(dict(MEMBERS), start, end - start)
    minutes = range(start, end, MIN_MS)
    at_work = [[(o, *c) for o in MEMBERS for c in people.cover(o, m)] for m in minutes]
    out_of = [{o for o, s, e in down if s <= m < e} for m in minutes]
    report: dict[str, dict[str, object]] = {}
    for kind, key in gauge:
        country = key if kind == "region" else None
        language = key if kind == "language" else None
        forecast = gaps(found, start, end, country=country, language=language)
        gap = [not any(_match(kind, key, r, lg) for _, r, lg in now) for now in at_work]
        dark = [
            not g and all(o in off for o, r, lg in now if _match(kind, key, r, lg))
            for g, now, off in zip(gap, at_work, out_of, strict=True)
        ]
        happened = _spans(gap, start)
        report[f"{kind}:{key}"] = {
            "forecast": forecast,
            "happened": happened,
            "gauge_h": gauge[kind, key] / 3600,
            "happened_h": sum(e - s for s, e in happened) / HOUR_MS,
            "outage_h": sum(dark) / 60,
            "equal": forecast == happened
            and round(gauge[kind, key] * 1000) == sum(e - s for s, e in happened),
        }
    return report


def dst_changes(sc: Scenario) -> list[dict[str, str]]:
    """The clock changes of the members' zones inside the window: when (UTC), offsets."""
    found = []
    for zone in sorted({d.tz for d in MEMBERS.values()}):
        tz = zoneinfo.ZoneInfo(zone)
        for ms in range(sc.start_ms, sc.end_ms, HOUR_MS):
            t = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
            before, after = (t - datetime.timedelta(hours=1)).astimezone(tz), t.astimezone(tz)
            if before.utcoffset() != after.utcoffset():
                utc = f"{t:%Y-%m-%d %H:%M}"
                found.append(
                    {"zone": zone, "utc": utc, "from": f"{before:%z}", "to": f"{after:%z}"}
                )
    return found
