"""The `rrn` command line.

Owns argument parsing and the mapping of each command to the node (init/run,
offline log tools) or to the running daemon (via node/control/client.py). Every error a
user can cause ends in one line on stderr and a non-zero exit; a traceback only
with RRN_DEBUG=1.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import io
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final, TypeVar

from rrn.node.cli.common import (
    Parser,
    error_code,
    get_home,
    home_arg,
    json_arg,
    run,
    show,
    values,
)
from rrn.node.daemon.versions import installed, pin_tz_database
from rrn.node.home.lock import HomeLock
from rrn.protocol.errors import ConfigError, ControlError, RrnError

__all__ = ["build_parser", "main"]

T = TypeVar("T")


#: The commands each module of the CLI registers, and how it is called: `sub` (given
#: the subcommands), or a command's name and help (given that command's parser). A
#: command loads only its module, and what that imports: start-up, which every
#: command pays, took most of a second while every module loaded.
_GROUPS: Final[dict[str, tuple[tuple[str, ...], str, str, str]]] = {
    "support": (("alert", "asks"), "support", "add_support_parsers", ""),
    "defenders": (("defender",), "defenders", "add_defender_parsers", ""),
    "log": (("log",), "log", "add_log_parsers", "audit the signed history"),
    "network": (("member", "network", "peers"), "network", "add_network_parsers", ""),
    "devnet": (("devnet",), "devnet", "add_devnet_parsers", "a local network of several nodes"),
    "coverage": (("coverage",), "coverage", "add_coverage_parsers", ""),
    "checkins": (("checkin",), "checkins", "add_checkin_parsers", ""),
    "collective": (("collective",), "collective", "add_collective_parsers", ""),
    "report": (("report",), "report", "add_report_parser", ""),
    "drills": (("drill",), "drills", "add_drill_parsers", ""),
    "keys": (("key",), "keys", "add_key_parsers", ""),
    "backup": (("backup", "restore"), "backup", "add_backup_parsers", ""),
    "schema": (("schema",), "schema", "add_schema_parser", ""),
    "webhooks": (("webhook",), "webhooks", "add_webhook_parsers", ""),
    "integrators": (("integrator",), "integrators", "add_integrator_parsers", ""),
    "users": (("user",), "users", "add_user_parsers", ""),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `rrn` argument parser: all of it, or what `command` needs (an unknown one:
    all, so that argparse lists every command)."""
    parser = Parser(prog="rrn", description="rapid response network node")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    known = {c for names, *_ in _GROUPS.values() for c in names} | set(_OWN)
    if command in _OWN or command not in known:
        _add_own(sub)
    for name, (commands, module, adder, helptext) in _GROUPS.items():
        if command in commands or command not in known:
            add = getattr(importlib.import_module(f"rrn.node.cli.{module}"), adder)
            if name == "support":
                alerts = importlib.import_module("rrn.node.cli.alerts")
                add(
                    alerts.add_alert_parsers(
                        sub.add_parser("alert", help="raise and handle alerts")
                    ),
                    sub,
                )
            elif helptext:
                add(sub.add_parser(commands[0], help=helptext))
            else:
                add(sub)
    return parser


#: The commands of this module.
_OWN: Final = ("init", "run", "status", "version")


def _add_own(sub: argparse._SubParsersAction[Parser]) -> None:
    from rrn.protocol.roster import Role

    p = sub.add_parser("init", help="create a node home (config, keys, store)")
    home_arg(p)
    json_arg(p)
    p.add_argument("--org", required=True, type=str.lower, help="organisation id, e.g. lima-hr")
    p.add_argument("--tz", required=True, help="IANA time zone, e.g. America/Lima")
    p.add_argument("--name", help="display name of the organisation")
    p.add_argument("--role", action="append", choices=values(Role), help="member role(s)")
    p.add_argument("--nats-port", type=int, default=4222, help="client port (0: any free)")
    p.add_argument("--metrics-port", type=int, default=9464, help="/metrics port (0: any free)")
    p.add_argument("--console-port", type=int, default=8470, help="web console port (0: any free)")
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
    p = sub.add_parser(
        "version", help="what this install runs: rrn, nats-server, tz database, lock"
    )
    json_arg(p)
    p.set_defaults(func=cmd_version)


# -- helpers ---------------------------------------------------------------------


