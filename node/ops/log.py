"""`rrn log import`: verify and store events from an export, a stopped node catching up
without a network (e.g. from a USB stick). Verifying and exporting a store are
node/store/audit.py.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from rrn.node.home.clock import SystemClock
from rrn.node.home.layout import Home
from rrn.node.pipeline.ingest import Identity, Ingestor, Outcome
from rrn.node.pipeline.metrics import IngestMetrics
from rrn.node.store.db import open_store
from rrn.node.store.network import load_network
from rrn.protocol.errors import ConfigError

__all__ = ["ImportReport", "import_envelopes", "read_export"]


@dataclass(frozen=True)
class ImportReport:
    """What importing a file of events did."""

    read: int
    appended: int
    duplicates: int
    held: int
    rejected: dict[str, int]


async def import_envelopes(
    home: Home, envelopes: AsyncIterator[bytes] | list[bytes]
) -> ImportReport:
    """Verify and store events from elsewhere (an export, a USB stick), daemon stopped.

    Every event goes through the same pipeline as events from peers; nothing is
    trusted because of where it came from.
    """
    async with open_store(home.store_path) as store:
        network = await load_network(store)
        keys = home.keys()
        me = Identity(home.config.node.org, keys.epoch, keys.sign, keys.sealing)
        ingestor = Ingestor(
            store=store,
            network=network,
            me=me,
            metrics=IngestMetrics(CollectorRegistry()),
            clock=SystemClock(),
            config=home.config.ingest,
        )
        await ingestor.load()
        worker = asyncio.create_task(ingestor.run(), name="ingest")
        futures = []
        try:
            if isinstance(envelopes, list):
                for raw in envelopes:
                    futures.append(await ingestor.submit(raw))
            else:
                async for raw in envelopes:
                    futures.append(await ingestor.submit(raw))
            outcomes = [await f for f in futures]
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    verdicts = collections.Counter(o.verdict for o in outcomes if isinstance(o, Outcome))
    reasons = collections.Counter(
        str(o.reason) for o in outcomes if isinstance(o, Outcome) and o.reason is not None
    )
    return ImportReport(
        read=len(outcomes),
        appended=verdicts["appended"],
        duplicates=verdicts["duplicate"],
        held=verdicts["held"],
        rejected=dict(reasons),
    )


async def read_export(path: Path) -> AsyncIterator[bytes]:
    """Envelopes from an export file, held ones too (roster and head lines are skipped:
    rosters come from peers, heads follow from the events)."""
    with path.open() as f:
        for number, line in enumerate(f, 1):
            try:
                entry = json.loads(line)
                if entry.get("type") in ("event", "held"):
                    yield base64.b64decode(entry["envelope"], validate=True)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ConfigError(f"{path}, line {number}: not an rrn export line") from exc
