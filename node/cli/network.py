"""`rrn member …`, `rrn network …`, `rrn peers` and `rrn devnet …`.

Owns the command line of membership: the documents founders and joiners
exchange (node/founding.py), roster changes on a running node
(node/members.py), the peers view, and local devnets (node/devnet.py).
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any

from rrn.node.cli.common import get_home, home_arg, json_arg, require_stopped, run, show, values
from rrn.node.control.client import call
from rrn.node.devnet.devnet import create_devnet, load_devnet, remove_devnet
from rrn.node.home.clock import SystemClock
from rrn.node.home.keys import new_signing_key
from rrn.node.home.layout import Home
from rrn.node.membership.founding import (
    adopt_network,
    card_document,
    certs_of,
    export_network,
    genesis_document,
    proposal_document,
    proposal_of,
    read_card,
    read_document,
    sign_document,
    write_document,
)
from rrn.node.membership.policy import parse_policy
from rrn.node.ops.members import ApproveArgs, PeerInfo, ProposalInfo, ProposeArgs
from rrn.node.ops.types import NoArgs, StatusInfo
from rrn.protocol.countries import is_country
from rrn.protocol.errors import ConfigError
from rrn.protocol.roster import Role

__all__ = ["add_network_parsers"]


def add_network_parsers(sub: Any) -> None:
    """Register the membership, network, peers and devnet commands."""
    _member_parsers(sub.add_parser("member", help="cards and roster changes"))
    _network_parsers(sub.add_parser("network", help="found, join and export a network"))
    p = sub.add_parser("peers", help="each member's link, heartbeat, lag and clock skew")
    home_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_peers)
    _devnet_parsers(sub.add_parser("devnet", help="a local network of several nodes"))


def _member_parsers(member: argparse.ArgumentParser) -> None:
    sub = member.add_subparsers(dest="member_command", required=True)
    p = sub.add_parser("card", help="this organisation's signed card")
    home_arg(p)
    p.add_argument("--out", type=Path, help="write to this file (default: stdout)")
    p.set_defaults(func=cmd_card)

    p = sub.add_parser(
        "new-key", help="make the next signing key epoch (then: card, propose --rotate)"
    )
    home_arg(p)
    p.set_defaults(func=cmd_new_key)

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
    _state_arg(p)
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
    _escalation_arg(p)
    p.add_argument("--out", type=Path, help="also write the proposal document here")
    p.set_defaults(func=cmd_propose)

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


def _network_parsers(network: argparse.ArgumentParser) -> None:
    sub = network.add_subparsers(dest="network_command", required=True)
    p = sub.add_parser("genesis", help="start a genesis roster from founders' cards")
    home_arg(p)
    p.add_argument("--card", action="append", type=Path, default=[], required=True)
    p.add_argument("--threshold", type=int)
    _escalation_arg(p)
    _state_arg(p)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_genesis)

    p = sub.add_parser("sign", help="add this node's approval to a roster proposal file")
    home_arg(p)
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("adopt", help="make this home a member of a network (daemon stopped)")
    home_arg(p)
    p.add_argument("file", type=Path, help="a network document or a fully signed genesis")
    p.add_argument("--set-aside-history", action="store_true")
    p.set_defaults(func=cmd_adopt)

    p = sub.add_parser("export", help="the roster certificates a joiner adopts")
    home_arg(p)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_export)


def _escalation_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--escalation",
        metavar="SPEC",
        help="escalation policy: step time by urgency, and members asked one by one "
        "before the fallback pool, e.g. immediate=10m,days=2h,weeks=12h,direct=3 "
        "(any subset; the rest stays as it is)",
    )


def _devnet_parsers(devnet: argparse.ArgumentParser) -> None:
    sub = devnet.add_subparsers(dest="devnet_command", required=True)
    p = sub.add_parser("up", help="create N organisations on loopback and start them")
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--nat", help="nodes behind NAT, e.g. 3,4 (default: every third)")
    p.add_argument("--threshold", type=int)
    _escalation_arg(p)
    p.add_argument("--no-start", action="store_true")
    p.set_defaults(func=cmd_devnet_up)
    for name, helptext in (("stop", "stop one node"), ("start", "start one node")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--dir", type=Path, required=True)
        p.add_argument("--node", type=int, required=True)
        if name == "stop":
            p.add_argument("--kill", action="store_true", help="SIGKILL daemon and nats-server")
        p.set_defaults(func=cmd_devnet_stop if name == "stop" else cmd_devnet_start)
    p = sub.add_parser("down", help="stop every node and delete the devnet")
    p.add_argument("--dir", type=Path, required=True)
    p.set_defaults(func=cmd_devnet_down)
    p = sub.add_parser("status", help="the devnet's nodes")
    p.add_argument("--dir", type=Path, required=True)
    p.set_defaults(func=cmd_devnet_status)


# -- member -------------------------------------------------------------------------


def cmd_card(args: argparse.Namespace) -> int:
    home = get_home(args)
    doc = card_document(home, home.keys(), SystemClock())
    if args.out is None:
        print(json.dumps(doc, indent=2))
    else:
        write_document(args.out, doc)
        print(
            f"card of {doc['org']} written to {args.out}; TLS fingerprint {doc['tls_fingerprint']}"
        )
    return 0


def cmd_new_key(args: argparse.Namespace) -> int:
    home = get_home(args)
    epoch = new_signing_key(home.keys_dir)
    print(
        f"made signing key epoch {epoch} (keys/sign-{epoch}.pem). Next: 'rrn member card' "
        "and hand the card to a member who proposes it with --rotate (and --cut if the "
        "old key is compromised); sign that proposal with 'rrn network sign'. The node "
        f"signs with epoch {epoch} once the roster that lists it is adopted."
    )
    return 0


def _card_bytes(path: Path) -> bytes:
    doc = read_document(path, "rrn/card")
    read_card(path)  # checks it before the daemon sees it
    return base64.b64decode(doc["card"])


def _cut(spec: str) -> tuple[str, int, int]:
    parts = spec.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise ConfigError(f"--cut {spec!r}: use ORG:EPOCH:LAST_SEQ (e.g. quito-x:1:41)")
    return parts[0], int(parts[1]), int(parts[2])


def _state_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state",
        dest="states",
        action="append",
        default=[],
        metavar="ORG=CC",
        help="the state a diplomatic mission (role embassy) represents, so alerts can "
        "exclude the missions of a perpetrator state (ORG= clears it)",
    )


def _states(specs: list[str]) -> dict[str, str]:
    found = {}
    for spec in specs:
        org, sep, state = spec.partition("=")
        if not org or not sep or (state and not is_country(state)):
            raise ConfigError(f"--state {spec!r}: use ORG=CC with an ISO 3166-1 alpha-2 code")
        found[org] = state
    return found


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
        states=_states(args.states),
        rotate=[_card_bytes(p) for p in args.rotate],
        cut=[_cut(c) for c in args.cut],
        threshold=args.threshold,
        escalation=args.escalation,
    )
    if args.escalation is not None:
        parse_policy(args.escalation)  # a clear error here rather than from the daemon
    changes = (
        propose.add,
        propose.remove,
        propose.roles,
        propose.states,
        propose.rotate,
        propose.cut,
    )
    if not any(changes) and propose.threshold is None and propose.escalation is None:
        raise ConfigError(
            "nothing to propose: give --add, --remove, --roles, --rotate, --cut, --threshold "
            "or --escalation"
        )
    info = run(call(home, "member.propose", propose, ProposalInfo))
    if args.out is not None:
        _write_proposal(args.out, info, home)
    return show(args, info, lambda: _proposal_text(info))


def _write_proposal(path: Path, info: ProposalInfo, home: Home) -> None:
    assert info.roster is not None
    net = bytes.fromhex(run(call(home, "status", NoArgs(), StatusInfo)).network)
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
    info = run(call(home, "member.approve", approve, ProposalInfo))
    return show(args, info, lambda: _proposal_text(info))


def cmd_proposals(args: argparse.Namespace) -> int:
    home = get_home(args)
    infos = run(call(home, "member.proposals", NoArgs(), list[ProposalInfo]))
    return show(
        args, infos, lambda: "\n".join(_proposal_text(i) for i in infos) or "no pending proposals"
    )


def _proposal_text(i: ProposalInfo) -> str:
    state = "valid: adopting" if i.valid_now else f"waiting: {i.problem or 'not seen yet'}"
    return (
        f"roster {i.roster_id[:12]} (version {i.version}) proposed by {i.proposed_by or '?'}; "
        f"approved by {', '.join(i.approved_by) or 'nobody'}; needs {i.threshold_needed}; {state}"
    )


# -- network --------------------------------------------------------------------------


def cmd_genesis(args: argparse.Namespace) -> int:
    home = get_home(args)
    cards = [read_card(p) for p in args.card]
    policy = parse_policy(args.escalation) if args.escalation else None
    doc = genesis_document(
        home,
        home.keys(),
        cards,
        threshold=args.threshold,
        clock=SystemClock(),
        policy=policy,
        states=_states(args.states),
    )
    write_document(args.out, doc)
    orgs = ", ".join(m["org"] for m in doc["members"])
    print(f"genesis roster {doc['roster_id'][:12]} for {orgs} written to {args.out}")
    print("each founder now checks it and runs: rrn network sign --home HOME " + str(args.out))
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    home = get_home(args)
    doc = read_document(args.file, "rrn/roster-proposal")
    signed = sign_document(doc, args.file, home, home.keys())
    write_document(args.file, signed)
    members = {m["org"] for m in signed["members"]}
    approved = {a["org"] for a in signed["approvals"]}
    missing = sorted(members - approved)
    print(f"signed roster {signed['roster_id'][:12]} as {home.config.node.org}")
    print(f"still to sign: {', '.join(missing)}" if missing else "every member has signed")
    return 0


def cmd_adopt(args: argparse.Namespace) -> int:
    home = get_home(args)
    require_stopped(home, "adopting changes the store it uses")
    doc = json.loads(args.file.read_text()) if args.file.exists() else None
    if not isinstance(doc, dict) or doc.get("type") not in ("rrn/network", "rrn/roster-proposal"):
        raise ConfigError(f"{args.file} is not a network or genesis document")
    certs = certs_of(doc, args.file)
    network = run(
        adopt_network(
            home, home.keys(), certs, clock=SystemClock(), keep_history=args.set_aside_history
        )
    )
    print(
        f"{home.config.node.org} is now a member of network {network.net.hex()[:16]} "
        f"(roster version {network.roster_version}, {len(network.roster.members)} members)"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    home = get_home(args)
    doc = run(export_network(home.store_path))
    write_document(args.out, doc)
    net = str(doc["network"])[:16]
    print(f"network {net} (roster version {doc['version']}) written to {args.out}")
    return 0


# -- peers -------------------------------------------------------------------------------


def cmd_peers(args: argparse.Namespace) -> int:
    home = get_home(args)
    peers = run(call(home, "peers", NoArgs(), list[PeerInfo]))
    return show(args, peers, lambda: _peers_text(peers))


def _peers_text(peers: list[PeerInfo]) -> str:
    if not peers:
        return "no other members"
    rows = [("PEER", "LINK", "STATE", "HEARTBEAT", "SKEW", "BEHIND")]
    for p in peers:
        behind = ", ".join(f"{o} {n}" for o, n in sorted(p.behind.items())) or "-"
        rows.append(
            (
                p.org,
                p.link,
                p.state,
                "-" if p.last_heartbeat_s is None else f"{p.last_heartbeat_s:.1f}s ago",
                "-" if p.clock_skew_s is None else f"{p.clock_skew_s:+.1f}s",
                behind,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


# -- devnet ------------------------------------------------------------------------------


def cmd_devnet_up(args: argparse.Namespace) -> int:
    nat = None
    if args.nat:
        try:
            nat = {int(k) for k in args.nat.split(",")}
        except ValueError as exc:
            raise ConfigError("--nat takes node numbers, e.g. 3,4") from exc
    policy = parse_policy(args.escalation) if args.escalation else None
    devnet = run(
        create_devnet(
            args.dir,
            args.nodes,
            clock=SystemClock(),
            nat=nat,
            threshold=args.threshold,
            policy=policy,
        )
    )
    for node in devnet.nodes:
        where = "behind NAT" if node.nat else "reachable"
        if not args.no_start:
            devnet.start(node.index)
        print(f"node {node.index}: {node.org:<13} {node.tz:<20} {where:<10} home {node.home}")
    print(f"logs in {devnet.dir}/<org>.log; stop with: rrn devnet down --dir {devnet.dir}")
    return 0


def cmd_devnet_stop(args: argparse.Namespace) -> int:
    devnet = load_devnet(args.dir)
    stopped = devnet.stop(args.node, kill=args.kill)
    org = devnet.node(args.node).org
    print(f"{org} {'stopped' if stopped else 'was not running'}")
    return 0


def cmd_devnet_start(args: argparse.Namespace) -> int:
    devnet = load_devnet(args.dir)
    pid = devnet.start(args.node)
    print(f"{devnet.node(args.node).org} running (pid {pid})")
    return 0


def cmd_devnet_down(args: argparse.Namespace) -> int:
    devnet = load_devnet(args.dir)
    remove_devnet(devnet)
    print(f"devnet in {args.dir} stopped and removed")
    return 0


def cmd_devnet_status(args: argparse.Namespace) -> int:
    devnet = load_devnet(args.dir)
    running = devnet.running()
    for node in devnet.nodes:
        pid = running[node.index]
        state = f"running (pid {pid})" if pid else "stopped"
        print(f"node {node.index}: {node.org:<13} {state:<20} home {node.home}")
    return 0
