"""Ingest benchmark: the full pipeline against bare Ed25519 verification.

Pre-signs N events of another origin (alert life cycles: raise, claim, update,
resolve), then in each round measures
  * verify_per_s: bare Ed25519 verification of exactly those events' signing inputs,
    one after another on one core;
  * events_per_s: verify -> chain check -> store (real sqlite, WAL, synchronous=FULL)
    -> projection, through the node's Ingestor into a fresh store, as a running node
    does it (signature checks on its verification worker processes).
The last line of output is one JSON object; ratio = events_per_s / verify_per_s.
Target (issue 2): ratio >= 0.8.

    python bench/ingest.py [--events 50000] [--repeat 3]
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rrn.federation.limits import DEFAULT_LIMITS
from rrn.node.daemon.metrics import Metrics
from rrn.node.home.clock import ManualClock
from rrn.node.home.config import IngestConfig
from rrn.node.pipeline.ingest import Identity, Ingestor
from rrn.node.pipeline.verify import WORKERS
from rrn.node.store.db import open_store
from rrn.node.store.network import load_network
from rrn.node.store.rows import RosterRow
from rrn.protocol.alerts import AlertClaimed, AlertResolved, AlertUpdated
from rrn.protocol.encoding import DOMAIN_EVENT, pae
from rrn.protocol.envelope import Event
from rrn.protocol.roster import encode_cert
from rrn.protocol.vocabulary import Outcome, Severity
from tests.support import Chain, Net, network, raised

BENCH_LIMITS = msgspec.structs.replace(DEFAULT_LIMITS, day_events=10**8, day_bytes=1 << 40)


def make_events(tn: Net, n: int) -> list[Event]:
    """n signed events of origin 'nairobi-dl': four per alert."""
    chain = Chain(tn, "nairobi-dl")
    events: list[Event] = []
    i = 0
    while len(events) < n:
        r = chain.next(raised(i))
        events.append(r)
        events.append(chain.next(AlertClaimed(alert=r.id)))
        events.append(chain.next(AlertUpdated(alert=r.id, severity=Severity.EXTREME)))
        events.append(chain.next(AlertResolved(alert=r.id, outcome=Outcome.SAFE)))
        i += 1
    return events[:n]


def bare_verify(key: Ed25519PublicKey, events: list[Event]) -> float:
    """Signatures verified per second, one after another, nothing else."""
    inputs = [(e.sig, pae(DOMAIN_EVENT, e.header_bytes)) for e in events]
    start = time.perf_counter()
    for sig, data in inputs:
        key.verify(sig, data)
    return len(inputs) / (time.perf_counter() - start)


async def pipeline(tn: Net, envelopes: list[bytes], db: Path, now_ms: int) -> float:
    """Events ingested per second through the node's pipeline into a new store."""
    async with open_store(db, create=True) as store:
        await store.put_roster(RosterRow(0, tn.net, tn.roster_bytes, encode_cert(tn.cert)), 0)
        ingestor = Ingestor(
            store=store,
            network=await load_network(store),
            me=Identity("lima-hr", 1, tn.keys["lima-hr"]),
            metrics=Metrics(version="bench", nats_server="none").ingest,
            clock=ManualClock(now_ms),  # the events' times are not in its future
            config=IngestConfig(),
        )
        await ingestor.load()
        await ingestor.verifier.warm_up()  # a running node starts its workers once
        worker = asyncio.create_task(ingestor.run())
        start = time.perf_counter()
        for raw in envelopes:
            await ingestor.enqueue(raw)
        await ingestor.flush()
        elapsed = time.perf_counter() - start
        worker.cancel()
        assert ingestor.stored == len(envelopes), "every event must be stored"
        return len(envelopes) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # One origin signs every event here, far past a day's default quota.
    tn = network("lima-hr", "nairobi-dl", limits=BENCH_LIMITS)
    t0 = time.perf_counter()
    events = make_events(tn, args.events)
    envelopes = [e.envelope() for e in events]
    print(f"signed {len(events)} events in {time.perf_counter() - t0:.1f} s", flush=True)
    verify_rates, ingest_rates = [], []
    for round_ in range(args.repeat):
        verify_rates.append(bare_verify(tn.keyring.resolve("nairobi-dl", 1, 1), events))
        with tempfile.TemporaryDirectory() as tmp:
            now = events[-1].header.wall_ms
            ingest_rates.append(asyncio.run(pipeline(tn, envelopes, Path(tmp) / "store.db", now)))
        print(
            f"round {round_ + 1}: verify {verify_rates[-1]:,.0f}/s, "
            f"pipeline {ingest_rates[-1]:,.0f}/s",
            flush=True,
        )
    verify = statistics.median(verify_rates)
    ingest = statistics.median(ingest_rates)
    # Each round measures both rates back to back; the median of per-round ratios
    # is steadier than a ratio of medians on a noisy machine.
    ratio = statistics.median(i / v for i, v in zip(ingest_rates, verify_rates, strict=True))
    print(
        json.dumps(
            {
                "bench": "ingest",
                "events": len(events),
                "events_per_s": round(ingest),
                "verify_per_s": round(verify),
                "ratio": round(ratio, 3),
                "verify_workers": WORKERS,
                "target_ratio": 0.8,
                "machine": f"{platform.machine()} {os.cpu_count()} cpu",
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
