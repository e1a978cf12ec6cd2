"""The `rrn` command line.

Owns argument parsing and the mapping of each command to the node (init/run,
offline log tools) or to the running daemon (via node/client.py). Every error a
user can cause ends in one line on stderr and a non-zero exit; a traceback only
with RRN_DEBUG=1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.node.cli import output
from rrn.node.cli.common import (
    Parser,
    alert_ref,
    get_home,
    home_arg,
    json_arg,
    require_stopped,
    run,
    show,
    values,
)
from rrn.node.cli.coverage import add_coverage_parsers
from rrn.node.cli.keys import add_key_parsers
from rrn.node.cli.network import add_network_parsers
from rrn.node.cli.support import add_consent_args, add_support_parsers, consent_of
from rrn.node.control.channel import now_ms, to_json
from rrn.node.control.client import call, daemon_info
from rrn.node.control.transit import open_reply, seal_request
from rrn.node.home.clock import SystemClock
from rrn.node.home.layout import Home
from rrn.node.home.logs import setup_logging
from rrn.node.membership.init import init_home
from rrn.node.ops.types import (
    ActArgs,
    AlertDetail,
    AlertInfo,
    CancelArgs,
    ClaimArgs,
    ListArgs,
    NoArgs,
    RaiseArgs,
    ReleaseArgs,
    ResolveArgs,
    ShareArgs,
    ShowArgs,
    StatusInfo,
    UpdateArgs,
)
from rrn.protocol.alerts import (
    PSEUDONYM_PATTERN,
    ActionType,
    ActResult,
    Ask,
    CancelReason,
    Channel,
    IncidentType,
    Outcome,
    Severity,
    SupporterRole,
    Urgency,
)
from rrn.protocol.countries import is_country
from rrn.protocol.encoding import redact
from rrn.protocol.errors import ConfigError, RrnError
from rrn.protocol.roster import Role
from rrn.protocol.sealing import DETAIL_FIELDS, Details, decode_details, encode_details

__all__ = ["build_parser", "main"]

T = TypeVar("T")
logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The full `rrn` argument parser."""
    parser = Parser(prog="rrn", description="rapid response network node")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("init", help="create a node home (config, keys, store)")
    home_arg(p)
    p.add_argument("--org", required=True, help="organisation id, e.g. lima-hr")
    p.add_argument("--tz", required=True, help="IANA time zone, e.g. America/Lima")
    p.add_argument("--name", help="display name of the organisation")
    p.add_argument("--role", action="append", choices=values(Role), help="member role(s)")
    p.add_argument("--nats-port", type=int, default=4222, help="client port (0: any free)")
    p.add_argument("--metrics-port", type=int, default=9464, help="/metrics port (0: any free)")
    p.add_argument(
        "--advertise",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="where other members can dial this node (omit when behind NAT)",
    )
    p.add_argument("--listen", metavar="HOST:PORT", help="local leafnode listener address")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("run", help="run the node daemon until SIGTERM/SIGINT")
    home_arg(p)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="show the running node's state")
    home_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_status)

    alert_sub = _alert_parsers(sub.add_parser("alert", help="raise and handle alerts"))
    add_support_parsers(alert_sub, sub)
    _log_parsers(sub.add_parser("log", help="audit the signed history"))
    add_network_parsers(sub)
    add_coverage_parsers(sub)
    add_key_parsers(sub)
    return parser


def _alert_parsers(alert: argparse.ArgumentParser) -> Any:
    sub = alert.add_subparsers(dest="alert_command", required=True, parser_class=Parser)
    p = sub.add_parser("raise", help="raise a new alert")
    home_arg(p)
    json_arg(p)
    p.add_argument("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. PE")
    p.add_argument("--subdivision", help="ISO 3166-2 code, e.g. PE-LOR")
    p.add_argument(
        "--type", dest="types", action="append", required=True, choices=values(IncidentType)
    )
    p.add_argument("--severity", required=True, choices=values(Severity))
    p.add_argument("--urgency", required=True, choices=values(Urgency))
    p.add_argument("--ask", dest="asks", action="append", default=[], metavar="ACTION:TO[:CHANNEL]")
    p.add_argument("--lang", dest="languages", action="append", default=[], metavar="CODE")
    p.add_argument("--pseudonym", help="existing defender pseudonym (hrd-xxxxxxxx)")
    p.add_argument("--exercise", action="store_true", help="mark as a drill")
    p.add_argument(
        "--details",
        metavar="FILE",
        help="JSON file (or - for stdin) with identifying details to seal: identity, "
        "location, contacts, risk, narrative (only this member can read them; claimants "
        "that are responders get them resealed)",
    )
    add_consent_args(p)
    p.set_defaults(func=cmd_alert_raise)

    p = sub.add_parser("update", help="change an alert's routable fields")
    home_arg(p)
    json_arg(p)
    p.add_argument("alert", help="alert id (or its first 6+ hex digits)")
    p.add_argument("--subdivision")
    p.add_argument("--type", dest="types", action="append", choices=values(IncidentType))
    p.add_argument("--severity", choices=values(Severity))
    p.add_argument("--urgency", choices=values(Urgency))
    p.add_argument("--ask", dest="asks", action="append", metavar="ACTION:TO[:CHANNEL]")
    p.add_argument("--lang", dest="languages", action="append", metavar="CODE")
    p.set_defaults(func=cmd_alert_update)
    _alert_handling_parsers(sub)
    return sub


