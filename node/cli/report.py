"""`rrn report`: a response report over a period, as one self-contained HTML file.

Owns the command: the period (`--from`, `--to`: ISO dates or times, UTC unless
given), where the page goes, and what is said when the report extra (matplotlib)
is not installed. Reads the store read-only: the daemon may run or not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

from rrn.node.cli.common import get_home, home_arg, json_arg, show
from rrn.node.cli.support import time_ms
from rrn.protocol.errors import ConfigError

__all__ = ["add_report_parser"]

_DAY_MS = 86_400_000


def add_report_parser(top: Any) -> None:
    p = top.add_parser(
        "report",
        help="a response report (HTML with charts): alerts, time to claim, coverage, asks",
        description="Counts what the signed events say about the alerts raised in the "
        "period: by country, type, severity and urgency; time to claim per urgency (against "
        "the policy's first step) and per member; escalation depth; coverage declared and "
        "achieved; supporters' asks, pledges and actions; drills apart. Only routable "
        "facts: no defender is named.",
    )
    home_arg(p)
    json_arg(p)
    p.add_argument("--from", dest="start", metavar="TIME", help="default: 30 days ago")
    p.add_argument("--to", dest="end", metavar="TIME", help="default: now")
    p.add_argument("--out", metavar="FILE", required=True, help="the HTML file to write")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401

        from rrn.node.report.render import render  # matplotlib: an extra
    except ImportError as exc:
        raise ConfigError(
            "rrn report draws its charts with matplotlib, which this install lacks: "
            "pip install --require-hashes -r deploy/lock/report.txt (or rrn[report])"
        ) from exc
    from rrn.node.report.build import build_report

    home = get_home(args)
    now = int(time.time() * 1000)
    end = time_ms(args.end, "--to") if args.end else now
    start = time_ms(args.start, "--from") if args.start else end - 30 * _DAY_MS
    if start >= end:
        raise ConfigError("--from must come before --to")
    report = asyncio.run(build_report(home, window=(start, end), now_ms=now))
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(render(report))
        os.replace(tmp, out)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}") from exc
    return show(
        args,
        report,
        lambda: f"wrote {out}: {report.alerts} alerts, {report.exercises} exercise alerts",
    )
