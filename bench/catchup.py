"""Catch-up benchmark: a node behind by N events pulls them from a peer.

Builds a two-node devnet, gives node 1 a history of N events of its own chain
(imported into its store before it starts, through the same verifying pipeline),
starts node 1, then node 2, and measures how fast node 2 comes to hold all N
events: pulled over NATS in pages, verified, chained, stored and projected.
`events_per_s` counts from the first event node 2 stores to the last; the fixed
cost before it (the link being dialled, the first heartbeat) is reported apart as
`startup_s`, with `events_per_s_incl_startup` for the whole. In the same run,
the bare single-core Ed25519 verification rate of the same events.
Last line: JSON with events_per_s, verify_per_s and ratio.
Target (issue 3): catch-up at >= 0.7 of the verification rate.

    python bench/catchup.py [--events 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.ingest import bare_verify
from rrn.node.devnet.devnet import create_devnet, remove_devnet
from rrn.node.home.clock import SystemClock
from rrn.node.home.layout import open_home
from rrn.node.membership.policy import parse_limits
from rrn.node.ops.log import import_envelopes
from rrn.protocol.alerts import AlertClaimed, AlertResolved
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event, sign_event
from rrn.protocol.kinds import Payload, kind_of
from rrn.protocol.vocabulary import Outcome
from tests.support import raised


def history(home: Path, n: int) -> list[Event]:
    """n events of node 1's own chain, signed with its key: alert life cycles."""
    h = open_home(home)
    keys = h.keys()
    with sqlite3.connect(h.store_path) as db:
        net = bytes(db.execute("SELECT value FROM meta WHERE key = 'net'").fetchone()[0])
    events: list[Event] = []
    prev = None
    org = h.config.node.org
    i = 0
    while len(events) < n:
        first = _sign(keys.sign, net, org, len(events) + 1, prev=prev, payload=raised(i))
        events.append(first)
        prev = first.id
        for payload in (
            AlertClaimed(alert=first.id),
            AlertResolved(alert=first.id, outcome=Outcome.SAFE),
        ):
            if len(events) < n:
                e = _sign(keys.sign, net, org, len(events) + 1, prev=prev, payload=payload)
                events.append(e)
                prev = e.id
        i += 1
    return events


def _sign(
    key: Ed25519PrivateKey, net: bytes, org: str, seq: int, *, prev: bytes | None, payload: Payload
) -> Event:
    return sign_event(
        key,
        net=net,
        origin=org,
        epoch=1,
        seq=seq,
        prev=prev,
        kind=str(kind_of(payload)),
        wall_ms=1_767_225_600_000 + seq,
        roster_ver=0,
        payload=encode(payload),
    )


def count(home: Path) -> int:
    with sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rrn-catchup-"))
    devnet = asyncio.run(
        create_devnet(
            root / "net",
            2,
            clock=SystemClock(),
            nat=set(),
            heartbeat_s=0.5,
            # One origin's whole history in one day: far past the default daily quota.
            policy=parse_limits("day_events=100000000,day_mb=1000000"),
        )
    )
    try:
        one, two = devnet.node(1).home, devnet.node(2).home
        t = time.perf_counter()
        events = history(one, args.events)
        report = asyncio.run(import_envelopes(open_home(one), [e.envelope() for e in events]))
        assert report.appended == args.events, report
        print(
            f"node 1 holds {args.events} events ({time.perf_counter() - t:.0f} s to make)",
            flush=True,
        )
        verify = bare_verify(open_home(one).keys().sign.public_key(), events)
        devnet.start(1)
        devnet.start(2)
        start = time.perf_counter()
        first = None
        while (held := count(two)) < args.events:
            if first is None and held:
                first = time.perf_counter()
            time.sleep(0.05)
            if time.perf_counter() - start > 600:
                raise SystemExit("catch-up did not finish in 10 minutes")
        elapsed = time.perf_counter() - start
        startup = (first or start) - start
    finally:
        remove_devnet(devnet)
    rate = args.events / (elapsed - startup)
    print(
        f"node 2 caught up {args.events} events in {elapsed:.1f} s "
        f"(first event stored after {startup:.1f} s: server start, link, first heartbeat)"
    )
    print(
        json.dumps(
            {
                "bench": "catchup",
                "events": args.events,
                "seconds": round(elapsed - startup, 2),
                "startup_s": round(startup, 2),
                "events_per_s_incl_startup": round(args.events / elapsed),
                "events_per_s": round(rate),
                "verify_per_s": round(verify),
                "ratio": round(rate / verify, 3),
                "target_ratio": 0.7,
                "machine": f"{platform.machine()} {os.cpu_count()} cpu",
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
