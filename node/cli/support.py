"""`rrn asks` (and `asks record`), `rrn alert pledge|feedback|forget`, and the consent
flags of `alert raise`.

Owns the command line of need-to-know and of supporters: recording consent and
exclusions when an alert is raised, the asks a supporter sees, pledges, the
feedback the originating NGO gives the defender, deleting an alert, and the
defenders' pseudonyms kept at this node.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from rrn.node.cli import output
from rrn.node.cli.common import Parser, alert_ref, get_home, home_arg, json_arg, show, values
from rrn.node.cli.documents import AlertForgotten
from rrn.node.control.channel import now_ms
from rrn.node.control.client import ask
from rrn.node.ops.types import (
    AlertInfo,
    AskInfo,
    AsksArgs,
    FeedbackArgs,
    ForgetArgs,
    PledgeArgs,
)
from rrn.protocol.alerts import Consent
from rrn.protocol.countries import is_country
from rrn.protocol.errors import ConfigError
from rrn.protocol.vocabulary import (
    ActionType,
    Audience,
    Channel,
    ConsentSource,
    FeedbackType,
    TombstoneReason,
)

__all__ = ["add_consent_args", "add_support_parsers", "consent_of"]


def add_consent_args(p: argparse.ArgumentParser) -> None:
    """Flags of `alert raise` that record consent and exclusions."""
    p.add_argument(
        "--consent",
        action="append",
        default=[],
        metavar="AUDIENCE[:UNTIL]",
        help=f"consent to share with an audience ({', '.join(values(Audience))}), until an "
        "ISO date or time (UTC unless it has an offset); without any, the NGO network only",
    )
    p.add_argument(
        "--consent-by",
        choices=values(ConsentSource),
        help="who gave the consent (required with --consent)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        type=str.lower,
        metavar="ORG",
        help="a member that must learn nothing of the alert (e.g. an implicated company)",
    )
    p.add_argument(
        "--perpetrator-state",
        dest="perpetrator_states",
        action="append",
        default=[],
        type=str.upper,
        metavar="CC",
        help="a state flagged as perpetrator: its diplomatic missions learn nothing",
    )


def consent_of(args: argparse.Namespace) -> list[Consent]:
    """The consent records the flags describe, given now."""
    if not args.consent:
        return []
    if args.consent_by is None:
        raise ConfigError("--consent needs --consent-by: who gave it")
    now = now_ms()
    found = []
    for spec in args.consent:
        audience, _, until = spec.partition(":")
        if audience not in values(Audience):
            raise ConfigError(
                f"--consent {spec!r}: audience must be one of {', '.join(values(Audience))}"
            )
        until_ms = time_ms(until, "--consent") if until else None
        if until_ms is not None and until_ms <= now:
            raise ConfigError(f"--consent {spec!r}: that time has passed")
        found.append(
            Consent(
                audience=Audience(audience),
                given_by=ConsentSource(args.consent_by),
                given_ms=now,
                until_ms=until_ms,
            )
        )
    for state in args.perpetrator_states:
        if not is_country(state):
            raise ConfigError(f"--perpetrator-state {state!r} is not an ISO 3166-1 alpha-2 code")
    return found


def time_ms(text: str, flag: str) -> int:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"{flag}: {text!r} is not an ISO date or time") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def add_support_parsers(alert_sub: Any, top_sub: Any) -> None:
    """Register `rrn alert pledge|feedback|forget` and `rrn asks`."""
    p = alert_sub.add_parser("pledge", help="commit to carry out an ask addressed to this member")
    home_arg(p)
    json_arg(p)
    p.add_argument("alert")
    p.add_argument("--action", required=True, choices=values(ActionType))
    p.add_argument("--channel", default="private", choices=values(Channel))
    p.add_argument("--by", metavar="TIME", help="ISO date or time it will be done by")
    p.set_defaults(func=cmd_pledge)

    p = alert_sub.add_parser("feedback", help="record feedback given to the defender (origin)")
    home_arg(p)
    json_arg(p)
    p.add_argument("alert")
    p.add_argument("--type", dest="feedback", required=True, choices=values(FeedbackType))
    p.set_defaults(func=cmd_feedback)

    p = alert_sub.add_parser(
        "forget", help="delete one of this member's alerts everywhere (tombstone)"
    )
    home_arg(p)
    json_arg(p)
    p.add_argument("alert")
    p.add_argument("--reason", required=True, choices=values(TombstoneReason))
    p.set_defaults(func=cmd_forget)

    p = top_sub.add_parser("asks", help="asks on open alerts addressed to this member's roles")
    home_arg(p)
    json_arg(p)
    p.add_argument("--all", action="store_true", help="every ask, whoever it is addressed to")
    p.set_defaults(func=cmd_asks)
    sub = p.add_subparsers(dest="asks_command", parser_class=Parser, metavar="{record}")
    p = sub.add_parser(
        "record", help="how fast this member answered the asks offered to it, against the network"
    )
    home_arg(p)
    json_arg(p)
    p.add_argument("--days", type=int, default=90, help="alerts raised in the last DAYS days")
    p.set_defaults(func=cmd_record)


def cmd_pledge(args: argparse.Namespace) -> int:
    payload = PledgeArgs(
        alert=alert_ref(args.alert),
        action=ActionType(args.action),
        channel=Channel(args.channel),
        by_ms=time_ms(args.by, "--by") if args.by else None,
    )
    info = ask(get_home(args), "alert.pledge", payload, AlertInfo)
    return show(args, info, lambda: output.alert_line(info))


def cmd_feedback(args: argparse.Namespace) -> int:
    payload = FeedbackArgs(alert=alert_ref(args.alert), feedback=FeedbackType(args.feedback))
    info = ask(get_home(args), "alert.feedback", payload, AlertInfo)
    return show(args, info, lambda: output.alert_line(info))


def cmd_forget(args: argparse.Namespace) -> int:
    payload = ForgetArgs(alert=alert_ref(args.alert), reason=TombstoneReason(args.reason))
    count = ask(get_home(args), "alert.forget", payload, int)
    return show(
        args,
        AlertForgotten(alert=payload.alert, events=count),
        lambda: f"deleted alert {payload.alert}: every node drops the payloads of {count} events",
    )


def cmd_asks(args: argparse.Namespace) -> int:
    home = get_home(args)
    asks = ask(home, "asks.list", AsksArgs(all=args.all), list[AskInfo])
    return show(args, asks, lambda: output.asks_table(asks, home.config.node.tz))


def cmd_record(args: argparse.Namespace) -> int:
    home = get_home(args)
    if not 1 <= args.days <= 3660:
        raise ConfigError("--days: give 1 to 3660 days")
    from rrn.node.ops.record import AskRecord, RecordArgs

    record = ask(home, "asks.record", RecordArgs(days=args.days), AskRecord)
    return show(args, record, lambda: output.record_text(record, home.config.node.tz))
