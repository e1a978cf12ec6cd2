"""`rrn drill schedule|list|report`: rehearse the response at moments nobody foresees.

Owns the drill commands: the window, the members in scope, the urgency mix, the
routable facts of the exercise alerts, and how a drill's report is printed.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

from rrn.node.cli.common import Parser, get_home, home_arg, json_arg, show, values
from rrn.node.cli.output import fmt_time, table
from rrn.node.cli.support import time_ms
from rrn.node.control.client import ask
from rrn.node.ops.drills import DrillArgs, DrillInfo, DrillRef, DrillReport
from rrn.node.ops.types import NoArgs
from rrn.protocol.drills import MAX_DRILL_ALERTS
from rrn.protocol.errors import ConfigError
from rrn.protocol.vocabulary import IncidentType, Urgency

__all__ = ["add_drill_parsers"]


def add_drill_parsers(top: Any) -> None:
    sub = top.add_parser(
        "drill", help="drills: exercise alerts at unforeseen moments"
    ).add_subparsers(dest="drill_command", required=True, parser_class=Parser)
    p = sub.add_parser(
        "schedule",
        help="propose a drill to the network",
        description="Within the window, this node raises each exercise alert at a moment "
        "derived from a secret only it holds; after the window it closes them and reveals "
        "the secret, so every node can check the moments. Exercise alerts are sealed to the "
        "members in scope, escalate like real alerts, and are counted apart.",
    )
    home_arg(p)
    json_arg(p)
    p.add_argument("--start", metavar="TIME", help="default: now")
    p.add_argument("--end", metavar="TIME", help="the end of the window (or --hours)")
    p.add_argument("--hours", type=float, help="the window's length from --start")
    p.add_argument("--scope", action="append", default=[], metavar="ORG", help="a member (repeat)")
    p.add_argument(
        "--mix", default="immediate=1", metavar="URGENCY=N,…", help="e.g. immediate=2,days=1"
    )
    p.add_argument("--country", required=True, type=str.upper)
    p.add_argument(
        "--type", dest="types", action="append", required=True, choices=values(IncidentType)
    )
    p.add_argument("--lang", dest="languages", action="append", default=[], type=str.lower)
    p.set_defaults(func=cmd_drill_schedule)

    p = sub.add_parser("list", help="drills known here")
    home_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_drill_list)

    p = sub.add_parser("report", help="how a drill was answered, per member and hour")
    home_arg(p)
    json_arg(p)
    p.add_argument("drill")
    p.set_defaults(func=cmd_drill_report)


def _mix(text: str) -> list[Urgency]:
    found: list[Urgency] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*([a-z]+)\s*=\s*([0-9]+)\s*", part)
        if m is None or m[1] not in values(Urgency):
            raise ConfigError(f"--mix {text!r}: give URGENCY=N pairs, e.g. immediate=2,days=1")
        found += [Urgency(m[1])] * int(m[2])
    if not 1 <= len(found) <= MAX_DRILL_ALERTS:
        raise ConfigError(f"--mix: a drill raises 1 to {MAX_DRILL_ALERTS} exercise alerts")
    return found


def cmd_drill_schedule(args: argparse.Namespace) -> int:
    home = get_home(args)
    start = time_ms(args.start, "--start") if args.start else int(time.time() * 1000)
    if (args.end is None) == (args.hours is None):
        raise ConfigError("give the window's end: --end TIME or --hours H")
    end = time_ms(args.end, "--end") if args.end else start + int(args.hours * 3_600_000)
    request = DrillArgs(
        start_ms=start,
        end_ms=end,
        scope=sorted(set(args.scope)),
        urgencies=_mix(args.mix),
        country=args.country,
        incident_types=[IncidentType(t) for t in args.types],
        languages=list(args.languages),
    )
    info = ask(home, "drill.schedule", request, DrillInfo)
    return show(args, info, lambda: "scheduled\n" + _drills([info], home.config.node.tz))


def cmd_drill_list(args: argparse.Namespace) -> int:
    home = get_home(args)
    drills = ask(home, "drill.list", NoArgs(), list[DrillInfo])
    return show(
        args, drills, lambda: _drills(drills, home.config.node.tz) if drills else "no drills"
    )


def _drills(drills: list[DrillInfo], tz: str) -> str:
    rows = [("drill", "by", f"window ({tz})", "scope", "alerts", "raised", "revealed")]
    rows += [
        (
            d.drill[:12],
            d.origin,
            f"{fmt_time(d.start_ms, tz)} – {fmt_time(d.end_ms, tz)}",
            ", ".join(d.scope),
            str(len(d.urgencies)),
            str(d.raised),
            "yes" if d.revealed else "no",
        )
        for d in drills
    ]
    return table(rows)


def cmd_drill_report(args: argparse.Namespace) -> int:
    home = get_home(args)
    ref = args.drill.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{6,64}", ref):
        raise ConfigError(f"drill id {args.drill!r} must be 6 to 64 hex digits")
    report = ask(home, "drill.report", DrillRef(drill=ref), DrillReport)
    return show(args, report, lambda: _report(report, home.config.node.tz))


def _s(seconds: float | None) -> str:
    return (
        "—"
        if seconds is None
        else f"{seconds:.0f} s"
        if seconds < 120
        else f"{seconds / 60:.0f} min"
    )


def _report(r: DrillReport, tz: str) -> str:
    check = {None: "not revealed yet", True: "secret matches", False: "SECRET DOES NOT MATCH"}
    alerts = [("#", "urgency", "raised", "due at", "level", "status", "claimed by", "in")]
    alerts += [
        (
            str(a.index),
            a.urgency,
            fmt_time(a.raised_ms, tz),
            (fmt_time(a.moment_ms, tz) + (" EARLY" if a.early else "")) if a.moment_ms else "—",
            str(a.level),
            a.status,
            a.first_claim_by or "—",
            _s(a.time_to_claim_s),
        )
        for a in r.alerts
    ]
    members = [
        ("member", "asked", "first notice", "claimed", "to claim", "level at claim", "missed")
    ]
    members += [
        (
            m.org,
            str(m.asked),
            _s(m.median_notice_s),
            str(m.claimed),
            _s(m.median_claim_s),
            "—" if m.median_level_at_claim is None else f"{m.median_level_at_claim:g}",
            str(m.missed_steps),
        )
        for m in r.members
    ]
    hours = [("hour (UTC)", "alerts", "claimed in first step", "highest level")]
    hours += [
        (h.label, str(h.alerts), str(h.claimed_in_first_step), str(h.max_level)) for h in r.hours
    ]
    return (
        f"{_drills([r.drill], tz)}\nmoments: {check[r.verified]}\n\n{table(alerts)}\n\n"
        f"{table(members)}\n\n{table(hours)}"
    )
