"""What each member pays for the mesh, at 2, 4 and 8 real nodes (docs/SCALING.md).

For each size and mesh (`full`: every pair linked; a number k: the roster's sparse
mesh of k links each, PROTOCOL.md 10.5), starts a devnet of N reachable nodes on
loopback (each node its own daemon and nats-server), lets it settle, then
measures over a window, per node:
  * idle: heartbeats and signs of life only;
  * loaded: alerts raised at a steady rate spread over every node;
the leafnode connections of its server, messages and bytes in and out per second
(the server's own counters, read over its system account), and the CPU share and
resident memory of its daemon and of its nats-server (/proc). The last line of
output is one JSON object with every figure; docs/SCALING.md fits the model to it.

    python bench/mesh.py [--sizes 2,4,8] [--links full,3] [--window 20] [--rate 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats

from rrn.node.control.client import call
from rrn.node.devnet.devnet import Devnet, create_devnet, remove_devnet
from rrn.node.home.clock import SystemClock
from rrn.node.home.layout import open_home
from rrn.node.membership.policy import parse_links
from rrn.node.natsd.conf import SYS_USER
from rrn.node.ops.types import AlertInfo, RaiseArgs
from rrn.protocol.vocabulary import IncidentType, Severity, Urgency

_RAISE = RaiseArgs(
    country="KE",
    incident_types=[IncidentType.ARBITRARY_DETENTION],
    severity=Severity.SEVERE,
    urgency=Urgency.DAYS,
)
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _rss_mb(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * _PAGE / 2**20


async def _varz(devnet: Devnet, k: int) -> dict[str, Any]:
    home = devnet.node(k).home
    info = json.loads((home / "run" / "daemon.json").read_text())
    nc = await nats.connect(
        info["nats_url"], user=SYS_USER, password=open_home(home).keys().nats_password
    )
    try:
        msg = await nc.request("$SYS.REQ.SERVER.PING.VARZ", b"", timeout=5)
        data: dict[str, Any] = json.loads(msg.data)["data"]
        return data
    finally:
        await nc.close()


def _pids(devnet: Devnet, k: int) -> tuple[int, int]:
    home = devnet.node(k).home
    daemon = int(json.loads((home / "run" / "daemon.json").read_text())["pid"])
    return daemon, int((home / "run" / "nats-server.pid").read_text())


async def _sample(devnet: Devnet) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for n in devnet.nodes:
        v = await _varz(devnet, n.index)
        daemon, server = _pids(devnet, n.index)
        out[n.index] = {
            "t": time.monotonic(),
            "in_msgs": v["in_msgs"],
            "out_msgs": v["out_msgs"],
            "in_bytes": v["in_bytes"],
            "out_bytes": v["out_bytes"],
            "leafnodes": v["leafnodes"],
            "daemon_cpu": _cpu_s(daemon),
            "server_cpu": _cpu_s(server),
            "daemon_rss": _rss_mb(daemon),
            "server_rss": _rss_mb(server),
        }
    return out


def _rates(a: dict[int, dict[str, float]], b: dict[int, dict[str, float]]) -> dict[str, float]:
    """Per-node means over the window between two samples."""
    per: list[dict[str, float]] = []
    for k, x in a.items():
        y, dt = b[k], b[k]["t"] - x["t"]
        per.append(
            {
                "leafnodes": y["leafnodes"],
                "msgs_in_s": (y["in_msgs"] - x["in_msgs"]) / dt,
                "msgs_out_s": (y["out_msgs"] - x["out_msgs"]) / dt,
                "kb_in_s": (y["in_bytes"] - x["in_bytes"]) / dt / 1024,
                "kb_out_s": (y["out_bytes"] - x["out_bytes"]) / dt / 1024,
                "daemon_cpu_pct": 100 * (y["daemon_cpu"] - x["daemon_cpu"]) / dt,
                "server_cpu_pct": 100 * (y["server_cpu"] - x["server_cpu"]) / dt,
                "daemon_rss_mb": y["daemon_rss"],
                "server_rss_mb": y["server_rss"],
            }
        )
    return {key: round(sum(p[key] for p in per) / len(per), 2) for key in per[0]}


async def _load(devnet: Devnet, rate: float, seconds: float) -> int:
    homes = [open_home(n.home) for n in devnet.nodes]
    raised, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        await call(homes[raised % len(homes)], "alert.raise", _RAISE, AlertInfo)
        raised += 1
        await asyncio.sleep(1 / rate)
    return raised


async def _one_size(
    n: int, links: str, window: float, rate: float, heartbeat_s: float
) -> dict[str, Any]:
    policy = None if links == "full" else parse_links(links)
    with tempfile.TemporaryDirectory(prefix="rrn-mesh-") as tmp:
        devnet = await create_devnet(
            Path(tmp) / "net",
            n,
            clock=SystemClock(),
            nat=set(),
            heartbeat_s=heartbeat_s,
            policy=policy,
        )
        try:
            for node in devnet.nodes:
                devnet.start(node.index)
            await asyncio.sleep(10)  # links up, signs of life heard, start-up done
            a = await _sample(devnet)
            await asyncio.sleep(window)
            b = await _sample(devnet)
            raised = await _load(devnet, rate, window)
            c = await _sample(devnet)
            return {
                "nodes": n,
                "links": links,
                "idle": _rates(a, b),
                "loaded": _rates(b, c) | {"alerts_per_s": round(raised / window, 2)},
            }
        finally:
            remove_devnet(devnet)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,4,8")
    parser.add_argument("--links", default="full", help="meshes to measure: full and/or k")
    parser.add_argument("--window", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--rate", type=float, default=2.0, help="alerts per second, loaded")
    parser.add_argument("--heartbeat", type=float, default=2.0, help="heartbeat_s (default 2)")
    args = parser.parse_args()
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        for links in args.links.split(","):
            print(f"measuring {n} nodes, {links} mesh ...", file=sys.stderr, flush=True)
            results.append(asyncio.run(_one_size(n, links, args.window, args.rate, args.heartbeat)))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    doc = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "date": time.strftime("%Y-%m-%d"),
        "heartbeat_s": args.heartbeat,
        "results": results,
    }
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