# -- commands --------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from rrn.node.cli.documents import HomeMade
    from rrn.node.home.clock import SystemClock
    from rrn.node.membership.init import init_home
    from rrn.protocol.roster import Role

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
            console_port=args.console_port,
            advertise=list(args.advertise),
            listen=args.listen,
        )
    )
    made = HomeMade(home=str(home.path), org=home.config.node.org)
    return show(
        args,
        made,
        lambda: (
            f"created node home {home.path} for {home.config.node.org}\n"
            f"start it with: rrn run --home {home.path}"
        ),
    )


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio  # the daemon's imports are only needed here
    import logging

    from rrn.node.daemon.node import Node
    from rrn.node.home.logs import setup_logging

    logger = logging.getLogger(__name__)

    home = get_home(args)
    lock = HomeLock(home.path, "rrn run").acquire()  # before logging into its files
    setup_logging(home.log_dir, verbose=args.verbose, console=True)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)
        async with Node(home, lock=lock) as node:
            loop.add_signal_handler(signal.SIGHUP, node.request_reload)
            logger.info(
                "node %s ready: nats %s, metrics %s",
                home.config.node.org,
                node.natsd.url,
                node.metrics_url or "disabled",
            )
            try:
                await node.run(stop)
            except ExceptionGroup as group:  # a task failed: say what, as an error
                error = _first_rrn_error(group)
                if error is None:
                    raise
                raise error from group
            if node.natsd.failed is not None:
                raise ControlError(node.natsd.failed)
        logger.info("node %s stopped cleanly", home.config.node.org)

    if home.config.console.enabled:
        # Loaded before the event loop runs: importing the console (aiohttp's server,
        # babel, its templates) blocked the loop of a starting node for ~0.3 s.
        importlib.import_module("rrn.node.console.app")
    # What the imports built lives as long as the daemon: out of the collector's
    # reach, it no longer adds ~45 ms to every full collection (on the event loop,
    # a stall each time the heap has grown by a quarter).
    gc.collect()
    gc.freeze()
    run(serve())
    return 0


def _first_rrn_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """What stopped the daemon, as the user should read it (a full disk: the store's
    error), if a task failed with an rrn error."""
    found: BaseException | None = group.subgroup(lambda e: isinstance(e, RrnError))
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0] if found.exceptions else None
    return found


def _dump_tasks() -> None:
    """SIGUSR1: write every asyncio task's stack to the log (for a node that seems stuck)."""
    import asyncio
    import logging

    out = io.StringIO()
    for task in asyncio.all_tasks():
        out.write(f"--- task {task.get_name()}\n")
        task.print_stack(file=out)
    logging.getLogger(__name__).warning("asyncio tasks on SIGUSR1:\n%s", out.getvalue())


def cmd_status(args: argparse.Namespace) -> int:
    from rrn.node.cli import output
    from rrn.node.control.client import ask
    from rrn.node.ops.types import NoArgs, StatusInfo

    home = get_home(args)
    info = ask(home, "status", NoArgs(), StatusInfo)
    return show(args, info, lambda: output.status_text(info, home.config.node.tz))


def cmd_version(args: argparse.Namespace) -> int:
    v = installed()
    lines = [
        f"rrn            {v.rrn} (protocol {v.protocol}, Python {v.python})",
        f"nats-server    {v.nats_server}",
        f"tz database    {v.tz_database} from {v.tz_source}",
        f"lock           {v.lock_sha256 or 'none found'} (sha256 of deploy/lock/runtime.txt)",
    ]
    lines += [f"  differs from the lock: {d}" for d in v.lock_differs]
    return show(args, v, lambda: "\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rrn` console script: one line on stderr for an error (a JSON
    object with --json), exit 1 for what the user can fix, 70 for a bug."""
    pin_tz_database()  # before any zone is read: every node the same (node/daemon/versions.py)
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), None)
    args = build_parser(command).parse_args(words)
    try:
        result: int = args.func(args)
    except RrnError as exc:
        _error(args, error_code(exc), str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `rrn alert list | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:
        if os.environ.get("RRN_DEBUG"):
            raise
        _error(
            args,
            "internal",
            f"internal error: {type(exc).__name__} (run again with RRN_DEBUG=1 for details)",
        )
        return 70
    return result


def _error(args: argparse.Namespace, code: str, message: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps({"error": {"code": code, "message": message}}), file=sys.stderr)
    elif code == "internal":
        print(f"rrn: {message}", file=sys.stderr)
    else:
        print(f"rrn: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
