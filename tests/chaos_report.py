"""The chaos soak's invariant checker and its plot (tests/chaos.py).

After every fault is healed, `check` proves, from the nodes' own stores and CLI:
every node holds the same events and shows every alert alike; every alert whose
raise was acknowledged is everywhere (lost = 0); no member's chain forked; no node
signed two escalations of one alert to the same level; every escalation came at
most BOUND_S after its deadline (signers with a skewed clock aside: their early
steps are theirs to explain); no unclaimed alert is left past its deadline. It
fills the report's numbers and lists each broken invariant in `problems`.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from tests.chaos import Soak, SoakReport

__all__ = ["check", "write_plot"]


def check(soak: Soak, *, settled: bool) -> None:
    """Before the alerts are claimed: what is lost, forked, late or stuck. Once they
    are (`settled`, nothing moves): every node shows every alert alike."""
    from tests.chaos import BOUND_S

    net, r = soak.net, soak.report
    lists: dict[int, dict[str, dict[str, Any]]] = {
        k: {a["id"]: a for a in net.cli_json(k, "alert", "list", "--all")} for k in net.indexes
    }
    if settled:
        _compare_views(soak, lists)
        return
    for k in net.indexes:
        frozen = net.cli_json(k, "status")["frozen"]
        r.forks += len(frozen)
        if frozen:
            r.problems.append(f"{net.org(k)} froze chains {frozen}")
    for alert in soak.acked:
        missing = [net.org(k) for k in net.indexes if alert not in lists[k]]
        r.lost += bool(missing)
        if missing:
            r.problems.append(f"alert {alert[:12]} acknowledged, missing at {missing}")
    _escalations(soak, BOUND_S)
    now_ms = int(time.time() * 1000)
    for a in lists[net.indexes[0]].values():
        deadline = a.get("deadline_ms")
        if a["status"] in ("open", "escalated") and deadline and now_ms > deadline + BOUND_S * 1000:
            r.stuck += 1
            r.problems.append(
                f"alert {a['id'][:12]} unclaimed {now_ms - deadline} ms past its step"
            )
    _deliveries(soak)


def _compare_views(soak: Soak, lists: dict[int, dict[str, dict[str, Any]]]) -> None:
    def shown(a: dict[str, Any]) -> tuple[Any, ...]:
        return (a["status"], a["level"], tuple(a["claimants"]), a["ended_by"])

    first, *rest = soak.net.indexes
    for alert, a in lists[first].items():
        for k in rest:
            b = lists[k].get(alert)
            if b is None or shown(a) != shown(b):
                soak.report.views_differ += 1
                soak.report.problems.append(
                    f"alert {alert[:12]}: {shown(a)} at node {first}, "
                    f"{None if b is None else shown(b)} at node {k}"
                )


def _escalations(soak: Soak, bound_s: float) -> None:
    from tests.chaos import STEP_S

    r = soak.report
    found = soak.escalations(soak.net.indexes[0])
    raises = {a: wall for a, (_, wall, _) in soak.raises(soak.net.indexes[0]).items()}
    r.escalations = len(found)
    twice = Counter((alert, level, signer) for alert, level, _, signer in found)
    for (alert, level, signer), n in twice.items():
        if n > 1:
            r.same_signer_same_level += 1
            r.problems.append(f"{signer} escalated {alert[:12]} to level {level} {n} times")
    honest: dict[tuple[str, int], int] = {}
    for alert, level, wall, signer in found:
        if signer not in soak.skewed:
            key = (alert, level)
            honest[key] = min(wall, honest.get(key, wall))
    worst = 0.0
    for (alert, level), wall in honest.items():
        before = raises.get(alert) if level == 1 else honest.get((alert, level - 1))
        if before is None:
            continue  # the step before was signed by a skewed clock (or deleted)
        late = (wall - before - STEP_S * 1000) / 1000
        worst = max(worst, late)
        if late > bound_s:
            r.problems.append(f"{alert[:12]} reached level {level} {late:.1f} s after its deadline")
    r.worst_escalation_delay_s = round(worst, 2)


def _deliveries(soak: Soak) -> None:
    r = soak.report
    raises = soak.raises(soak.net.indexes[0])
    start = min((wall for _, wall, _ in raises.values()), default=0)
    delays: list[float] = []
    for origin, wall, got in raises.values():
        if origin in soak.skewed:
            continue  # its wall_ms is off by minutes
        for org, received in got.items():
            if org != origin and org not in soak.skewed:
                delay = (received - wall) / 1000
                delays.append(delay)
                r.deliveries.append(((wall - start) / 1000, delay, org))
    if delays:
        delays.sort()
        r.worst_delivery_s = round(delays[-1], 3)
        r.p50_delivery_s = round(statistics.median(delays), 3)
        r.p99_delivery_s = round(delays[min(len(delays) - 1, int(0.99 * len(delays)))], 3)


def write_plot(report: SoakReport, path: Path) -> None:
    """Delivery latency of every raise at every other node over the run, faults marked
    (an SVG written by hand: no plotting dependency)."""
    width, height, pad = 900, 360, 50
    span = max([t for t, _, _ in report.deliveries] + [report.duration_s, 1.0])
    top = max([d for _, d, _ in report.deliveries] + [1.0])
    colours = ["#1b6ca8", "#c0392b", "#27ae60", "#8e44ad", "#d35400"]
    orgs = sorted({org for _, _, org in report.deliveries})

    def x(t: float) -> float:
        return pad + (width - 2 * pad) * t / span

    def y(d: float) -> float:
        return height - pad - (height - 2 * pad) * max(d, 0.0) / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="{pad}" y="20">Delivery latency of each alert at each other node '
        f"(seed {report.seed}, {len(report.faults)} faults marked)</text>",
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="black"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
        f'<text x="{pad}" y="{height - 15}">0 s</text>',
        f'<text x="{width - pad - 40}" y="{height - 15}">{span:.0f} s</text>',
        f'<text x="5" y="{pad + 4}">{top:.1f} s</text>',
    ]
    for fault in report.faults:
        fx = x(float(fault["at_s"]))
        parts.append(
            f'<line x1="{fx:.1f}" y1="{pad}" x2="{fx:.1f}" y2="{height - pad}" '
            f'stroke="#bbb" stroke-dasharray="4"><title>{fault["kind"]}</title></line>'
        )
    for t, d, org in report.deliveries:
        colour = colours[orgs.index(org) % len(colours)]
        parts.append(f'<circle cx="{x(t):.1f}" cy="{y(d):.1f}" r="2.5" fill="{colour}"/>')
    for i, org in enumerate(orgs):
        parts.append(
            f'<text x="{width - pad - 140}" y="{pad + 15 * i}" '
            f'fill="{colours[i % len(colours)]}">{org}</text>'
        )
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")
