"""`rrn collective propose|join|withdraw|sign|show|list`: supporters acting together.

Owns the command line of collective actions (PROTOCOL 4.9): the threshold as
`--need ROLE=N`, the deadline as a time or a duration from now, the text read
from a file and sealed to the daemon before it leaves this process, the text's
SHA-256 computed here for `sign --text`, and each proposal as its state allows
this member to see it. rrn sends nothing outside the network: `show` prints the
text and its signatories for the organisation to send through its own channel.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.node.cli.common import (
    Parser,
    alert_ref,
    duration_ms,
    get_home,
    home_arg,
    id_ref,
    json_arg,
    show,
    values,
)
from rrn.node.cli.output import fmt_time, table
from rrn.node.cli.support import time_ms
from rrn.node.control.client import ask, daemon_info
from rrn.node.control.transit import open_reply, seal_request
from rrn.node.home.layout import Home
from rrn.node.ops.collective import (
    MAX_TEXT,
    CollectiveInfo,
    CollectiveListArgs,
    CollectiveSignArgs,
    ProposalRefArgs,
    ProposeArgs,
)
from rrn.protocol.collective import Quota
from rrn.protocol.errors import ConfigError
from rrn.protocol.roster import Role
from rrn.protocol.vocabulary import ActionType, Channel

__all__ = ["add_collective_parsers"]


def add_collective_parsers(top: Any) -> None:
    sub = top.add_parser(
        "collective", help="collective actions: pledges that bind once enough supporters join"
    ).add_subparsers(dest="collective_command", required=True, parser_class=Parser)
    p = sub.add_parser(
        "propose",
        help="propose a collective action on an alert (a joint letter, visit, statement)",
        description="Supporters join with a conditional pledge: it binds them only if every "
        "--need is met by the deadline. Until then nobody is shown who joined; once met, "
        "every joiner is committed and told who else joined.",
    )
    home_arg(p)
    json_arg(p)
    p.add_argument("alert")
    p.add_argument("--action", required=True, choices=values(ActionType))
    p.add_argument("--channel", default="private", choices=values(Channel))
    p.add_argument(
        "--need",
        action="append",
        required=True,
        metavar="ROLE=N",
        help=f"at least N joiners with this role ({', '.join(values(Role))}); repeat",
    )
    p.add_argument(
        "--deadline", required=True, metavar="WHEN", help="ISO time, or a duration like 6h, 2d"
    )
    who = "who may join: members with this role (default: the roles of --need)"
    p.add_argument("--role", action="append", default=[], choices=values(Role), help=who)
    p.add_argument("--member", action="append", default=[], type=str.lower, metavar="ORG",
                   help="who may join: this member (repeat)")  # fmt: skip
    p.add_argument(
        "--text", metavar="FILE", help="the text or its summary (- for stdin), sealed to the "
        "alert's audience",
    )  # fmt: skip
    p.set_defaults(func=cmd_propose)

    for name, func, text in (
        ("join", cmd_join, "join: binds this member if the threshold is met by the deadline"),
        ("withdraw", cmd_withdraw, "withdraw a join (after the threshold: recorded as such)"),
        ("show", cmd_show, "a proposal, its text, and (once met) who is committed and signed"),
    ):
        p = sub.add_parser(name, help=text)
        home_arg(p)
        json_arg(p)
        p.add_argument("proposal", help="proposal id (or its first 6+ hex digits)")
        p.set_defaults(func=func)

    p = sub.add_parser("sign", help="sign the joint text (committed members)")
    home_arg(p)
    json_arg(p)
    p.add_argument("proposal")
    p.add_argument("--text", metavar="FILE", help="the final text (default: the text proposed)")
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("list", help="collective proposals on open alerts")
    home_arg(p)
    json_arg(p)
    p.add_argument("--all", action="store_true", help="closed alerts' proposals too")
    p.set_defaults(func=cmd_list)


def _ref(text: str) -> str:
    return id_ref(text, "proposal", "rrn collective list")


def _quota(spec: str) -> Quota:
    match = re.fullmatch(r"([a-z]+)=([0-9]+)", spec.strip().lower())
    if match is None or match[1] not in values(Role) or not 1 <= int(match[2]) <= 64:
        raise ConfigError(f"--need {spec!r}: give ROLE=N, ROLE one of {', '.join(values(Role))}")
    return Quota(role=Role(match[1]), count=int(match[2]))


def _when(text: str) -> int:
    if re.fullmatch(r"[0-9]+[smhd]", text):
        return int(time.time() * 1000) + duration_ms("--deadline", text)
    return time_ms(text, "--deadline")


def _read(source: str) -> bytes:
    """A text file's bytes (or stdin's); errors never repeat the text."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read --text {source}: {exc.strerror}") from exc
    if not data:
        raise ConfigError(f"--text {source} is empty")
    if len(data) > MAX_TEXT:
        raise ConfigError(f"--text {source} is over {MAX_TEXT // 1024} KiB; give a summary")
    return data


