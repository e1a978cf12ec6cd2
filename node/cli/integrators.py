"""`rrn integrator`: accounts for the systems that read this node's feeds.

Each integrator (a case-management system, a pager bridge, a company's desk) gets
its own user and password on the node's NATS (node/home/integrators.py), with the
least its use needs; a running daemon takes the change at once, and a revoked
integrator's connections close.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

import msgspec

from rrn.node.cli.common import Parser, get_home, home_arg, json_arg, show
from rrn.node.cli.documents import IntegratorRevoked
from rrn.node.cli.output import fmt_time, table
from rrn.node.control.client import ask, daemon_info
from rrn.node.home.integrators import (
    add_integrator,
    inbox_prefix,
    load_integrators,
    revoke_integrator,
)
from rrn.node.home.layout import Home
from rrn.node.ops.types import NoArgs
from rrn.protocol.errors import ConfigError, DaemonUnavailable, RrnError

__all__ = ["add_integrator_parsers"]


class Made(msgspec.Struct, frozen=True, kw_only=True):
    """What an integrator needs to connect (`rrn integrator add --json`)."""

    name: str
    user: str
    password: str
    url: str
    #: The node's certificate to pin (TLS), or "" on this host.
    ca_file: str
    inbox_prefix: str
    #: Whether the running daemon took it now (else: at its next start).
    live: bool


class Listed(msgspec.Struct, frozen=True, kw_only=True):
    """An integrator account, without its password (`rrn integrator list --json`)."""

    name: str
    tls: bool
    created_ms: int


def add_integrator_parsers(sub: Any) -> None:
    top = sub.add_parser("integrator", help="accounts for systems that read this node's feeds")
    inner = top.add_subparsers(dest="integrator_command", required=True, parser_class=Parser)
    p = inner.add_parser("add", help="a new integrator account, with its own password")
    home_arg(p)
    json_arg(p)
    p.add_argument("name", help="2-32 lowercase letters, digits and '-'")
    p.add_argument(
        "--tls", action="store_true", help="it connects from another host (needs [nats] tls)"
    )
    p.set_defaults(func=cmd_add)
    p = inner.add_parser("list", help="the integrator accounts (never their passwords)")
    home_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_list)
    p = inner.add_parser("revoke", help="delete an account; its connections close")
    home_arg(p)
    json_arg(p)
    p.add_argument("name")
    p.set_defaults(func=cmd_revoke)


def cmd_add(args: argparse.Namespace) -> int:
    home = get_home(args)
    n = home.config.nats
    if args.tls and not n.tls:
        raise ConfigError(
            "an integrator on another host needs TLS on the client port: set [nats] tls = true "
            "(and host to an address it can reach) in config.toml, restart the node, then add it"
        )
    made = add_integrator(home.keys_dir, args.name, tls=args.tls)
    live = _tell_daemon(home)
    url = _url(home)
    if args.tls:
        url = url.replace("nats://", "tls://", 1)
    result = Made(
        name=made.name,
        user=made.name,
        password=made.password,
        url=url,
        ca_file=str(home.keys_dir / "tls.crt") if n.tls else "",
        inbox_prefix=inbox_prefix(made.name),
        live=live,
    )
    return show(args, result, lambda: _made_text(result))


def _made_text(m: Made) -> str:
    lines = [
        f"integrator {m.name} added ({'in use now' if m.live else 'from the next start'})",
        f"  user      {m.user}",
        f"  password  {m.password}   (give it to the integrator; shown once)",
        f"  url       {m.url}",
    ]
    if m.ca_file:
        lines.append(f"  ca_file   {m.ca_file}   (give a copy; the client pins it)")
    lines.append("  connect with rrn.node.client.connect (docs/OPERATIONS.md, 'Integrators')")
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    home = get_home(args)
    found = [
        Listed(name=i.name, tls=i.tls, created_ms=i.created_ms)
        for i in load_integrators(home.keys_dir)
    ]
    rows = [("NAME", "TLS", "ADDED")] + [
        (i.name, "yes" if i.tls else "no", fmt_time(i.created_ms, home.config.node.tz))
        for i in found
    ]
    return show(args, found, lambda: table(rows) if found else "no integrators")


def cmd_revoke(args: argparse.Namespace) -> int:
    home = get_home(args)
    revoke_integrator(home.keys_dir, args.name)
    live = _tell_daemon(home)
    done = IntegratorRevoked(name=args.name, revoked=True, live=live)
    when = "its connections are closed" if live else "the node is not running"
    return show(args, done, lambda: f"integrator {args.name} revoked; {when}")


def _tell_daemon(home: Home) -> bool:
    """Have a running daemon reload its server's accounts; False if none runs or it did
    not answer (the account file is written: the next start takes it)."""
    try:
        ask(home, "integrator.reload", NoArgs(), int)
    except DaemonUnavailable:
        return False
    except RrnError as exc:
        print(f"rrn: the daemon did not take it now ({exc}); restart the node", file=sys.stderr)
        return False
    return True


def _url(home: Home) -> str:
    with contextlib.suppress(DaemonUnavailable):
        url = daemon_info(home).get("nats_url")
        if isinstance(url, str) and url:
            return url
    n = home.config.nats
    return f"nats://{n.host}:{n.port}"
