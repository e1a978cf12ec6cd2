"""Pieces every `rrn` subcommand module shares: the parser class and helpers.

Owns one-line argparse errors, the --home/--json arguments, opening the home
and printing a result as text or JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar

from rrn.node.control.channel import to_json
from rrn.node.home.layout import Home, open_home
from rrn.node.home.lock import HomeInUse, HomeLock
from rrn.protocol.countries import is_country
from rrn.protocol.errors import (
    ConfigError,
    ControlError,
    DaemonUnavailable,
    FederationError,
    ProtocolError,
    RrnError,
    StoreError,
)
from rrn.protocol.policy import NetworkPolicy

__all__ = [
    "Parser",
    "alert_ref",
    "error_code",
    "escalation_arg",
    "get_home",
    "home_arg",
    "json_arg",
    "policy_of",
    "run",
    "show",
    "state_arg",
    "states_of",
    "stopped",
    "values",
]

T = TypeVar("T")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"rrn: error: {message} (see '{self.prog} --help')\n")


def values(enum_type: type[Any]) -> list[str]:
    return [str(v) for v in enum_type]


def home_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--home",
        type=Path,
        default=os.environ.get("RRN_HOME"),
        help="node home directory (default: $RRN_HOME)",
    )


def json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def get_home(args: argparse.Namespace) -> Home:
    if args.home is None:
        raise ConfigError("--home is required (or set RRN_HOME)")
    return open_home(Path(args.home))


@contextlib.contextmanager
def stopped(home: Home, command: str, why: str) -> Iterator[None]:
    """Hold `home` for `command` (so no daemon starts meanwhile); ConfigError naming the
    holder if the daemon, or another such command, has it (`why` says what would clash)."""
    lock = HomeLock(home.path, command)
    try:
        lock.acquire()
    except HomeInUse as exc:
        raise ConfigError(f"stop the daemon first: {why} ({exc.args[0].split('; ')[0]})") from None
    with lock:
        yield


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's own asyncio work (asking the daemon needs none: ask, not this)."""
    import asyncio  # a quarter of a command's start-up; few need it

    from rrn.node.home.logs import quiet_tls_eof  # logging, which asyncio loads anyway

    quiet_tls_eof()
    return asyncio.run(coro)


def show(args: argparse.Namespace, value: object, text: Callable[[], str]) -> int:
    print(to_json(value) if getattr(args, "json", False) else text())
    return 0


def alert_ref(value: str) -> str:
    """An alert id as typed (6 to 64 hex digits), normalised."""
    return id_ref(value, "alert", "rrn alert list")


def id_ref(value: str, what: str, listing: str) -> str:
    """An id of `what` as typed (6 to 64 hex digits, as `listing` shows), normalised."""
    ref = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{6,64}", ref):
        raise ConfigError(f"{what} id {value!r} must be 6 to 64 hex digits (as '{listing}' shows)")
    return ref


_DURATION: Final = re.compile(r"^([0-9]+)([smhd])$")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_ms(flag: str, value: str) -> int:
    """A duration as typed (90s, 10m, 2h, 1d), in milliseconds."""
    match = _DURATION.match(value)
    if match is None:
        raise ConfigError(f"{flag} {value!r}: give a duration like 90s, 10m, 2h, 1d")
    return int(match[1]) * _UNIT_S[match[2]] * 1000


def escalation_arg(p: argparse.ArgumentParser) -> None:
    """--escalation and --limits: the network's policy, in node/membership/policy.py form."""
    p.add_argument(
        "--escalation",
        metavar="SPEC",
        help="escalation policy: step time by urgency, and members asked one by one "
        "before the fallback pool, e.g. immediate=10m,days=2h,weeks=12h,direct=3 "
        "(any subset; the rest stays as it is)",
    )
    p.add_argument(
        "--limits",
        metavar="SPEC",
        help="what one member may make every other node hold, e.g. held=2000,held_mb=8,"
        "day_events=5000,day_mb=16,relay=50,relay_burst=500,sync_pages=120 "
        "(any subset; the rest stays as it is)",
    )
    p.add_argument(
        "--links",
        metavar="K",
        help="a sparse mesh: each member links directly to K others, chosen from the roster "
        "alike by every node (2-255; 4 is a good start past about 15 members), or 'full' for "
        "every pair (the default; docs/SCALING.md)",
    )


def policy_of(args: argparse.Namespace, base: NetworkPolicy | None = None) -> NetworkPolicy | None:
    """The policy --escalation, --limits and --links give (None when none is given)."""
    from rrn.node.membership.policy import changed_policy  # start-up cost

    return changed_policy(base, args.escalation, args.limits, args.links)


def state_arg(p: argparse.ArgumentParser) -> None:
    """--state ORG=CC, repeatable."""
    p.add_argument(
        "--state",
        dest="states",
        action="append",
        default=[],
        metavar="ORG=CC",
        help="the state a diplomatic mission (role embassy) represents, so alerts can "
        "exclude the missions of a perpetrator state (ORG= clears it)",
    )


def states_of(specs: list[str]) -> dict[str, str]:
    """The states named by --state options, by org."""
    found = {}
    for spec in specs:
        org, sep, state = spec.partition("=")
        if not org or not sep or (state and not is_country(state)):
            raise ConfigError(f"--state {spec!r}: use ORG=CC with an ISO 3166-1 alpha-2 code")
        found[org] = state
    return found


def error_code(exc: RrnError) -> str:
    """A stable name for what went wrong, for scripts (`--json` errors; OPERATIONS.md)."""
    if isinstance(exc, ProtocolError | FederationError):
        return str(exc.reason)
    for kind, code in (
        (HomeInUse, "home_in_use"),
        (DaemonUnavailable, "daemon_unavailable"),
        (ControlError, "refused"),
        (StoreError, "store"),
        (ConfigError, "invalid"),
    ):
        if isinstance(exc, kind):
            return code
    return "error"
