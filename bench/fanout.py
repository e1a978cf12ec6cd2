"""Fan-out benchmark: from raising an alert at one node to it being stored everywhere.

Starts a devnet of N >= 4 reachable nodes (each its own daemon and nats-server,
on loopback), then in the same run measures
  * fan-out: an alert is raised at node 1 (control request sent at t0); each other
    node reports it stored when it publishes the event on its local integrator
    subject (right after its commit); the latency of one alert is the slowest node;
  * raw NATS: a message published at node 1's server in node 1's subject space, to
    its arrival at subscribers on every other server, through the same leafnode links.
The last line of output is one JSON object with p50_ms, p99_ms and raw_p99_ms.
Target (issue 3): fan-out p99 within 5x raw NATS p99.

    python bench/fanout.py [--nodes 4] [--alerts 200]
    python bench/fanout.py --wan [PROFILE] [--no-loss]      (root: network namespaces)

WAN mode (issue "Real networks") runs the same measurement twice in one run: on
loopback (the processing baseline), then on a WAN devnet (node/devnet/wan.py:
each node in its own namespace, links through the fault proxy with the profile's
round trips, jitter and loss), and reports p50/p99 delivery to every node against
the slowest path's round trip from node 1. Target: WAN p99 <= 1.5 x that round
trip + loopback p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec
import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from rrn.node.control.client import call, open_control
from rrn.node.devnet.devnet import PLACES, Devnet, create_devnet, remove_devnet
from rrn.node.devnet.wan import DEFAULT_PROFILE, Profile, load_profile
from rrn.node.home.clock import SystemClock
from rrn.node.home.layout import open_home
from rrn.node.home.tls import pinned_context
from rrn.node.natsd.conf import DAEMON_USER
from rrn.node.ops.types import AlertInfo, NoArgs, RaiseArgs, StatusInfo
from rrn.protocol import subjects
from rrn.protocol.vocabulary import IncidentType, Severity, Urgency

RAISE = RaiseArgs(
    country="KE",
    incident_types=[IncidentType.DEATH_THREAT],
    severity=Severity.EXTREME,
    urgency=Urgency.IMMEDIATE,
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def connect(devnet: Devnet, k: int) -> NatsClient:
    home = open_home(devnet.node(k).home)
    url = json.loads((home.path / "run" / "daemon.json").read_text())["nats_url"]
    tls = pinned_context(home.keys_dir / "tls.crt") if url.startswith("tls:") else None
    return await nats.connect(url, user=DAEMON_USER, password=home.keys().nats_password, tls=tls)


class Arrivals:
    """When each other node reported each key (an event id or a raw message)."""

    def __init__(self, nodes: list[int]) -> None:
        self.nodes = nodes
        self.seen: dict[str, dict[int, float]] = {}
        self._changed = asyncio.Event()

    def callback(self, k: int) -> Callable[[Msg], Awaitable[None]]:
        async def cb(msg: Msg) -> None:
            key = (msg.headers or {}).get("Nats-Msg-Id") or msg.data.decode()
            self.seen.setdefault(key, {})[k] = time.perf_counter()
            self._changed.set()

        return cb

    async def all_of(self, key: str) -> float:
        """When the last node reported `key`."""
        while len(self.seen.get(key, {})) < len(self.nodes):
            self._changed.clear()
            await self._changed.wait()
        return max(self.seen[key].values())


async def measure(devnet: Devnet, alerts: int) -> dict[str, float]:
    others = [n.index for n in devnet.nodes if n.index != 1]
    conns = {k: await connect(devnet, k) for k in [1, *others]}
    home1 = open_home(devnet.node(1).home)
    status = await call(home1, "status", NoArgs(), StatusInfo)
    raw_subject = subjects.space(bytes.fromhex(status.network), "lima-hr").replace(">", "bench")
    arrivals = Arrivals(others)
    for k in others:
        await conns[k].subscribe("rrn.local.events.lima-hr.>", cb=arrivals.callback(k))
        await conns[k].subscribe(raw_subject, cb=arrivals.callback(k))
        await conns[k].flush()
    await asyncio.sleep(1)
    fanout: list[float] = []
    raw: list[float] = []
    with open_control(home1) as control:  # blocking: asked on a thread, the loop hears
        for i in range(alerts):
            t0 = time.perf_counter()
            info = await asyncio.to_thread(control.call, "alert.raise", RAISE, AlertInfo)
            done = await asyncio.wait_for(arrivals.all_of(info.id), 30)
            fanout.append((done - t0) * 1000)
            key = f"raw-{i}"
            t0 = time.perf_counter()
            await conns[1].publish(raw_subject, key.encode())
            done = await asyncio.wait_for(arrivals.all_of(key), 30)
            raw.append((done - t0) * 1000)
    for nc in conns.values():
        await nc.close()
    return {
        "p50_ms": round(statistics.median(fanout), 2),
        "p99_ms": round(percentile(fanout, 0.99), 2),
        "raw_p50_ms": round(statistics.median(raw), 3),
        "raw_p99_ms": round(percentile(raw, 0.99), 3),
    }


def run_once(nodes: int, alerts: int, wan: Profile | None) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="rrn-fanout-"))
    devnet = asyncio.run(
        create_devnet(root / "net", nodes, clock=SystemClock(), nat=set(), wan=wan)
    )
    try:
        for node in devnet.nodes:
            devnet.start(node.index)
        time.sleep(8 if wan else 4)  # links up and first heartbeats exchanged
        return asyncio.run(measure(devnet, alerts))
    finally:
        remove_devnet(devnet)


def wan_main(args: argparse.Namespace) -> None:
    profile = load_profile(args.wan)
    if args.no_loss:
        quiet = msgspec.structs.replace
        profile = quiet(
            profile,
            default=quiet(profile.default, loss=0.0, reset=0.0),
            link=[quiet(e, loss=0.0, reset=0.0) for e in profile.link],
        )
    loopback = run_once(args.nodes, args.alerts, None)
    wan = run_once(args.nodes, args.alerts, profile)
    orgs = [place[0] for place in PLACES[: args.nodes]]
    slowest = max(profile.spec(orgs[0], org).rtt_ms for org in orgs[1:])
    target = 1.5 * slowest + loopback["p99_ms"]
    print(
        json.dumps(
            {
                "bench": "fanout-wan",
                "nodes": args.nodes,
                "alerts": args.alerts,
                "loss": not args.no_loss,
                "loopback_p50_ms": loopback["p50_ms"],
                "loopback_p99_ms": loopback["p99_ms"],
                "wan_p50_ms": wan["p50_ms"],
                "wan_p99_ms": wan["p99_ms"],
                "slowest_rtt_ms": slowest,
                "p99_over_slowest_rtt": round(wan["p99_ms"] / slowest, 2),
                "target_ms": round(target, 1),
                "met": wan["p99_ms"] <= target,
                "machine": f"{platform.machine()} {os.cpu_count()} cpu",
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--wan", type=Path, nargs="?", const=DEFAULT_PROFILE, metavar="PROFILE")
    parser.add_argument("--no-loss", action="store_true", help="WAN: latency and jitter only")
    args = parser.parse_args()
    if args.wan is not None:
        wan_main(args)
        return
    result = run_once(args.nodes, args.alerts, None)
    ratio = result["p99_ms"] / result["raw_p99_ms"]
    print(
        json.dumps(
            {
                "bench": "fanout",
                "nodes": args.nodes,
                "alerts": args.alerts,
                **result,
                "p99_over_raw_p99": round(ratio, 2),
                "target_ratio": 5.0,
                "machine": f"{platform.machine()} {os.cpu_count()} cpu",
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
