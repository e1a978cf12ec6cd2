"""`rrn member card|new-key|propose|approve|proposals`: cards and roster changes."""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any

from rrn.node.cli.common import (
    escalation_arg,
    get_home,
    home_arg,
    json_arg,
    policy_of,
    show,
    state_arg,
    states_of,
    values,
)
from rrn.node.cli.documents import CardWritten, KeyMade
from rrn.node.control.client import ask
from rrn.node.home.clock import SystemClock
from rrn.node.home.keys import new_signing_key
from rrn.node.home.layout import Home
from rrn.node.membership.founding import (
    card_document,
    proposal_document,
    proposal_of,
    read_card,
    read_document,
    write_document,
)
from rrn.node.ops.members import ApproveArgs, ProposalInfo, ProposeArgs
from rrn.node.ops.types import NoArgs, StatusInfo
from rrn.protocol.errors import ConfigError
from rrn.protocol.roster import Role

__all__ = ["add_member_parsers"]


def add_member_parsers(member: argparse.ArgumentParser) -> None:
    sub = member.add_subparsers(dest="member_command", required=True)
    p = sub.add_parser("card", help="this organisation's signed card")
    home_arg(p)
    json_arg(p)
    p.add_argument("--out", type=Path, help="write to this file (default: stdout)")
    p.set_defaults(func=cmd_card)

    p = sub.add_parser(
        "new-key", help="make the next signing key epoch (then: card, propose --rotate)"
    )
    home_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_new_key)

    _propose_parser(sub)

    p = sub.add_parser("approve", help="approve a pending roster proposal")
    home_arg(p)
    json_arg(p)
    p.add_argument("roster", nargs="?", help="roster id (first 6+ hex digits)")
    p.add_argument("--file", type=Path, help="a proposal document (carries its approvals)")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("proposals", help="pending roster changes")
    home_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_proposals)


def _propose_parser(sub: Any) -> None:
    p = sub.add_parser("propose", help="propose the next roster version")
    home_arg(p)
    json_arg(p)
    p.add_argument(
        "--add",
        action="append",
        type=Path,
        default=[],
        metavar="CARD",
        help="admit the organisation of this card",
    )
    p.add_argument(
        "--remove",
        action="append",
        default=[],
        metavar="ORG",
        help="remove a member (its history stays valid)",
    )
    p.add_argument(
        "--roles",
        action="append",
        default=[],
        metavar="ORG=ROLE[,ROLE]",
        help="change a member's roles",
    )
    state_arg(p)
    p.add_argument(
        "--rotate",
        action="append",
        type=Path,
        default=[],
        metavar="CARD",
        help="add the new signing key epoch in this member's card",
    )
    p.add_argument(
        "--cut",
        action="append",
        default=[],
        metavar="ORG:EPOCH:LAST_SEQ",
        help="invalidate that key epoch's events after LAST_SEQ (compromise)",
    )
    p.add_argument("--threshold", type=int, help="approvals needed from the next version on")
    escalation_arg(p)
    p.add_argument("--out", type=Path, help="also write the proposal document here")
    p.set_defaults(func=cmd_propose)


def cmd_card(args: argparse.Namespace) -> int:
    home = get_home(args)
    doc = card_document(home, home.keys(), SystemClock())
    if args.out is None:
        print(json.dumps(doc, indent=2))  # the card itself is JSON
        return 0
    write_document(args.out, doc)
    done = CardWritten(org=doc["org"], file=str(args.out), tls_fingerprint=doc["tls_fingerprint"])
    return show(
        args,
        done,
        lambda: (
            f"card of {doc['org']} written to {args.out}; TLS fingerprint {doc['tls_fingerprint']}"
        ),
    )


