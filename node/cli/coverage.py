"""`rrn coverage declare|show`: on-duty declarations and the network's coverage grid."""

from __future__ import annotations

import argparse
import datetime
import zoneinfo
from pathlib import Path
from typing import Any

from rrn.node.alerting.coverage import CoverageGrid, GridRow, read_declaration
from rrn.node.cli.common import get_home, home_arg, json_arg, show
from rrn.node.cli.documents import CoverageDeclaredInfo
from rrn.node.control.client import ask
from rrn.node.ops.types import CoverageArgs
from rrn.protocol.errors import ConfigError

__all__ = ["add_coverage_parsers"]


def add_coverage_parsers(sub: Any) -> None:
    """Register the coverage commands."""
    coverage = sub.add_parser("coverage", help="on-duty declarations and coverage gaps")
    csub = coverage.add_subparsers(dest="coverage_command", required=True)
    p = csub.add_parser("declare", help="sign and publish this member's on-duty windows")
    home_arg(p)
    json_arg(p)
    p.add_argument("--file", type=Path, required=True, help="coverage.toml (see OPERATIONS.md)")
    p.set_defaults(func=cmd_declare)
    p = csub.add_parser("show", help="who is on duty over the coming week, and the gaps")
    home_arg(p)
    json_arg(p)
    p.add_argument("--tz", help="show hours in this IANA zone (default: the node's)")
    p.set_defaults(func=cmd_show)


def cmd_declare(args: argparse.Namespace) -> int:
    home = get_home(args)
    today = datetime.datetime.now(zoneinfo.ZoneInfo(home.config.node.tz)).date()
    decl = read_declaration(args.file, today)
    seq = ask(home, "coverage.declare", decl, int)
    done = CoverageDeclaredInfo(
        seq=seq, tz=decl.tz, windows=len(decl.windows), exceptions=len(decl.exceptions)
    )
    return show(
        args,
        done,
        lambda: (
            f"declared {len(decl.windows)} weekly window(s) and {len(decl.exceptions)} "
            f"exception(s) in {decl.tz} (event seq {seq}); it replaces any earlier declaration "
            f"of {home.config.node.org}"
        ),
    )


def cmd_show(args: argparse.Namespace) -> int:
    home = get_home(args)
    tz = args.tz or home.config.node.tz
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"time zone '{tz}' is not an IANA zone name") from exc
    result = ask(home, "coverage.show", CoverageArgs(tz=tz), CoverageGrid)
    return show(args, result, lambda: render(result))


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _cell(n: int) -> str:
    return "." if n == 0 else str(n) if n < 10 else "+"


def render(g: CoverageGrid) -> str:
    """The week as text: one block per region and language, a line per day, a cell per hour."""
    if not g.members:
        return "no member has declared coverage yet (rrn coverage declare --file coverage.toml)"
    zone = zoneinfo.ZoneInfo(g.tz)
    start = datetime.datetime.fromtimestamp(g.start_ms / 1000, zone)
    lines = [
        f"coverage for the week from {start:%a %Y-%m-%d %H:00} ({g.tz}); "
        "cells are hours, the digit is members on duty, '.' is a gap",
        "declared by: " + ", ".join(f"{o} ({tz})" for o, tz in g.members.items()),
    ]
    for row in g.rows:
        lines += ["", _title(row)]
        lines += _block(row, start)
    return "\n".join(lines)


def _title(row: GridRow) -> str:
    what = "anywhere ('*')" if row.key == "*" else row.key
    flag = "  <- GAPS" if row.gap_hours else "  <- thin" if row.thin_hours else ""
    return (
        f"{row.kind} {what}: {row.gap_hours} h uncovered, {row.thin_hours} h with one member{flag}"
    )


def _block(row: GridRow, start: datetime.datetime) -> list[str]:
    midnight = start.replace(hour=0)
    offset = start.hour  # the first day starts mid-day: pad with blanks
    cells = [" "] * offset + [_cell(n) for n in row.hours]
    out = ["          " + "".join(f"{h:<3}" if h % 3 == 0 else "" for h in range(24)).rstrip()]
    for day in range(8):
        chunk = cells[day * 24 : (day + 1) * 24]
        if all(c == " " for c in chunk):
            continue
        date = midnight + datetime.timedelta(days=day)
        out.append(f"{_DAYS[date.weekday()]} {date:%d}    " + "".join(chunk))
    return out