def cmd_propose(args: argparse.Namespace) -> int:
    home = get_home(args)
    text = seal_request(_read(args.text), daemon_info(home)) if args.text else None
    request = ProposeArgs(
        alert=alert_ref(args.alert),
        action=ActionType(args.action),
        channel=Channel(args.channel),
        threshold=[_quota(n) for n in args.need],
        deadline_ms=_when(args.deadline),
        roles=[Role(r) for r in args.role],
        members=list(args.member),
        text=text,
    )
    info = ask(home, "collective.propose", request, CollectiveInfo)
    return show(args, info, lambda: "proposed\n" + describe(info, home.config.node.tz))


def cmd_join(args: argparse.Namespace) -> int:
    return _change(args, "collective.join", "joined")


def cmd_withdraw(args: argparse.Namespace) -> int:
    return _change(args, "collective.withdraw", "withdrawn")


def _change(args: argparse.Namespace, op: str, done: str) -> int:
    home = get_home(args)
    info = ask(home, op, ProposalRefArgs(proposal=_ref(args.proposal)), CollectiveInfo)
    return show(args, info, lambda: f"{done}\n" + describe(info, home.config.node.tz))


def cmd_sign(args: argparse.Namespace) -> int:
    home = get_home(args)
    digest = hashlib.sha256(_read(args.text)).digest() if args.text else None
    request = CollectiveSignArgs(proposal=_ref(args.proposal), text=digest)
    info = ask(home, "collective.sign", request, CollectiveInfo)
    return show(args, info, lambda: "signed\n" + describe(info, home.config.node.tz))


def cmd_show(args: argparse.Namespace) -> int:
    home = get_home(args)
    info = show_proposal(home, _ref(args.proposal))
    return show(args, info, lambda: describe(info, home.config.node.tz, text=True))


def show_proposal(home: Home, ref: str) -> CollectiveInfo:
    """A proposal with its text opened (sealed to a one-request key on the way)."""
    one_time = X25519PrivateKey.generate()
    request = ProposalRefArgs(proposal=ref, reply_to=one_time.public_key().public_bytes_raw())
    info = ask(home, "collective.show", request, CollectiveInfo)
    if info.sealed_text is None:
        return info
    net = bytes.fromhex(str(daemon_info(home)["net"]))
    text = open_reply(info.sealed_text, one_time, home.config.node.org, net)
    shown = text.decode("utf-8", errors="replace")
    return msgspec.structs.replace(info, sealed_text=None, text=shown)


def cmd_list(args: argparse.Namespace) -> int:
    home = get_home(args)
    found = ask(home, "collective.list", CollectiveListArgs(all=args.all), list[CollectiveInfo])
    tz = home.config.node.tz
    rows = [("proposal", "alert", "action", "by", f"deadline ({tz})", "needs", "state", "you")]
    rows += [
        (i.proposal[:12], i.alert[:12], i.action, i.proposer, fmt_time(i.deadline_ms, tz),
         _needs(i), i.state, i.mine if i.mine != "none" else "may join" if i.eligible else "")
        for i in found
    ]  # fmt: skip
    return show(args, found, lambda: table(rows) if found else "no collective proposals")


def _needs(i: CollectiveInfo) -> str:
    return ", ".join(
        f"{i.joined_by_role.get(r, 0)}/{n} {r}" for r, n in sorted(i.threshold.items())
    )


def describe(i: CollectiveInfo, tz: str, *, text: bool = False) -> str:
    """A proposal as text: joiners are named only once the threshold is met."""
    lines = [
        f"proposal {i.proposal[:12]} on alert {i.alert[:12]} by {i.proposer}: "
        f"{i.action} ({i.channel})",
        f"  state {i.state}; deadline {fmt_time(i.deadline_ms, tz)}; joined {_needs(i)}",
        f"  you: {i.mine}" + ("" if i.eligible or i.mine != "none" else " (may not join)"),
    ]
    if i.met_ms is not None:
        lines.append(f"  met {fmt_time(i.met_ms, tz)}; committed: {', '.join(i.committed)}")
    if i.withdrew_after:
        lines.append(f"  withdrew after it was met: {', '.join(i.withdrew_after)}")
    for digest, orgs in sorted(i.signatures.items()):
        which = "the text proposed" if digest == i.text_hash else f"text {digest[:16]}"
        lines.append(f"  signed {which}: {', '.join(orgs)}")
    if text and i.text is not None:
        lines += ["", i.text]
    elif text:
        lines.append("  (no text this member can open)")
    return "\n".join(lines)
