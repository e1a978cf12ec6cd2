"""`rrn defender add|show|list|forget`: defenders' pseudonyms kept at this node.

Owns minting a pseudonym for a defender whose identity is sealed to this node's
daemon (never on NATS in the clear), showing that identity again to whoever runs
the node, listing the pseudonyms minted here and forgetting an identity for good.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from rrn.node.cli import output
from rrn.node.cli.common import Parser, get_home, home_arg, json_arg, show
from rrn.node.cli.documents import DefenderForgotten, DefenderIdentity
from rrn.node.cli.sealed import OneTimeKey, seal_to_daemon
from rrn.node.control.client import ask
from rrn.node.ops.defenders import DefenderArgs, DefenderInfo, NewDefenderArgs, ShowDefenderArgs
from rrn.node.ops.types import NoArgs
from rrn.protocol.alerts import PSEUDONYM_PATTERN
from rrn.protocol.errors import ConfigError

__all__ = ["add_defender_parsers"]


def add_defender_parsers(top_sub: Any) -> None:
    """Register `rrn defender add|show|list|forget`."""
    defender = top_sub.add_parser(
        "defender", help="defenders' pseudonyms (the identity stays at this node, encrypted)"
    )
    sub = defender.add_subparsers(dest="defender_command", required=True, parser_class=Parser)
    p = sub.add_parser("add", help="mint a pseudonym for a defender and keep the identity here")
    home_arg(p)
    json_arg(p)
    p.add_argument(
        "--identity",
        required=True,
        metavar="FILE",
        help="text file with the identity (- for stdin)",
    )
    p.set_defaults(func=cmd_defender_add)

    p = sub.add_parser("show", help="the identity behind a pseudonym minted here")
    home_arg(p)
    json_arg(p)
    p.add_argument("pseudonym")
    p.set_defaults(func=cmd_defender_show)

    p = sub.add_parser("list", help="pseudonyms minted here (no identities)")
    home_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_defender_list)

    p = sub.add_parser("forget", help="delete the identity behind a pseudonym for good")
    home_arg(p)
    json_arg(p)
    p.add_argument("pseudonym")
    p.set_defaults(func=cmd_defender_forget)


def _pseudonym(value: str) -> str:
    if not re.fullmatch(PSEUDONYM_PATTERN, value):
        raise ConfigError("a pseudonym is hrd- and 8 letters/digits, as rrn minted it")
    return value


def cmd_defender_add(args: argparse.Namespace) -> int:
    home = get_home(args)
    try:
        text = sys.stdin.read() if args.identity == "-" else Path(args.identity).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read --identity {args.identity}: {exc.strerror}") from exc
    if not text.strip():
        raise ConfigError("--identity is empty")
    sealed = seal_to_daemon(home, text.strip().encode())
    info = ask(home, "defender.add", NewDefenderArgs(identity=sealed), DefenderInfo)
    return show(args, info, lambda: f"minted {info.pseudonym}; the identity stays on this node")


def cmd_defender_show(args: argparse.Namespace) -> int:
    home = get_home(args)
    one_time = OneTimeKey()
    request = ShowDefenderArgs(pseudonym=_pseudonym(args.pseudonym), reply_to=one_time.public)
    info = ask(home, "defender.show", request, DefenderInfo)
    assert info.sealed_identity is not None
    identity = one_time.open(home, info.sealed_identity).decode()
    doc = DefenderIdentity(pseudonym=info.pseudonym, created_ms=info.created_ms, identity=identity)
    return show(args, doc, lambda: f"{info.pseudonym}: {identity}")


def cmd_defender_list(args: argparse.Namespace) -> int:
    home = get_home(args)
    found = ask(home, "defender.list", NoArgs(), list[DefenderInfo])
    tz = home.config.node.tz
    return show(
        args,
        found,
        lambda: (
            "\n".join(f"{d.pseudonym}  {output.fmt_time(d.created_ms, tz)}" for d in found)
            or "no pseudonyms minted here"
        ),
    )


def cmd_defender_forget(args: argparse.Namespace) -> int:
    home = get_home(args)
    pseudonym = _pseudonym(args.pseudonym)
    ask(home, "defender.forget", DefenderArgs(pseudonym=pseudonym), bool)
    return show(
        args,
        DefenderForgotten(forgotten=pseudonym),
        lambda: f"forgot the identity behind {pseudonym}",
    )