def _alert_handling_parsers(sub: Any) -> None:
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
    p.add_argument("--to", dest="handover_to", metavar="ORG", help="hand it over to this member")
    p.set_defaults(func=cmd_alert_release)

    p = sub.add_parser("share", help="reseal an alert's sealed details to other members")
    home_arg(p)
    json_arg(p)
    p.add_argument("alert")
    p.add_argument("--to", action="append", required=True, metavar="ORG")
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


def _log_parsers(log: argparse.ArgumentParser) -> None:
    sub = log.add_subparsers(dest="log_command", required=True, parser_class=Parser)
    p = sub.add_parser("verify", help="re-verify every stored event and chain link")
    home_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_log_verify)
    p = sub.add_parser("export", help="signed events as JSON lines")
    home_arg(p)
    p.add_argument("--out", type=Path, help="write to this file (default: stdout)")
    p.set_defaults(func=cmd_log_export)
    p = sub.add_parser("import", help="verify and store events from an export (daemon stopped)")
    home_arg(p)
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_log_import)


# -- helpers ---------------------------------------------------------------------


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


# -- commands --------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    if args.home is None:
        raise ConfigError("--home is required (or set RRN_HOME)")
    home = run(
        init_home(
            Path(args.home),
            org=args.org,
            name=args.name,
            tz=args.tz,
            clock=SystemClock(),
            roles=[Role(r) for r in args.role] if args.role else None,
            nats_port=args.nats_port,
            metrics_port=args.metrics_port,
            advertise=list(args.advertise),
            listen=args.listen,
        )
    )
    print(f"created node home {home.path} for {home.config.node.org}")
    print(f"start it with: rrn run --home {home.path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from rrn.node.daemon.node import Node  # the daemon's imports are only needed here

    home = get_home(args)
    setup_logging(home.log_dir, verbose=args.verbose, console=True)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)
        async with Node(home) as node:
            loop.add_signal_handler(signal.SIGHUP, node.request_reload)
            logger.info(
                "node %s ready: nats %s, metrics %s",
                home.config.node.org,
                node.nats_url,
                node.metrics_url or "disabled",
            )
            await node.run(stop)
        logger.info("node %s stopped cleanly", home.config.node.org)

    run(serve())
    return 0


def _dump_tasks() -> None:
    """SIGUSR1: write every asyncio task's stack to the log (for a node that seems stuck)."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        out.write(f"--- task {task.get_name()}\n")
        task.print_stack(file=out)
    logger.warning("asyncio tasks on SIGUSR1:\n%s", out.getvalue())


def cmd_status(args: argparse.Namespace) -> int:
    home = get_home(args)
    info = run(call(home, "status", NoArgs(), StatusInfo))
    return show(args, info, lambda: output.status_text(info, home.config.node.tz))


def _alert_result(args: argparse.Namespace, op: str, payload: object) -> int:
    home = get_home(args)
    info = run(call(home, op, payload, AlertInfo))
    return show(args, info, lambda: output.alert_line(info))


def cmd_alert_raise(args: argparse.Namespace) -> int:
    home = get_home(args)
    _check_place(args.country, args.subdivision)
    if args.pseudonym is not None and not re.match(PSEUDONYM_PATTERN, args.pseudonym):
        raise ConfigError("--pseudonym must be one minted by rrn (hrd- and 8 letters/digits)")
    payload = RaiseArgs(
        country=args.country,
        subdivision=args.subdivision,
        incident_types=[IncidentType(t) for t in args.types],
        severity=Severity(args.severity),
        urgency=Urgency(args.urgency),
        asks=[_ask(a) for a in args.asks],
        languages=_check_languages(args.languages) or [],
        pseudonym=args.pseudonym,
        exercise=args.exercise,
        details=_sealed_details(home, args.details) if args.details else None,
        consent=consent_of(args),
        exclude=list(args.exclude),
        perpetrator_states=list(args.perpetrator_states),
    )
    return _alert_result(args, "alert.raise", payload)


def _sealed_details(home: Home, source: str) -> bytes:
    """Details from a file or stdin, sealed to the daemon: never on NATS in the clear."""
    return seal_request(encode_details(_details(source)), daemon_info(home))


class _StrictDetails(Details, frozen=True, forbid_unknown_fields=True):
    """Details as typed by a person: a misspelt field is an error, not dropped."""


def _details(source: str) -> Details:
    """Sealed details from a JSON file or stdin; errors never repeat the text."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read --details {source}: {exc.strerror}") from exc
    try:
        details = Details(**msgspec.structs.asdict(msgspec.json.decode(text, type=_StrictDetails)))
    except msgspec.ValidationError as exc:
        raise ConfigError(f"--details: {redact(exc)} (fields: {', '.join(DETAIL_FIELDS)})") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError("--details is not a JSON object") from exc
    if not details.fields():
        raise ConfigError(f"--details is empty: give one of {', '.join(DETAIL_FIELDS)}")
    return details


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
    return _alert_result(args, "alert.act", payload)


