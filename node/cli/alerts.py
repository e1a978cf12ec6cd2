"""`rrn alert raise|update|claim|release|share|act|resolve|cancel|list|show`.

Owns the alert commands: their arguments, checked before anything is sent (place
codes, languages, asks, the details file), and how each maps to an operation of
the running daemon.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from rrn.node.cli import output
from rrn.node.cli.common import (
    Parser,
    alert_ref,
    get_home,
    home_arg,
    json_arg,
    show,
    values,
)
from rrn.node.cli.support import add_consent_args, consent_of
from rrn.node.control.channel import now_ms
from rrn.node.control.client import ask
from rrn.node.home.layout import Home
from rrn.node.ops.types import (
    ActArgs,
    AlertDetail,
    AlertInfo,
    CancelArgs,
    ClaimArgs,
    ListArgs,
    RaiseArgs,
    ReleaseArgs,
    ResolveArgs,
    ShareArgs,
    ShowArgs,
    UpdateArgs,
)
from rrn.protocol.alerts import PSEUDONYM_PATTERN, Ask
from rrn.protocol.countries import is_country
from rrn.protocol.errors import ConfigError
from rrn.protocol.vocabulary import (
    ActionType,
    ActResult,
    CancelReason,
    Channel,
    IncidentType,
    Outcome,
    Severity,
    SupporterRole,
    Urgency,
)

__all__ = ["add_alert_parsers", "add_raise_args", "raise_args"]


def add_alert_parsers(alert: argparse.ArgumentParser) -> Any:
    sub = alert.add_subparsers(dest="alert_command", required=True, parser_class=Parser)
    p = sub.add_parser("raise", help="raise a new alert")
    home_arg(p)
    json_arg(p)
    add_raise_args(p)
    p.add_argument("--exercise", action="store_true", help="mark as a drill")
    p.set_defaults(func=cmd_alert_raise)

    p = sub.add_parser("update", help="change an alert's routable fields")
    home_arg(p)
    json_arg(p)
    p.add_argument("alert", help="alert id (or its first 6+ hex digits)")
    p.add_argument("--subdivision", type=str.upper)
    p.add_argument("--type", dest="types", action="append", choices=values(IncidentType))
    p.add_argument("--severity", choices=values(Severity))
    p.add_argument("--urgency", choices=values(Urgency))
    p.add_argument("--ask", dest="asks", action="append", metavar="ACTION:TO[:CHANNEL]")
    p.add_argument("--lang", dest="languages", action="append", type=str.lower, metavar="CODE")
    p.set_defaults(func=cmd_alert_update)
    _alert_handling_parsers(sub)
    return sub


def add_raise_args(p: argparse.ArgumentParser) -> None:
    """What an alert says: its routable facts, pseudonym, details and audience (also
    the alert of a check-in plan, `rrn checkin plan`)."""
    p.add_argument(
        "--country", required=True, type=str.upper, help="ISO 3166-1 alpha-2 code, e.g. PE"
    )
    p.add_argument("--subdivision", type=str.upper, help="ISO 3166-2 code, e.g. PE-LOR")
    p.add_argument(
        "--type", dest="types", action="append", required=True, choices=values(IncidentType)
    )
    p.add_argument("--severity", required=True, choices=values(Severity))
    p.add_argument("--urgency", required=True, choices=values(Urgency))
    p.add_argument("--ask", dest="asks", action="append", default=[], metavar="ACTION:TO[:CHANNEL]")
    p.add_argument(
        "--lang", dest="languages", action="append", default=[], type=str.lower, metavar="CODE"
    )
    p.add_argument("--pseudonym", help="existing defender pseudonym (hrd-xxxxxxxx)")
    p.add_argument(
        "--details",
        metavar="FILE",
        help="JSON file (or - for stdin) with identifying details to seal: identity, "
        "location, contacts, risk, narrative (only this member can read them; claimants "
        "that are responders get them resealed)",
    )
    add_consent_args(p)


def raise_args(args: argparse.Namespace) -> RaiseArgs:
    """The raise the arguments of `add_raise_args` ask for, checked."""
    home = get_home(args)
    _check_place(args.country, args.subdivision)
    if args.pseudonym is not None and not re.match(PSEUDONYM_PATTERN, args.pseudonym):
        raise ConfigError("--pseudonym must be one minted by rrn (hrd- and 8 letters/digits)")
    return RaiseArgs(
        country=args.country,
        subdivision=args.subdivision,
        incident_types=[IncidentType(t) for t in args.types],
        severity=Severity(args.severity),
        urgency=Urgency(args.urgency),
        asks=[_ask(a) for a in args.asks],
        languages=_check_languages(args.languages) or [],
        pseudonym=args.pseudonym,
        exercise=getattr(args, "exercise", False),
        details=_sealed_details(home, args.details),
        consent=consent_of(args),
        exclude=list(args.exclude),
        perpetrator_states=list(args.perpetrator_states),
    )


def _sealed_details(home: Home, source: str | None) -> bytes | None:
    if source is None:
        return None
    from rrn.node.cli.sealed import read_details  # AEAD and X25519: only when sealing

    return read_details(home, source)


def _alert_handling_parsers(sub: Any) -> None:
    """Commands on an alert that exists: claim, release, share, act."""
    p = sub.add_parser("claim", help="take responsibility for responding")
    home_arg(p)
    json_arg(p)
    p.add_argument("alert")
    p.add_argument("--for", dest="minutes", type=int, help="claim for this many minutes")
    p.set_defaults(func=cmd_alert_claim)

    p = sub.add_parser("release", help="give up this member's claim (optionally hand it over)")
    home_arg(p)
    json_arg(p)
    p.add_argument("alert")
    p.add_argument(
        "--to",
        dest="handover_to",
        type=str.lower,
        metavar="ORG",
        help="hand it over to this member",
    )
    p.set_defaults(func=cmd_alert_release)

    p = sub.add_parser("share", help="reseal an alert's sealed details to other members")
    home_arg(p)
    json_arg(p)
    p.add_argument("alert")
    p.add_argument("--to", action="append", required=True, type=str.lower, metavar="ORG")
    p.set_defaults(func=cmd_alert_share)

    p = sub.add_parser("act", help="record an action taken for an alert")
    home_arg(p)
    json_arg(p)
    p.add_argument("alert")
    p.add_argument("--action", required=True, choices=values(ActionType))
    p.add_argument("--channel", default="private", choices=values(Channel))
    p.add_argument(
        "--result",
        default="done",
        choices=values(ActResult),
        help="what came of it (default: done)",
    )
    p.set_defaults(func=cmd_alert_act)

    _alert_closing_parsers(sub)


def _alert_closing_parsers(sub: Any) -> None:
    """Ending an alert, and reading alerts: resolve, cancel, list, show."""
    p = sub.add_parser("resolve", help="close an alert with an outcome")
    home_arg(p)
    json_arg(p)
    p.add_argument("alert")
    p.add_argument("--outcome", required=True, choices=values(Outcome))
    p.set_defaults(func=cmd_alert_resolve)

    p = sub.add_parser("cancel", help="withdraw an alert")
    home_arg(p)
    json_arg(p)
    p.add_argument("alert")
    p.add_argument("--reason", required=True, choices=values(CancelReason))
    p.set_defaults(func=cmd_alert_cancel)

    p = sub.add_parser("list", help="list open alerts (--all: every alert)")
    home_arg(p)
    json_arg(p)
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=cmd_alert_list)

    p = sub.add_parser("show", help="one alert and its history")
    home_arg(p)
    json_arg(p)
    p.add_argument("alert")
    p.set_defaults(func=cmd_alert_show)


def _ask(spec: str) -> Ask:
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ConfigError(
            f"--ask {spec!r}: use ACTION:TO or ACTION:TO:CHANNEL (e.g. legal_aid:ngo)"
        )
    action, to = parts[0], parts[1]
    channel = parts[2] if len(parts) == 3 else str(Channel.PRIVATE)
    for value, kind, name in (
        (action, ActionType, "action"),
        (to, SupporterRole, "addressee"),
        (channel, Channel, "channel"),
    ):
        if value not in values(kind):
            raise ConfigError(f"--ask {spec!r}: {name} must be one of {', '.join(values(kind))}")
    return Ask(action=ActionType(action), to=SupporterRole(to), channel=Channel(channel))


def _check_place(country: str | None, subdivision: str | None) -> None:
    if country is not None and not is_country(country):
        raise ConfigError(f"--country {country!r} is not an ISO 3166-1 alpha-2 code (e.g. PE, KE)")
    if subdivision is not None:
        ok = len(subdivision) in range(4, 7) and subdivision[2:3] == "-"
        if not ok or (country is not None and not subdivision.startswith(country + "-")):
            raise ConfigError(
                f"--subdivision {subdivision!r} is not an ISO 3166-2 code of the alert's country "
                "(e.g. PE-LOR)"
            )


def _check_languages(codes: Sequence[str] | None) -> list[str] | None:
    if codes is None:
        return None
    for code in codes:
        if not (2 <= len(code) <= 3 and code.isascii() and code.isalpha() and code.islower()):
            raise ConfigError(f"--lang {code!r} is not an ISO 639 language code (e.g. es, sw, id)")
    return list(codes)


def _alert_result(args: argparse.Namespace, op: str, payload: object, done: str = "") -> int:
    """Ask the daemon; print the alert as it now is, after what was `done` to it."""
    home = get_home(args)
    info = ask(home, op, payload, AlertInfo)
    return show(args, info, lambda: done + output.alert_line(info))


def cmd_alert_raise(args: argparse.Namespace) -> int:
    return _alert_result(args, "alert.raise", raise_args(args))


def cmd_alert_update(args: argparse.Namespace) -> int:
    _check_place(None, args.subdivision)
    payload = UpdateArgs(
        alert=alert_ref(args.alert),
        subdivision=args.subdivision,
        incident_types=[IncidentType(t) for t in args.types] if args.types else None,
        severity=Severity(args.severity) if args.severity else None,
        urgency=Urgency(args.urgency) if args.urgency else None,
        asks=[_ask(a) for a in args.asks] if args.asks else None,
        languages=_check_languages(args.languages),
    )
    return _alert_result(args, "alert.update", payload)


def cmd_alert_claim(args: argparse.Namespace) -> int:
    until = now_ms() + args.minutes * 60_000 if args.minutes else None
    return _alert_result(
        args, "alert.claim", ClaimArgs(alert=alert_ref(args.alert), until_ms=until)
    )


def cmd_alert_release(args: argparse.Namespace) -> int:
    payload = ReleaseArgs(alert=alert_ref(args.alert), handover_to=args.handover_to)
    return _alert_result(args, "alert.release", payload)


def cmd_alert_share(args: argparse.Namespace) -> int:
    payload = ShareArgs(alert=alert_ref(args.alert), to=list(args.to))
    return _alert_result(args, "alert.share", payload)


def cmd_alert_act(args: argparse.Namespace) -> int:
    payload = ActArgs(
        alert=alert_ref(args.alert),
        action=ActionType(args.action),
        channel=Channel(args.channel),
        result=ActResult(args.result),
    )
    done = f"recorded {args.action} ({args.channel}, {args.result}) on "
    return _alert_result(args, "alert.act", payload, done)


def cmd_alert_resolve(args: argparse.Namespace) -> int:
    payload = ResolveArgs(alert=alert_ref(args.alert), outcome=Outcome(args.outcome))
    return _alert_result(args, "alert.resolve", payload)


def cmd_alert_cancel(args: argparse.Namespace) -> int:
    payload = CancelArgs(alert=alert_ref(args.alert), reason=CancelReason(args.reason))
    return _alert_result(args, "alert.cancel", payload)


def cmd_alert_list(args: argparse.Namespace) -> int:
    home = get_home(args)
    alerts = ask(home, "alert.list", ListArgs(all=args.all), list[AlertInfo])
    return show(args, alerts, lambda: output.alert_table(alerts, home.config.node.tz))


def cmd_alert_show(args: argparse.Namespace) -> int:
    from rrn.node.cli.sealed import OneTimeKey, opened_details

    home = get_home(args)
    one_time = OneTimeKey()
    request = ShowArgs(alert=alert_ref(args.alert), reply_to=one_time.public)
    detail = ask(home, "alert.show", request, AlertDetail)
    if detail.sealed_details is not None:
        opened = opened_details(home, detail.sealed_details, one_time)
        detail = msgspec.structs.replace(detail, sealed_details=None, details=opened)
    return show(args, detail, lambda: output.alert_detail(detail, home.config.node.tz))
