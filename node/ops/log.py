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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry

from rrn.node.home.clock import SystemClock
from rrn.node.home.layout import Home
from rrn.node.pipeline.batch import Reply
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
    home: Home,
    envelopes: AsyncIterator[bytes] | list[bytes],
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Verify and store events from elsewhere (an export, a USB stick), daemon stopped.

    Every event goes through the same pipeline as events from peers; nothing is
    trusted because of where it came from. `progress` hears how many events were
    settled, every 50,000.
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
        tally = _Tally(progress)
        try:
            async for raw in _each(envelopes):
                tally.pending.append(await ingestor.submit(raw))
                if len(tally.pending) >= _IN_FLIGHT:
                    await tally.settle_oldest()
            while tally.pending:
                await tally.settle_oldest()
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    return tally.report()


#: Events submitted and not yet settled: memory stays flat in the file's size (a
#: future per event of a million-event export was half a gigabyte).
_IN_FLIGHT: Final = 4096
#: How often a long import says how far it got.
_PROGRESS_EVERY: Final = 50_000


class _Tally:
    """Outcomes of an import, counted as they settle, oldest first."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.pending: collections.deque[Reply] = collections.deque()
        self._progress = progress
        self._read = 0
        self._verdicts: collections.Counter[str] = collections.Counter()
        self._reasons: collections.Counter[str] = collections.Counter()

    async def settle_oldest(self) -> None:
        outcome = await self.pending.popleft()
        self._read += 1
        if isinstance(outcome, Outcome):
            self._verdicts[outcome.verdict] += 1
            if outcome.reason is not None:
                self._reasons[str(outcome.reason)] += 1
        if self._progress is not None and self._read % _PROGRESS_EVERY == 0:
            self._progress(self._read)

    def report(self) -> ImportReport:
        return ImportReport(
            read=self._read,
            appended=self._verdicts["appended"],
            duplicates=self._verdicts["duplicate"],
            held=self._verdicts["held"],
            rejected=dict(self._reasons),
        )


async def _each(envelopes: AsyncIterator[bytes] | list[bytes]) -> AsyncIterator[bytes]:
    if isinstance(envelopes, list):
        for raw in envelopes:
            yield raw
    else:
        async for raw in envelopes:
            yield raw


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
