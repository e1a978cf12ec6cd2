"""What the simulated week (bench/week.py) records, and its results as files.

Owns the records (each escalation, each alert's outcome, the `Result`) and
`write`: report.json (everything, spans in ms since the epoch), table.md
(the results and the gaps per region and language) and week.svg, a day × hour
picture in UTC written by hand (no plotting library): who was at work and who
was down, the gaps forecast and whether they happened, the alerts and how each
hour's alerts were taken. No other I/O.
"""

from __future__ import annotations

import datetime
import json
import math
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from bench.week_world import HOUR_MS, MEMBERS, People


@dataclass
class Escalated:
    """One escalation as published: when, against what it was due, by whom."""

    alert: str
    level: int
    cause: str
    at_ms: int
    due_ms: int
    late_ms: int
    publisher: str
    #: Why it waited past its due time: "" (it did not), "stagger" (the first in line
    #: to publish was down, not yet noticed), "nobody_up" (every member was down).
    waited: str


@dataclass
class Outcome:
    """One alert: where and when it was raised, and how it ended."""

    alert: str
    raised_ms: int
    country: str
    urgency: str
    #: Claimed at the first step, after escalating, from the pool ("first", "escalated",
    #: "pool"); or not claimed: "in_pool", "waiting" (a direct step not yet run out),
    #: "dropped" (its step ran out and nobody moved it).
    how: str
    claimed_ms: int | None
    #: Longest it sat unclaimed at one step past that step's deadline (signed times).
    overdue_ms: int


@dataclass
class Result:
    """What a user asks of the week: was every alert taken, and on time; were gaps foreseen."""

    seed: int
    start: str
    days: float
    members: dict[str, str]
    dst: list[dict[str, str]]
    outages: list[tuple[str, int, int]]
    alerts: list[Outcome]
    claimed: int
    in_pool: int
    waiting: int
    dropped: int
    #: Alerts that sat at a step more than a second past its deadline (claimed or not).
    stalled: int
    started_in_pool: int
    refused: int
    off_duty_routes: int
    #: Alerts raised late because every member's node was down when they came in.
    raised_late: int
    escalations: list[Escalated]
    claim_minutes: dict[str, list[float]]  # urgency -> [median, p90, max]
    gaps: dict[str, dict[str, object]]
    wall_s: float = 0.0

    def late_ms(self, cause: str) -> list[int]:
        return [e.late_ms for e in self.escalations if e.cause == cause]


CELL_W: Final = 26
CELL_H: Final = 20
LEFT: Final = 96
#: How an hour's alerts went, worst first, with their colours.
OUTCOMES: Final = {
    "dropped": "#d7301f",
    "waiting": "#d7301f",
    "in_pool": "#807dba",
    "pool": "#9e9ac8",
    "escalated": "#fdae6b",
    "first": "#74c476",
}