def cmd_new_key(args: argparse.Namespace) -> int:
    home = get_home(args)
    epoch = new_signing_key(home.keys_dir)
    return show(
        args,
        KeyMade(epoch=epoch, file=f"keys/sign-{epoch}.pem"),
        lambda: (
            f"made signing key epoch {epoch} (keys/sign-{epoch}.pem). Next: 'rrn member "
            "card' and hand the card to a member who proposes it with --rotate (and --cut if "
            "the old key is compromised); sign that proposal with 'rrn network sign'. The node "
            f"signs with epoch {epoch} once the roster that lists it is adopted."
        ),
    )


def _card_bytes(path: Path) -> bytes:
    doc = read_document(path, "rrn/card")
    read_card(path)  # checks it before the daemon sees it
    return base64.b64decode(doc["card"])


def _cut(spec: str) -> tuple[str, int, int]:
    parts = spec.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise ConfigError(f"--cut {spec!r}: use ORG:EPOCH:LAST_SEQ (e.g. quito-x:1:41)")
    return parts[0], int(parts[1]), int(parts[2])


def _roles(spec: str) -> tuple[str, list[Role]]:
    org, _, names = spec.partition("=")
    roles = names.split(",") if names else []
    if not org or not roles or not set(roles) <= set(values(Role)):
        raise ConfigError(f"--roles {spec!r}: use ORG=ROLE[,ROLE] with roles from {values(Role)}")
    return org, [Role(r) for r in roles]


def cmd_propose(args: argparse.Namespace) -> int:
    home = get_home(args)
    propose = ProposeArgs(
        add=[_card_bytes(p) for p in args.add],
        remove=list(args.remove),
        roles=dict(_roles(r) for r in args.roles),
        states=states_of(args.states),
        rotate=[_card_bytes(p) for p in args.rotate],
        cut=[_cut(c) for c in args.cut],
        threshold=args.threshold,
        escalation=args.escalation,
        limits=args.limits,
        links=args.links,
    )
    policy_of(args)  # a clear error here rather than from the daemon
    changes = (
        propose.add,
        propose.remove,
        propose.roles,
        propose.states,
        propose.rotate,
        propose.cut,
    )
    if not any(changes) and propose.threshold is None and policy_of(args) is None:
        raise ConfigError(
            "nothing to propose: give --add, --remove, --roles, --rotate, --cut, --threshold, "
            "--escalation, --limits or --links"
        )
    info = ask(home, "member.propose", propose, ProposalInfo)
    if args.out is not None:
        _write_proposal(args.out, info, home)
    return show(args, info, lambda: _proposal_text(info))


def _write_proposal(path: Path, info: ProposalInfo, home: Home) -> None:
    assert info.roster is not None
    net = bytes.fromhex(ask(home, "status", NoArgs(), StatusInfo).network)
    write_document(path, proposal_document(info.roster, list(info.approvals), net))


def cmd_approve(args: argparse.Namespace) -> int:
    home = get_home(args)
    if args.file is not None:
        roster_bytes, approvals = proposal_of(
            read_document(args.file, "rrn/roster-proposal"), args.file
        )
        approve = ApproveArgs(roster_bytes=roster_bytes, approvals=approvals)
    elif args.roster:
        approve = ApproveArgs(roster=args.roster.lower())
    else:
        raise ConfigError("name the proposal: a roster id, or --file with its document")
    info = ask(home, "member.approve", approve, ProposalInfo)
    return show(args, info, lambda: _proposal_text(info))


def cmd_proposals(args: argparse.Namespace) -> int:
    home = get_home(args)
    infos = ask(home, "member.proposals", NoArgs(), list[ProposalInfo])
    return show(
        args, infos, lambda: "\n".join(_proposal_text(i) for i in infos) or "no pending proposals"
    )


def _proposal_text(i: ProposalInfo) -> str:
    state = "valid: adopting" if i.valid_now else f"waiting: {i.problem or 'not seen yet'}"
    return (
        f"roster {i.roster_id[:12]} (version {i.version}) proposed by {i.proposed_by or '?'}; "
        f"approved by {', '.join(i.approved_by) or 'nobody'}; needs {i.threshold_needed}; {state}"
    )
