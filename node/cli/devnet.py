"""`rrn devnet up|stop|start|down|status|fault`: a local network of several nodes."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from rrn.node.cli.common import escalation_arg, json_arg, policy_of, run, show
from rrn.node.cli.devnet_faults import add_fault_parser
from rrn.node.cli.documents import DevnetInfo, DevnetNode, DevnetNodeInfo, DevnetRemoved
from rrn.node.cli.users import console_url
from rrn.node.console.people import People, Role, open_db
from rrn.node.devnet.devnet import Devnet, create_devnet, load_devnet, remove_devnet
from rrn.node.devnet.wan import DEFAULT_PROFILE, load_profile
from rrn.node.home.clock import SystemClock
from rrn.protocol.errors import ConfigError
from rrn.protocol.roster import Role as MemberRole

#: The first person of each devnet console.
_FIRST = "admin"

__all__ = ["add_devnet_parsers"]


def add_devnet_parsers(devnet: argparse.ArgumentParser) -> None:
    sub = devnet.add_subparsers(dest="devnet_command", required=True)
    p = sub.add_parser("up", help="create N organisations on loopback and start them")
    json_arg(p)
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--nat", help="nodes behind NAT, e.g. 3,4, or 'none' (default: every third)")
    p.add_argument("--threshold", type=int)
    p.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="K=ROLE[:STATE]",
        help="node K's roster role instead of responder (company, embassy, investor, "
        "observer; an embassy with the state it represents, e.g. 4=embassy:NL); repeat",
    )
    escalation_arg(p)
    p.add_argument("--no-start", action="store_true")
    p.add_argument(
        "--wan",
        type=Path,
        nargs="?",
        const=DEFAULT_PROFILE,
        metavar="PROFILE",
        help="each node in its own network namespace, links through a fault proxy shaped "
        "as PROFILE says (default: the cities' round trips; needs root)",
    )
    p.set_defaults(func=cmd_devnet_up)
    for name, helptext in (("stop", "stop one node"), ("start", "start one node")):
        p = sub.add_parser(name, help=helptext)
        json_arg(p)
        p.add_argument("--dir", type=Path, required=True)
        p.add_argument("--node", type=int, required=True)
        if name == "stop":
            p.add_argument("--kill", action="store_true", help="SIGKILL daemon and nats-server")
        p.set_defaults(func=cmd_devnet_stop if name == "stop" else cmd_devnet_start)
    p = sub.add_parser("down", help="stop every node and delete the devnet")
    json_arg(p)
    p.add_argument("--dir", type=Path, required=True)
    p.set_defaults(func=cmd_devnet_down)
    p = sub.add_parser("status", help="the devnet's nodes")
    json_arg(p)
    p.add_argument("--dir", type=Path, required=True)
    p.set_defaults(func=cmd_devnet_status)
    add_fault_parser(sub)


def _roles(specs: list[str], n: int) -> tuple[dict[int, list[MemberRole]], dict[int, str]]:
    """Roles and embassies' states from `--role K=ROLE[:STATE]`."""
    roles: dict[int, list[MemberRole]] = {}
    states: dict[int, str] = {}
    for spec in specs:
        match = re.fullmatch(r"([0-9]+)=([a-z]+)(?::([A-Z]{2}))?", spec.strip())
        if match is None or match[2] not in {str(r) for r in MemberRole}:
            raise ConfigError(
                f"--role {spec!r}: give K=ROLE or K=embassy:STATE, ROLE one of "
                f"{', '.join(str(r) for r in MemberRole)}"
            )
        k = int(match[1])
        if not 1 <= k <= n:
            raise ConfigError(f"--role {spec!r}: there is no node {k} of {n}")
        roles[k] = [MemberRole(match[2])]
        if match[3]:
            if match[2] != "embassy":
                raise ConfigError(f"--role {spec!r}: only an embassy represents a state")
            states[k] = match[3]
    return roles, states


def _progress(text: str) -> None:
    """A step of long work, on stderr (stdout stays what --json promises)."""
    print(text, file=sys.stderr, flush=True)