def cmd_alert_resolve(args: argparse.Namespace) -> int:
    payload = ResolveArgs(alert=alert_ref(args.alert), outcome=Outcome(args.outcome))
    return _alert_result(args, "alert.resolve", payload)


def cmd_alert_cancel(args: argparse.Namespace) -> int:
    payload = CancelArgs(alert=alert_ref(args.alert), reason=CancelReason(args.reason))
    return _alert_result(args, "alert.cancel", payload)


def cmd_alert_list(args: argparse.Namespace) -> int:
    home = get_home(args)
    alerts = run(call(home, "alert.list", ListArgs(all=args.all), list[AlertInfo]))
    return show(args, alerts, lambda: output.alert_table(alerts, home.config.node.tz))


def cmd_alert_show(args: argparse.Namespace) -> int:
    home = get_home(args)
    one_time = X25519PrivateKey.generate()
    request = ShowArgs(
        alert=alert_ref(args.alert), reply_to=one_time.public_key().public_bytes_raw()
    )
    detail = run(call(home, "alert.show", request, AlertDetail))
    if detail.sealed_details is not None:
        info = daemon_info(home)
        plaintext = open_reply(
            detail.sealed_details, one_time, home.config.node.org, bytes.fromhex(str(info["net"]))
        )
        opened = decode_details(plaintext).fields()
        detail = msgspec.structs.replace(detail, sealed_details=None, details=opened)
    return show(args, detail, lambda: output.alert_detail(detail, home.config.node.tz))


def cmd_log_verify(args: argparse.Namespace) -> int:
    from rrn.node.ops.log import verify_store

    home = get_home(args)
    report = run(verify_store(home.store_path))
    if args.json:
        print(to_json(report.__dict__ | {"ok": report.ok}))
    elif report.ok:
        print(
            f"ok: {report.events} events in {report.chains} chain(s) and {report.rosters} "
            "roster version(s) verified"
        )
    else:
        print(f"FAILED after {report.events} events: {report.first_bad}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_log_export(args: argparse.Namespace) -> int:
    from rrn.node.ops.log import export_lines

    home = get_home(args)

    async def export() -> int:
        n = 0
        with contextlib.ExitStack() as stack:
            out = sys.stdout
            if args.out is not None:
                fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                out = stack.enter_context(os.fdopen(fd, "w"))
            async for line in export_lines(home.store_path):
                out.write(line + "\n")
                n += 1
        return n

    n = run(export())
    if args.out is not None:
        print(f"exported {n} line(s) to {args.out}")
    return 0


def cmd_log_import(args: argparse.Namespace) -> int:
    from rrn.node.ops.log import import_envelopes, read_export

    home = get_home(args)
    require_stopped(home, "an import writes to the store it uses")
    if not args.file.is_file():
        raise ConfigError(f"no file at {args.file}")
    report = run(import_envelopes(home, read_export(args.file)))
    rejected = ", ".join(f"{n} {r}" for r, n in sorted(report.rejected.items())) or "none"
    print(
        f"read {report.read} events: {report.appended} new, {report.duplicates} already held, "
        f"{report.held} waiting for earlier events; rejected: {rejected}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rrn` console script."""
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except RrnError as exc:
        print(f"rrn: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("RRN_DEBUG"):
            raise
        print(
            f"rrn: internal error: {type(exc).__name__} (run again with RRN_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 70
    return result


if __name__ == "__main__":
    sys.exit(main())
