"""`rrn devnet fault`: change a WAN devnet's paths while it runs (node/devnet/wan.py).

    rrn devnet fault show --dir D
    rrn devnet fault cut 1 2 --dir D [--one-way]        # nothing passes (1→2 only)
    rrn devnet fault heal 1 2 --dir D | heal --all --dir D
    rrn devnet fault partition 1,2 3 --dir D            # every path between the groups
    rrn devnet fault shape 1 3 --rtt-ms 600 --loss 0.05 --dir D [--one-way]

Nodes are numbers or org ids. The running proxy takes the change at once.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path

from rrn.node.cli.common import json_arg, show
from rrn.node.cli.documents import DevnetPath, DevnetPaths, PathFaults
from rrn.node.devnet.devnet import Devnet, load_devnet
from rrn.node.devnet.faults import ProxyPath
from rrn.node.devnet.wan import change_path, load_paths, save_paths, signal_proxy
from rrn.protocol.errors import ConfigError

__all__ = ["add_fault_parser"]

_SHAPES = (
    ("--rtt-ms", "rtt_ms", "round trip, split over both directions' delay"),
    ("--jitter-ms", "jitter_ms", "± this much on each chunk's delay"),
    ("--loss", "loss", "chance per chunk of a 200 ms-1 s stall (as a lost segment costs)"),
    ("--reset", "reset", "chance per chunk that the connection is reset"),
    ("--kbit-s", "kbit_s", "bandwidth (0: no limit)"),
)


def add_fault_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fault", help="change a WAN devnet's paths: cut, heal, shape")
    acts = p.add_subparsers(dest="fault_command", required=True)

    def act(name: str, helptext: str) -> argparse.ArgumentParser:
        q = acts.add_parser(name, help=helptext)
        json_arg(q)
        q.add_argument("--dir", type=Path, required=True)
        q.set_defaults(func=cmd_devnet_fault)
        return q

    act("show", "every path and its faults")
    for name, helptext in (("cut", "nothing passes"), ("shape", "new delay, loss, bandwidth")):
        q = act(name, helptext)
        q.add_argument("a")
        q.add_argument("b")
        q.add_argument("--one-way", action="store_true", help="only what a sends to b")
        if name == "shape":
            for flag, dest, text in _SHAPES:
                q.add_argument(flag, dest=dest, type=float, help=text)
    q = act("heal", "let everything pass again (its shape stays)")
    q.add_argument("a", nargs="?")
    q.add_argument("b", nargs="?")
    q.add_argument("--all", action="store_true")
    q = act("partition", "cut every path between two groups of nodes")
    q.add_argument("first", help="nodes, e.g. 1,2")
    q.add_argument("second", help="nodes, e.g. 3")


def _org(devnet: Devnet, name: str) -> str:
    if name.isdigit():
        return devnet.node(int(name)).org
    if name not in {n.org for n in devnet.nodes}:
        raise ConfigError(f"this devnet has no node {name!r}")
    return name


def _change(args: argparse.Namespace, devnet: Devnet, paths: list[ProxyPath]) -> None:
    act = args.fault_command
    if act in ("cut", "shape"):
        a, b = _org(devnet, args.a), _org(devnet, args.b)
        changes = (
            {"cut": True}
            if act == "cut"
            else {dest: v for _, dest, _ in _SHAPES if (v := getattr(args, dest)) is not None}
        )
        change_path(paths, a, b, one_way=args.one_way, **changes)
    elif act == "heal" and args.all:
        for path in paths:
            path.forward = replace(path.forward, cut=False)
            path.back = replace(path.back, cut=False)
    elif act == "heal":
        if args.a is None or args.b is None:
            raise ConfigError("heal takes two nodes, or --all")
        change_path(paths, _org(devnet, args.a), _org(devnet, args.b), cut=False)
    elif act == "partition":
        first = [_org(devnet, n) for n in args.first.split(",")]
        second = [_org(devnet, n) for n in args.second.split(",")]
        for a in first:
            for b in second:
                if any(p.name in (f"{a}>{b}", f"{b}>{a}") for p in paths):
                    change_path(paths, a, b, cut=True)


def cmd_devnet_fault(args: argparse.Namespace) -> int:
    devnet = load_devnet(args.dir)
    if devnet.lan is None:
        raise ConfigError(f"{args.dir} is a loopback devnet: faults need one made with --wan")
    seed, paths = load_paths(args.dir)
    if args.fault_command != "show":
        _change(args, devnet, paths)
        save_paths(args.dir, seed, paths)
        signal_proxy(args.dir)
    doc = DevnetPaths(
        dir=str(args.dir),
        paths=[
            DevnetPath(
                name=p.name,
                forward=PathFaults(**asdict(p.forward)),
                back=PathFaults(**asdict(p.back)),
            )
            for p in paths
        ],
    )
    return show(args, doc, lambda: _text(doc))


def _text(doc: DevnetPaths) -> str:
    def one(f: PathFaults) -> str:
        if f.cut:
            return "cut"
        bits = [f"{2 * f.delay_ms:.0f} ms rtt ±{f.jitter_ms:.0f}", f"loss {f.loss:g}"]
        if f.kbit_s:
            bits.append(f"{f.kbit_s:g} kbit/s")
        return ", ".join(bits)

    return "\n".join(f"{p.name:<28} → {one(p.forward):<32} ← {one(p.back)}" for p in doc.paths)
