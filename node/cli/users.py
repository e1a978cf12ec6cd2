"""`rrn user add|list|disable|enable|reset|role`: the people who use the web console.

Each person gets a name, a role (admin, coordinator, responder, liaison, viewer;
docs/CONSOLE.md says what each may do) and a one-time password, shown once,
that they replace at their first login. The daemon may be running: the console
reads the people at each login, and disabling or resetting someone ends their
sessions at once.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

import msgspec

from rrn.node.cli.common import Parser, get_home, home_arg, json_arg, show
from rrn.node.cli.output import fmt_time, table
from rrn.node.console.people import People, Person, Role, open_db
from rrn.node.control.client import daemon_info
from rrn.node.home.layout import Home
from rrn.protocol.errors import DaemonUnavailable

__all__ = ["UserInfo", "UserMade", "add_user_parsers"]


class UserMade(msgspec.Struct, frozen=True, kw_only=True):
    """A new person, or a reset one (`rrn user add|reset --json`)."""

    name: str
    role: str
    #: To give to the person; they choose their own at the first login. Shown once.
    one_time_password: str
    console_url: str


class UserInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A person, without any secret (`rrn user list|disable|enable|role --json`)."""

    name: str
    role: str
    totp: bool
    disabled: bool
    locked: bool
    must_change_password: bool
    created_ms: int


def add_user_parsers(sub: Any) -> None:
    top = sub.add_parser("user", help="the people who use this node's web console")
    inner = top.add_subparsers(dest="user_command", required=True, parser_class=Parser)
    roles = [str(r) for r in Role]
    p = inner.add_parser("add", help="a new person, with a one-time password")
    _common(p)
    p.add_argument("name", help="1-32 lowercase letters, digits, '.', '_' or '-'")
    p.add_argument("--role", required=True, choices=roles)
    p.set_defaults(func=cmd_add)
    p = inner.add_parser("list", help="the people (never their passwords)")
    _common(p)
    p.set_defaults(func=cmd_list)
    for name, text in (("disable", "stop someone logging in"), ("enable", "let them in again")):
        p = inner.add_parser(name, help=text)
        _common(p)
        p.add_argument("name")
        p.set_defaults(func=cmd_disable, disabled=name == "disable")
    p = inner.add_parser("reset", help="a new one-time password (e.g. forgotten, locked out)")
    _common(p)
    p.add_argument("name")
    p.add_argument("--totp", action="store_true", help="also remove their second factor")
    p.set_defaults(func=cmd_reset)
    p = inner.add_parser("role", help="change someone's role")
    _common(p)
    p.add_argument("name")
    p.add_argument("role", choices=roles)
    p.set_defaults(func=cmd_role)


def _common(p: argparse.ArgumentParser) -> None:
    home_arg(p)
    json_arg(p)


def _people(home: Home) -> People:
    return People(open_db(home.console_db))


def _info(p: Person) -> UserInfo:
    return UserInfo(
        name=p.name,
        role=str(p.role),
        totp=p.totp,
        disabled=p.disabled,
        locked=p.locked_until_ms > time.time() * 1000,
        must_change_password=p.must_change,
        created_ms=p.created_ms,
    )


def console_url(home: Home) -> str:
    """Where the console is: the running daemon's address, else the configured one."""
    with contextlib.suppress(DaemonUnavailable):
        url = daemon_info(home).get("console_url")
        if isinstance(url, str) and url:
            return url
    c = home.config.console
    scheme = "https" if c.tls_cert else "http"
    return c.public_url or f"{scheme}://{c.host}:{c.port}/"


def _made(args: argparse.Namespace, home: Home, person: Person, password: str, verb: str) -> int:
    url = console_url(home)
    role = str(person.role)
    made = UserMade(name=person.name, role=role, one_time_password=password, console_url=url)
    return show(
        args,
        made,
        lambda: (
            f"user {person.name} {verb} ({role})\n"
            f"  one-time password  {password}   (give it to them; shown once)\n"
            f"  console            {url}   (they choose their own password at the first login)"
        ),
    )


def cmd_add(args: argparse.Namespace) -> int:
    home = get_home(args)
    people = _people(home)
    password = people.add(args.name, Role(args.role), int(time.time() * 1000))
    person = people.get(args.name)
    assert person is not None
    return _made(args, home, person, password, "added")


def cmd_reset(args: argparse.Namespace) -> int:
    home = get_home(args)
    people = _people(home)
    password = people.reset(args.name, totp=args.totp)
    person = people.get(args.name)
    assert person is not None
    return _made(args, home, person, password, "reset")


def cmd_list(args: argparse.Namespace) -> int:
    home = get_home(args)
    found = [_info(p) for p in _people(home).all()]
    rows = [("NAME", "ROLE", "2FA", "STATE", "ADDED")] + [
        (
            u.name,
            u.role,
            "yes" if u.totp else "no",
            "disabled" if u.disabled else "locked" if u.locked else "active",
            fmt_time(u.created_ms, home.config.node.tz),
        )
        for u in found
    ]
    return show(args, found, lambda: table(rows) if found else "no users (rrn user add)")


def cmd_disable(args: argparse.Namespace) -> int:
    home = get_home(args)
    people = _people(home)
    people.set_disabled(args.name, args.disabled)
    return _one(args, people, "disabled; their sessions ended" if args.disabled else "enabled")


def cmd_role(args: argparse.Namespace) -> int:
    home = get_home(args)
    people = _people(home)
    people.set_role(args.name, Role(args.role))
    return _one(args, people, f"is now {args.role}")


def _one(args: argparse.Namespace, people: People, what: str) -> int:
    person = people.get(args.name)
    assert person is not None
    return show(args, _info(person), lambda: f"user {args.name} {what}")