def _nodes(devnet: Devnet, logins: dict[int, str] | None = None) -> list[DevnetNode]:
    running = devnet.running()
    return [
        DevnetNode(
            node=n.index,
            org=n.org,
            tz=n.tz,
            nat=n.nat,
            home=str(n.home),
            pid=running[n.index],
            console_url=console_url(n.home_obj()) if running[n.index] else None,
            console_user=_FIRST if logins else None,
            one_time_password=(logins or {}).get(n.index),
            address=devnet.lan.ip(n.index) if devnet.lan else None,
            namespace=devnet.lan.ns(n.index) if devnet.lan else None,
        )
        for n in devnet.nodes
    ]


def _table(nodes: list[DevnetNode]) -> str:
    lines = []
    for n in nodes:
        where = "behind NAT" if n.nat else "reachable"
        state = f"running (pid {n.pid})" if n.pid else "stopped"
        lines.append(f"node {n.node}: {n.org:<13} {n.tz:<20} {where:<10} {state:<20} home {n.home}")
        if n.namespace:
            lines.append(f"        address {n.address} in network namespace {n.namespace}")
        if n.console_url:
            login = (
                f"  log in as {n.console_user} / {n.one_time_password}" if n.console_user else ""
            )
            lines.append(f"        console {n.console_url}{login}")
    return "\n".join(lines)


def _first_logins(devnet: Devnet) -> dict[int, str]:
    """An admin in each node's console, with a one-time password (shown once)."""
    now = int(time.time() * 1000)
    return {
        n.index: People(open_db(n.home_obj().console_db)).add(_FIRST, Role.ADMIN, now)
        for n in devnet.nodes
    }


def cmd_devnet_up(args: argparse.Namespace) -> int:
    nat = None
    if args.nat == "none":
        nat = set()
    elif args.nat:
        try:
            nat = {int(k) for k in args.nat.split(",")}
        except ValueError as exc:
            raise ConfigError("--nat takes node numbers, e.g. 3,4") from exc
    policy = policy_of(args)
    roles, states = _roles(args.role, args.nodes)
    wan = load_profile(args.wan) if args.wan is not None else None
    where = "" if wan is None else ", each in its own network namespace"
    _progress(f"creating {args.nodes} organisations in {args.dir} (keys, founding roster{where})")
    devnet = run(
        create_devnet(
            args.dir,
            args.nodes,
            clock=SystemClock(),
            nat=nat,
            threshold=args.threshold,
            policy=policy,
            roles=roles,
            states=states,
            wan=wan,
        )
    )
    logins = _first_logins(devnet)
    if not args.no_start:
        for node in devnet.nodes:
            _progress(f"starting node {node.index} of {len(devnet.nodes)}: {node.org}")
            devnet.start(node.index)
    nodes = _nodes(devnet, logins)
    return show(
        args,
        DevnetInfo(dir=str(devnet.dir), nodes=nodes),
        lambda: (
            _table(nodes)
            + f"\nlogs in {devnet.dir}/<org>.log; stop with: rrn devnet down --dir {devnet.dir}"
        ),
    )


def cmd_devnet_stop(args: argparse.Namespace) -> int:
    devnet = load_devnet(args.dir)
    org = devnet.node(args.node).org
    _progress(f"stopping {org}")
    stopped = devnet.stop(args.node, kill=args.kill)
    return show(
        args,
        DevnetNodeInfo(node=args.node, org=org, stopped=stopped),
        lambda: f"{org} {'stopped' if stopped else 'was not running'}",
    )


def cmd_devnet_start(args: argparse.Namespace) -> int:
    devnet = load_devnet(args.dir)
    org = devnet.node(args.node).org
    _progress(f"starting {org} (waits until it is ready)")
    pid = devnet.start(args.node)
    return show(
        args, DevnetNodeInfo(node=args.node, org=org, pid=pid), lambda: f"{org} running (pid {pid})"
    )


def cmd_devnet_down(args: argparse.Namespace) -> int:
    devnet = load_devnet(args.dir)
    _progress(f"stopping {len(devnet.nodes)} nodes")
    remove_devnet(devnet)
    return show(
        args,
        DevnetRemoved(dir=str(args.dir), removed=True),
        lambda: f"devnet in {args.dir} stopped and removed",
    )


def cmd_devnet_status(args: argparse.Namespace) -> int:
    devnet = load_devnet(args.dir)
    nodes = _nodes(devnet)
    return show(args, DevnetInfo(dir=str(devnet.dir), nodes=nodes), lambda: _table(nodes))
