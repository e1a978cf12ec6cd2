"""Fixtures for node tests: an ingest pipeline over a real sqlite store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rrn.node.daemon.metrics import Metrics
from rrn.node.home.clock import ManualClock
from rrn.node.home.config import IngestConfig
from rrn.node.pipeline.ingest import Identity, Ingestor
from rrn.node.store.db import Store, open_store
from rrn.node.store.network import load_network
from rrn.node.store.rows import RosterRow
from rrn.protocol.roster import encode_cert
from tests.support import Net, network


@dataclass
class Pipeline:
    """An ingestor with its store, network and metrics, running."""

    tn: Net
    store: Store
    ingestor: Ingestor
    metrics: Metrics
    clock: ManualClock

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


async def seed_store(store: Store, tn: Net) -> None:
    await store.put_roster(RosterRow(0, tn.net, tn.roster_bytes, encode_cert(tn.cert)), 0)
    await store.set_meta("net", tn.net)


@contextlib.asynccontextmanager
async def running_pipeline(
    path: Path,
    tn: Net,
    me: str = "lima-hr",
    *,
    signing: dict[int, Ed25519PrivateKey] | None = None,
) -> AsyncIterator[Pipeline]:
    """Open the store at `path` (seeding it if new) and run an ingestor over it."""
    fresh = not path.exists()
    async with open_store(path, create=True) as store:
        if fresh:
            await seed_store(store, tn)
        clock = ManualClock()
        metrics = Metrics(version="test", nats_server="none")
        ingestor = Ingestor(
            store=store,
            network=await load_network(store),
            me=Identity(me, 1, tn.keys[me], signing=signing or {}),
            metrics=metrics.ingest,
            clock=clock,
            config=IngestConfig(),
        )
        await ingestor.load()
        task = asyncio.create_task(ingestor.run(), name="ingest")
        try:
            yield Pipeline(tn, store, ingestor, metrics, clock)
            await ingestor.flush()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
def tn() -> Net:
    return network("lima-hr", "nairobi-dl", "jakarta-pb")
