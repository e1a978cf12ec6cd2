"""`rrn checkin plan|record|end|list`: a defender's check-in plan, enforced by the network.

Owns the check-in commands: the times to check in by (`--at`, or `--every` with
`--count`), the grace period, the alert a missed check-in raises (the same options
as `rrn alert raise`), and the code card printed once for the defender.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rrn.node.cli.alerts import add_raise_args, raise_args
from rrn.node.cli.common import (
    Parser,
    duration_ms,
    get_home,
    home_arg,
    id_ref,
    json_arg,
    show,
)
from rrn.node.cli.output import fmt_time, table
from rrn.node.cli.support import time_ms
from rrn.node.control.client import ask
from rrn.node.ops.checkins import PlanArgs, PlanInfo, PlanRefArgs, PlansArgs, RecordArgs
from rrn.protocol.checkins import MAX_SLOTS
from rrn.protocol.errors import ConfigError

__all__ = ["add_checkin_parsers"]


def add_checkin_parsers(top: Any) -> None:
    sub = top.add_parser(
        "checkin", help="check-in plans: a missed check-in raises an alert"
    ).add_subparsers(dest="checkin_command", required=True, parser_class=Parser)
    p = sub.add_parser(
        "plan",
        help="make a check-in plan for a defender; prints the one-time codes once",
        description="The defender checks in by each time (--at, or --every with --count) "
        "with that slot's code, through any member in the plan's audience; a slot left "
        "unanswered past --grace raises the alert described by the other options. Each "
        "slot also has a duress code: it checks in the same way and silently raises an "
        "alert only this member sees.",
    )
    home_arg(p)
    json_arg(p)
    p.add_argument("--at", action="append", default=[], metavar="TIME", help="ISO time (repeat)")
    p.add_argument("--every", metavar="DURATION", help="e.g. 6h: slots this far apart")
    p.add_argument("--count", type=int, help="how many slots --every makes")
    p.add_argument("--start", metavar="TIME", help="the first --every slot (default: now + every)")
    p.add_argument("--grace", default="30m", metavar="DURATION", help="default 30m")
    add_raise_args(p)
    p.set_defaults(func=cmd_checkin_plan)

    p = sub.add_parser("record", help="record a defender's check-in (with their code)")
    home_arg(p)
    json_arg(p)
    p.add_argument("plan", help="plan id (or its first 6+ hex digits)")
    p.add_argument("--code", help="the defender's one-time code for the slot")
    p.add_argument("--slot", type=int, help="the slot (default: the earliest unanswered)")
    p.set_defaults(func=cmd_checkin_record)

    p = sub.add_parser("end", help="end a plan: no later slot raises an alert (origin)")
    home_arg(p)
    json_arg(p)
    p.add_argument("plan")
    p.set_defaults(func=cmd_checkin_end)

    p = sub.add_parser("list", help="check-in plans and the state of their slots")
    home_arg(p)
    json_arg(p)
    p.add_argument("plan", nargs="?")
    p.set_defaults(func=cmd_checkin_list)


def _ref(text: str) -> str:
    return id_ref(text, "plan", "rrn checkin list")


def _slots(args: argparse.Namespace) -> list[int]:
    """The check-in times the arguments ask for (Unix ms)."""
    if args.at and args.every:
        raise ConfigError("give either --at times or --every with --count, not both")
    if args.at:
        return [time_ms(t, "--at") for t in args.at]
    if not args.every or not args.count:
        raise ConfigError("give the check-in times: --at TIME (repeat) or --every D --count N")
    if not 1 <= args.count <= MAX_SLOTS:
        raise ConfigError(f"--count: a plan has 1 to {MAX_SLOTS} slots")
    every = duration_ms("--every", args.every)
    start = time_ms(args.start, "--start") if args.start else int(time.time() * 1000) + every
    return [start + k * every for k in range(args.count)]


def cmd_checkin_plan(args: argparse.Namespace) -> int:
    home = get_home(args)
    request = PlanArgs(
        alert=raise_args(args),
        slots_ms=_slots(args),
        grace_ms=duration_ms("--grace", args.grace),
    )
    info = ask(home, "checkin.plan", request, PlanInfo)
    tz = home.config.node.tz
    return show(args, info, lambda: _card(info, tz))


def _card(info: PlanInfo, tz: str) -> str:
    rows = [("slot", f"check in by ({tz})", "code", "duress code")]
    rows += [(str(c.slot), fmt_time(c.due_ms, tz), c.code, c.duress_code) for c in info.codes]
    return (
        f"plan {info.plan[:12]} for {info.pseudonym}: {len(info.slots)} check-ins, "
        f"grace {info.grace_ms // 60000} min\n{table(rows)}\n"
        "Give these codes to the defender now: they are shown this once and stored nowhere. "
        "A duress code checks in like the other and silently raises an alert only this "
        "member sees."
    )


def cmd_checkin_record(args: argparse.Namespace) -> int:
    home = get_home(args)
    request = RecordArgs(plan=_ref(args.plan), slot=args.slot, code=args.code)
    info = ask(home, "checkin.record", request, PlanInfo)
    return show(args, info, lambda: "checked in\n" + _plan_text(info, home.config.node.tz))


def cmd_checkin_end(args: argparse.Namespace) -> int:
    home = get_home(args)
    info = ask(home, "checkin.end", PlanRefArgs(plan=_ref(args.plan)), PlanInfo)
    return show(args, info, lambda: "ended\n" + _plan_text(info, home.config.node.tz))


def cmd_checkin_list(args: argparse.Namespace) -> int:
    home = get_home(args)
    ref = _ref(args.plan) if args.plan else None
    plans = ask(home, "checkin.list", PlansArgs(plan=ref), list[PlanInfo])
    tz = home.config.node.tz
    text = "\n".join(_plan_text(p, tz) for p in plans) if plans else "no check-in plans"
    return show(args, plans, lambda: text)


def _plan_text(p: PlanInfo, tz: str) -> str:
    ended = f", ended {fmt_time(p.ended_ms, tz)}" if p.ended_ms is not None else ""
    rows = [("slot", f"by ({tz})", "grace ends", "state", "alert")]
    rows += [
        (
            str(s.slot),
            fmt_time(s.due_ms, tz),
            fmt_time(s.deadline_ms, tz),
            s.state,
            f"{s.alert[:12]} {s.alert_status}" if s.alert else "",
        )
        for s in p.slots
    ]
    return f"plan {p.plan[:12]} by {p.origin} for {p.pseudonym} ({p.country}){ended}\n{table(rows)}"
