"""`rrn network genesis|sign|adopt|export` and `rrn peers`.

Owns the command line of founding and joining: the documents founders and
joiners exchange (node/membership/founding.py), and the peers view. Roster
changes on a running network are `rrn member …` (node/cli/members.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rrn.node.cli.common import (
    escalation_arg,
    get_home,
    home_arg,
    json_arg,
    policy_of,
    run,
    show,
    state_arg,
    states_of,
    stopped,
)
from rrn.node.cli.documents import NetworkAdopted, NetworkExported, RosterMade, RosterSigned
from rrn.node.cli.members import add_member_parsers
from rrn.node.control.client import ask
from rrn.node.home.clock import SystemClock
from rrn.node.membership.founding import (
    adopt_network,
    certs_of,
    export_network,
    genesis_document,
    read_card,
    read_document,
    sign_document,
    write_document,
)
from rrn.node.ops.members import PeerInfo
from rrn.node.ops.types import NoArgs
from rrn.protocol.errors import ConfigError

__all__ = ["add_network_parsers"]


def add_network_parsers(sub: Any) -> None:
    """Register the membership, network and peers commands."""
    add_member_parsers(sub.add_parser("member", help="cards and roster changes"))
    _network_parsers(sub.add_parser("network", help="found, join and export a network"))
    p = sub.add_parser("peers", help="each member's link, heartbeat, lag and clock skew")
    home_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_peers)


def _network_parsers(network: argparse.ArgumentParser) -> None:
    sub = network.add_subparsers(dest="network_command", required=True)
    p = sub.add_parser("genesis", help="start a genesis roster from founders' cards")
    home_arg(p)
    json_arg(p)
    p.add_argument("--card", action="append", type=Path, default=[], required=True)
    p.add_argument("--threshold", type=int)
    escalation_arg(p)
    state_arg(p)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_genesis)

    p = sub.add_parser("sign", help="add this node's approval to a roster proposal file")
    home_arg(p)
    json_arg(p)
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("adopt", help="make this home a member of a network (daemon stopped)")
    home_arg(p)
    json_arg(p)
    p.add_argument("file", type=Path, help="a network document or a fully signed genesis")
    p.add_argument("--set-aside-history", action="store_true")
    p.set_defaults(func=cmd_adopt)

    p = sub.add_parser("export", help="the roster certificates a joiner adopts")
    home_arg(p)
    json_arg(p)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_export)


# -- member -------------------------------------------------------------------------


# -- network --------------------------------------------------------------------------


def cmd_genesis(args: argparse.Namespace) -> int:
    home = get_home(args)
    cards = [read_card(p) for p in args.card]
    policy = policy_of(args)
    doc = genesis_document(
        home,
        home.keys(),
        cards,
        threshold=args.threshold,
        clock=SystemClock(),
        policy=policy,
        states=states_of(args.states),
    )
    write_document(args.out, doc)
    orgs = [m["org"] for m in doc["members"]]
    made = RosterMade(roster_id=doc["roster_id"], members=orgs, file=str(args.out))
    return show(
        args,
        made,
        lambda: (
            f"genesis roster {doc['roster_id'][:12]} for {', '.join(orgs)} written to "
            f"{args.out}\neach founder now checks it and runs: rrn network sign --home HOME "
            f"{args.out}"
        ),
    )


def cmd_sign(args: argparse.Namespace) -> int:
    home = get_home(args)
    doc = read_document(args.file, "rrn/roster-proposal")
    signed = sign_document(doc, args.file, home, home.keys())
    write_document(args.file, signed)
    members = {m["org"] for m in signed["members"]}
    approved = {a["org"] for a in signed["approvals"]}
    missing = sorted(members - approved)
    done = RosterSigned(
        roster_id=signed["roster_id"], signed_by=home.config.node.org, missing=missing
    )
    return show(
        args,
        done,
        lambda: (
            f"signed roster {signed['roster_id'][:12]} as {home.config.node.org}\n"
            + (f"still to sign: {', '.join(missing)}" if missing else "every member has signed")
        ),
    )


def cmd_adopt(args: argparse.Namespace) -> int:
    home = get_home(args)
    doc = json.loads(args.file.read_text()) if args.file.exists() else None
    if not isinstance(doc, dict) or doc.get("type") not in ("rrn/network", "rrn/roster-proposal"):
        raise ConfigError(f"{args.file} is not a network or genesis document")
    certs = certs_of(doc, args.file)
    with stopped(home, "rrn network adopt", "adopting changes the store it uses"):
        network = run(
            adopt_network(
                home, home.keys(), certs, clock=SystemClock(), keep_history=args.set_aside_history
            )
        )
    adopted = NetworkAdopted(
        org=home.config.node.org,
        network=network.net.hex(),
        roster_version=network.roster_version,
        members=network.roster.orgs(),
    )
    return show(
        args,
        adopted,
        lambda: (
            f"{home.config.node.org} is now a member of network {network.net.hex()[:16]} "
            f"(roster version {network.roster_version}, {len(network.roster.members)} members)"
        ),
    )


def cmd_export(args: argparse.Namespace) -> int:
    home = get_home(args)
    doc = run(export_network(home.store_path))
    write_document(args.out, doc)
    net = str(doc["network"])
    done = NetworkExported(network=net, roster_version=doc["version"], file=str(args.out))
    return show(
        args,
        done,
        lambda: f"network {net[:16]} (roster version {doc['version']}) written to {args.out}",
    )


# -- peers -------------------------------------------------------------------------------


def cmd_peers(args: argparse.Namespace) -> int:
    home = get_home(args)
    peers = ask(home, "peers", NoArgs(), list[PeerInfo])
    return show(args, peers, lambda: _peers_text(peers))


def _peers_text(peers: list[PeerInfo]) -> str:
    if not peers:
        return "no other members"
    rows = [("PEER", "LINK", "STATE", "HEARTBEAT", "SKEW", "BEHIND", "RUNS")]
    for p in peers:
        behind = ", ".join(f"{o} {n}" for o, n in sorted(p.behind.items())) or "-"
        if not p.believed:
            behind = "(claims not served)"
        rows.append(
            (
                p.org,
                p.link,
                p.state + (" (live via others)" if p.live and p.state != "up" else ""),
                "-" if p.last_heartbeat_s is None else f"{p.last_heartbeat_s:.1f}s ago",
                "-" if p.clock_skew_s is None else f"{p.clock_skew_s:+.1f}s",
                behind,
                f"rrn {p.rrn}, tz {p.tz_database}, lock {(p.lock or '-')[:12]}" if p.rrn else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


# -- devnet ------------------------------------------------------------------------------