def write(result: Result, out: Path) -> None:
    """Write report.json, table.md and week.svg into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(asdict(result), indent=1) + "\n")
    (out / "table.md").write_text(table(result))
    (out / "week.svg").write_text(picture(result))


def _pct(n: int, total: int) -> str:
    return f"{n} ({100 * n / total:.0f} %)" if total else "0"


def _late(values: list[int]) -> str:
    if not values:
        return "none"
    return f"{len(values)}; late by median {statistics.median(values):.0f} ms, max {max(values)} ms"


def table(r: Result) -> str:
    """The results table and the gaps per region and language, in markdown."""
    n = len(r.alerts)
    urgency = Counter(a.urgency for a in r.alerts)
    outcome = Counter(a.how for a in r.alerts)
    waited = Counter(e.waited for e in r.escalations if e.waited)
    gaps = r.gaps.values()
    rows = [
        ("window", f"{r.start[:16].replace('T', ' ')} UTC, {r.days:g} days; seed {r.seed}"),
        ("members, zones", f"{len(r.members)}, {len(set(r.members.values()))}"),
        (
            "clock changes",
            "; ".join(f"{d['zone']} {d['utc']} UTC ({d['from']} → {d['to']})" for d in r.dst),
        ),
        ("alerts", f"{n} ({', '.join(f'{k} {v}' for k, v in sorted(urgency.items()))})"),
        ("outages", f"{len(r.outages)}, {sum(e - s for _, s, e in r.outages) / HOUR_MS:.1f} h"),
        ("claimed", _pct(r.claimed, n)),
        ("… at the first step", _pct(outcome["first"], n)),
        ("… after escalating", _pct(outcome["escalated"], n)),
        ("… from the fallback pool", _pct(outcome["pool"], n)),
        ("raised in a gap (started in the pool)", _pct(r.started_in_pool, n)),
        ("in the pool at the end", str(r.in_pool)),
        ("dropped", str(r.dropped)),
        ("sat at a step > 1 s past its deadline", str(r.stalled)),
        ("deadline escalations", _late(r.late_ms("deadline"))),
        ("target-down escalations (after noticed)", _late(r.late_ms("target_down"))),
        ("waited for a down publisher / nobody up", f"{waited['stagger']} / {waited['nobody_up']}"),
        ("escalations the rules refused", str(r.refused)),
        ("first targets not at work by their clock", str(r.off_duty_routes)),
        ("raised late: every member down when it came in", str(r.raised_late)),
        ("time to claim, min (median, p90, max)", _claims(r)),
        ("regions and languages with gaps", _gap_line(r)),
        ("forecast = happened", f"{sum(bool(g['equal']) for g in gaps)} of {len(r.gaps)}"),
        (
            "dark key-hours from outages (cover declared, all down)",
            f"{sum(_f(g['outage_h']) for g in gaps):.1f}",
        ),
        ("run time", f"{r.wall_s} s"),
    ]
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    lines += [
        "| region or language | forecast gap h | happened h | same spans | dark from outages h |",
        "|---|---|---|---|---|",
    ]
    for key, g in r.gaps.items():
        lines.append(
            f"| {key} | {_f(g['gauge_h']):.1f} | {_f(g['happened_h']):.1f} | "
            f"{'yes' if g['equal'] else '**no**'} | {_f(g['outage_h']):.1f} |"
        )
    return "\n".join(lines) + "\n"


def _f(x: object) -> float:
    assert isinstance(x, int | float)
    return float(x)


def _claims(r: Result) -> str:
    return "; ".join(f"{u} {q[0]}, {q[1]}, {q[2]}" for u, q in r.claim_minutes.items())


def _gap_line(r: Result) -> str:
    hours = sum(_f(g["gauge_h"]) for g in r.gaps.values())
    with_gaps = sum(_f(g["gauge_h"]) > 0 for g in r.gaps.values())
    return f"{with_gaps} of {len(r.gaps)}; {hours:.0f} key-hours forecast"


def _hours(r: Result) -> tuple[int, int]:
    start = int(datetime.datetime.fromisoformat(r.start).timestamp() * 1000)
    return start, math.ceil(r.days * 24)


def _spans_in(spans: object, a: int, b: int) -> bool:
    assert isinstance(spans, list)
    return any(s < b and e > a for s, e in spans)


def picture(r: Result) -> str:
    """Three day × hour panels (UTC): at work and down, gaps, alerts."""
    start, hours = _hours(r)
    people = People()
    cells = [start + h * HOUR_MS for h in range(hours)]
    at_work = [sum(bool(people.cover(o, t + HOUR_MS // 2)) for o in MEMBERS) for t in cells]
    down = [sum(s < t + HOUR_MS and e > t for _, s, e in r.outages) for t in cells]
    forecast = [
        sum(_spans_in(g["forecast"], t, t + HOUR_MS) for g in r.gaps.values()) for t in cells
    ]
    happened = [
        sum(_spans_in(g["happened"], t, t + HOUR_MS) for g in r.gaps.values()) for t in cells
    ]
    raised: list[list[str]] = [[] for _ in cells]
    for a in r.alerts:
        raised[(a.raised_ms - start) // HOUR_MS].append(a.how)
    changes = {(int(_utc_ms(d["utc"])) - start) // HOUR_MS: d["zone"] for d in r.dst}
    n = len(MEMBERS)
    panels = [
        _panel(
            "Members at work (half past the hour, by their own clocks); orange: a member down",
            lambda h: (_blue(at_work[h] / n), str(at_work[h]), "#fd8d3c" if down[h] else ""),
            r,
            changes,
        ),
        _panel(
            "Regions and languages with no cover: forecast at the start (red frame: differs)",
            lambda h: (
                _red(forecast[h] / len(r.gaps)),
                str(forecast[h] or ""),
                "#d7301f" if forecast[h] != happened[h] else "",
            ),
            r,
            changes,
        ),
        _panel(
            "Alerts raised; colour: the worst of the hour (green first step, orange "
            "escalated, purple pool)",
            lambda h: (_worst(raised[h]), str(len(raised[h]) or ""), ""),
            r,
            changes,
        ),
    ]
    height = sum(p[1] for p in panels) + 10
    width = LEFT + 24 * CELL_W + 220
    body, y = [], 0
    for svg, h in panels:
        body.append(f'<g transform="translate(0,{y})">{svg}</g>')
        y += h
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="10">\n<rect width="100%" height="100%" '
        f'fill="white"/>\n' + "\n".join(body) + "\n</svg>\n"
    )


def _utc_ms(text: str) -> float:
    t = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=datetime.UTC)
    return t.timestamp() * 1000


Cell = tuple[str, str, str]  # fill, text, frame colour ("" for none)


def _panel(
    title: str, cell: Callable[[int], Cell], r: Result, changes: dict[int, str]
) -> tuple[str, int]:
    start, hours = _hours(r)
    out = [f'<text x="8" y="16" font-size="12" font-weight="bold">{title}</text>']
    out += [
        f'<text x="{LEFT + h * CELL_W + CELL_W / 2}" y="32" text-anchor="middle">{h:02d}</text>'
        for h in range(24)
    ]
    for h in range(hours):
        day, hour = divmod(h, 24)
        x, y = LEFT + hour * CELL_W, 38 + day * CELL_H
        if hour == 0:
            date = datetime.datetime.fromtimestamp((start + h * HOUR_MS) / 1000, datetime.UTC)
            out.append(f'<text x="8" y="{y + 14}">{date:%a %d %b}</text>')
        fill, text, frame = cell(h)
        stroke = f'stroke="{frame}" stroke-width="2"' if frame else 'stroke="#ddd"'
        out.append(
            f'<rect x="{x}" y="{y}" width="{CELL_W}" height="{CELL_H}" fill="{fill}" {stroke}/>'
        )
        out.append(f'<text x="{x + CELL_W / 2}" y="{y + 14}" text-anchor="middle">{text}</text>')
        if h in changes:
            out.append(f'<polygon points="{x},{y} {x + 8},{y} {x},{y + 8}" fill="black"/>')
            label = f"◤ {changes[h]} {hour:02d}:00 UTC"
            out.append(f'<text x="{LEFT + 24 * CELL_W + 6}" y="{y + 14}">{label}</text>')
    return "\n".join(out), 38 + math.ceil(hours / 24) * CELL_H + 14


def _blue(x: float) -> str:
    level = int(245 - 150 * min(1.0, x))
    return f"rgb({level},{level + 5},255)"


def _red(x: float) -> str:
    level = int(255 - 120 * min(1.0, x))
    return f"rgb(255,{level},{level})"


def _worst(hows: list[str]) -> str:
    for how, colour in OUTCOMES.items():
        if how in hows:
            return colour
    return "white"
