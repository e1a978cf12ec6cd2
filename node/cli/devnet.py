"""`rrn devnet up|stop|start|down|status`: a local network of several nodes."""

from __future__ import annotations

import argparse
from pathlib import Path

from rrn.node.cli.common import escalation_arg, policy_of, run
from rrn.node.devnet.devnet import create_devnet, load_devnet, remove_devnet
from rrn.node.home.clock import SystemClock
from rrn.protocol.errors import ConfigError

__all__ = ["add_devnet_parsers"]


def add_devnet_parsers(devnet: argparse.ArgumentParser) -> None:
    sub = devnet.add_subparsers(dest="devnet_command", required=True)
    p = sub.add_parser("up", help="create N organisations on loopback and start them")
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--nat", help="nodes behind NAT, e.g. 3,4 (default: every third)")
    p.add_argument("--threshold", type=int)
    escalation_arg(p)
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


def cmd_devnet_up(args: argparse.Namespace) -> int:
    nat = None
    if args.nat:
        try:
            nat = {int(k) for k in args.nat.split(",")}
        except ValueError as exc:
            raise ConfigError("--nat takes node numbers, e.g. 3,4") from exc
    policy = policy_of(args)
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
