"""A response report as one self-contained HTML page: tables of the figures, charts
drawn by matplotlib as inline SVG, the figures as JSON. No script runs, nothing is
fetched: the file can be mailed to a funder or opened offline years later.

Owns the page's layout and the charts. matplotlib is imported here only (the
`report` extra), never by the daemon.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import msgspec

from rrn.node.report.figures import Report, Tally, Timing

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

__all__ = ["render"]

_INK: Final = "#0b2a4a"
_ACCENT: Final = "#c0392b"
_MUTED: Final = "#8aa1b8"
_CSS: Final = """
body{font:15px/1.45 system-ui,sans-serif;color:#1b1b1b;max-width:1100px;margin:2rem auto;
padding:0 1rem}h1{font-size:1.6rem}
h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:.6rem 0}
th,td{border:1px solid #ccd;padding:.25rem .6rem;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}figure{margin:.6rem 0}
figure svg{max-width:100%;height:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem}
.note{color:#555;font-size:.9rem}
"""


def render(r: Report) -> str:
    """The report page."""
    period = f"{_day(r.from_ms)} – {_day(r.to_ms)}"
    parts = [
        f"<h1>Response report, {period}</h1>",
        f'<p class="note">As seen by {_e(r.member)} in network {_e(r.network[:16])}, made '
        f"{_when(r.made_ms)}. Alerts raised in the period; drills (exercise alerts) are "
        "counted apart and in no other figure. Only routable facts: no defender is named.</p>",
        f"<p><strong>{r.alerts}</strong> alerts raised, <strong>{r.exercises}</strong> "
        "exercise alerts.</p>",
        "<h2>Alerts</h2>",
        '<div class="grid">',
        _tally_block("By country", r.by_country, "Country"),
        _tally_block("By incident type", r.by_type, "Incident type"),
        _tally_block("By severity", r.by_severity, "Severity"),
        _tally_block("By urgency", r.by_urgency, "Urgency"),
        "</div>",
        "<h2>Time to claim</h2>",
        _timing_block("By urgency, against the policy's first step", r.claim_by_urgency, "Urgency"),
        _timing_block("By the member that claimed first", r.claim_by_member, "Member"),
        "<h2>Escalation depth</h2>",
        _tally_block("Level reached", r.escalation_depth, "Level", sort=False),
        "<h2>Coverage</h2>",
        _coverage(r),
        "<h2>Supporters: asks, pledges, actions</h2>",
        _asks(r),
        "<h2>Drills</h2>",
        _timing_block("Exercise alerts", [r.exercise_claims], "", chart=False),
        f'<script type="application/json" id="figures">{_json(r)}</script>',
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>rrn response report {period}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>\n"
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _json(r: Report) -> str:
    return msgspec.json.encode(r).decode().replace("</", "<\\/")


def _table(head: Sequence[str], rows: Sequence[Sequence[object]], caption: str) -> str:
    cells = "".join(f'<th scope="col">{_e(h)}</th>' for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if isinstance(c, int | float) else f"<td>{_e(str(c))}</td>"
            for c in row
        )
        + "</tr>"
        for row in rows
    )
    return (
        f"<table><caption>{_e(caption)}</caption><thead><tr>{cells}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _tally_block(title: str, tally: list[Tally], what: str, *, sort: bool = True) -> str:
    if not tally:
        return f"<section><h3>{_e(title)}</h3><p>None.</p></section>"
    shown = tally[:15]
    chart = _bars(title, [t.key for t in shown], [t.count for t in shown], horizontal=sort)
    table = _table([what, "Alerts"], [(t.key, t.count) for t in tally], title)
    return f"<section><h3>{_e(title)}</h3>{chart}{table}</section>"


def _timing_block(title: str, rows: list[Timing], what: str, *, chart: bool = True) -> str:
    head = [what or "Group", "Alerts", "Claimed", "Median", "90th percentile"]
    with_deadline = any(t.deadline_s is not None for t in rows)
    if with_deadline:
        head += ["First step", "Claimed within it"]
    lines = []
    for t in rows:
        line: list[object] = [t.key, t.alerts, t.claimed, _dur(t.median_s), _dur(t.p90_s)]
        if with_deadline:
            line += [_dur(t.deadline_s), "—" if t.within is None else t.within]
        lines.append(line)
    picture = _timing_chart(title, rows) if chart and any(t.claimed for t in rows) else ""
    return f"<section><h3>{_e(title)}</h3>{picture}{_table(head, lines, title)}</section>"


def _coverage(r: Report) -> str:
    c = r.coverage
    rows = [
        ("Hours in the period", c.hours),
        ("Hours with no responder declared on duty", c.gap_hours),
        ("Alerts raised while someone was on duty", c.raised_covered),
        ("… their median time to claim", _dur(c.median_claim_covered_s)),
        ("Alerts raised in a gap", c.raised_in_gap),
        ("… their median time to claim", _dur(c.median_claim_in_gap_s)),
    ]
    declared = [(t.key, t.count) for t in c.declared_hours]
    chart = _bars("Hours on duty as declared", [k for k, _ in declared], [n for _, n in declared])
    return (
        _table(["", ""], rows, "Coverage achieved against declared")
        + (chart if declared else "")
        + _table(["Member", "Hours declared on duty"], declared, "Declared cover")
        + '<p class="note">Declared cover: each responder\'s declaration in force at the '
        "end of the period.</p>"
    )


def _asks(r: Report) -> str:
    if not r.asks:
        return "<p>No alert asked supporters for anything.</p>"
    rows = [
        (a.action, a.to, a.asked, a.pledged, a.acted, _dur(a.median_pledge_s), _dur(a.median_act_s))
        for a in r.asks
    ]
    head = [
        "Action",
        "Asked of",
        "Alerts asking",
        "Pledged",
        "Done",
        "Median to pledge",
        "Median to act",
    ]
    chart = _grouped(
        "Asks, pledges and actions",
        [f"{a.action} ({a.to})" for a in r.asks],
        {"asked": [a.asked for a in r.asks], "pledged": [a.pledged for a in r.asks],
         "done": [a.acted for a in r.asks]},
    )  # fmt: skip
    return chart + _table(head, rows, "Asks to supporters")


# -- charts -------------------------------------------------------------------------


def _svg(fig: Figure, title: str) -> str:
    """A figure as inline SVG, its title given to screen readers."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<svg ", f'<svg role="img" aria-label="{_e(title)}" ', svg, count=1)
    return f"<figure>{svg}</figure>"


def _figure(height: float) -> Figure:
    import matplotlib  # noqa: PLC0415

    matplotlib.rcParams["svg.hashsalt"] = "rrn-report"  # the same page for the same figures
    from matplotlib.figure import Figure  # noqa: PLC0415

    return Figure(figsize=(5.2, height), dpi=72, layout="constrained")


def _bars(title: str, keys: list[str], values: list[int], *, horizontal: bool = True) -> str:
    fig = _figure(max(1.6, 0.28 * len(keys) + 0.8) if horizontal else 2.6)
    ax = fig.add_subplot()
    if horizontal:
        ax.barh(keys[::-1], values[::-1], color=_INK)
    else:
        ax.bar(keys, values, color=_INK)
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    (ax.xaxis if horizontal else ax.yaxis).set_major_locator(_whole())
    return _svg(fig, title)


def _whole() -> MaxNLocator:
    """Ticks on whole numbers: these are counts."""
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    return MaxNLocator(integer=True)


def _timing_chart(title: str, rows: list[Timing]) -> str:
    keys = [t.key for t in rows]
    fig = _figure(max(1.8, 0.4 * len(keys) + 0.9))
    ax = fig.add_subplot()
    y = range(len(keys))
    ax.barh(
        [i + 0.2 for i in y],
        [(t.p90_s or 0) / 60 for t in rows],
        0.4,
        color=_MUTED,
        label="90th percentile",
    )
    ax.barh(
        [i - 0.2 for i in y],
        [(t.median_s or 0) / 60 for t in rows],
        0.4,
        color=_INK,
        label="median",
    )
    for i, t in enumerate(rows):
        if t.deadline_s is not None:
            ax.plot([t.deadline_s / 60] * 2, [i - 0.45, i + 0.45], color=_ACCENT, linewidth=2)
    ax.set_yticks(list(y), keys)
    ax.set_xlabel("minutes to the first claim (red: the first step)")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return _svg(fig, title)


def _grouped(title: str, keys: list[str], series: dict[str, list[int]]) -> str:
    fig = _figure(max(2.0, 0.5 * len(keys) + 1.0))
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    colours = (_MUTED, _INK, _ACCENT)
    for n, (name, values) in enumerate(series.items()):
        ax.barh(
            [i + n * width for i in range(len(keys))], values, width, label=name, color=colours[n]
        )
    ax.set_yticks([i + width for i in range(len(keys))], keys)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(_whole())
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return _svg(fig, title)
