"""`rrn log verify|export|import`: audit and carry the signed history offline.

Owns the full re-verification of a store (roster chain, every signature, payload
hash, id and chain link), the JSON-lines export format (docs/PROTOCOL.md,
"Export format") and importing such a file into a stopped node (catching up
without a network, e.g. from a USB stick). verify and export read the store
directly, so they work whether or not the daemon runs.
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
from rrn.node.store.rows import APPLIED, FROZEN, UNAPPLIED, EventRow
from rrn.protocol.envelope import KeyResolver, check_signed
from rrn.protocol.errors import ConfigError, ProtocolError, RrnError

__all__ = [
    "ImportReport",
    "VerifyReport",
    "export_lines",
    "import_envelopes",
    "read_export",
    "verify_store",
]

_STATUS = {APPLIED: "applied", UNAPPLIED: "unapplied", FROZEN: "frozen"}


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of re-verifying a store."""

    events: int
    chains: int
    rosters: int
    first_bad: str | None

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def _where(row: EventRow) -> str:
    h = row.event.header
    return f"event {h.origin}/{h.epoch}/{h.seq} (id {row.event.id.hex()[:16]})"


async def verify_store(store_path: Path) -> VerifyReport:
    """Re-verify everything in a store; stop at the first bad event or link."""
    async with open_store(store_path, readonly=True) as store:
        try:
            network = await load_network(store)
        except RrnError as exc:
            return VerifyReport(0, 0, 0, f"roster chain: {exc}")
        rosters = network.roster_version + 1
        heads = await store.heads()
        count = 0
        chains: dict[tuple[str, int], tuple[int, bytes]] = {}
        async for row in store.iter_events():
            count += 1
            problem = _check_row(row, chains, network.net, network.keyring.resolve)
            if problem is not None:
                return VerifyReport(count, len(chains), rosters, f"{_where(row)}: {problem}")
            h = row.event.header
            chains[h.origin, h.epoch] = (h.seq, row.event.id)
        for key, (seq, eid) in chains.items():
            head = heads.get(key)
            if head is None or (head.seq, head.id) != (seq, eid):
                return VerifyReport(
                    count,
                    len(chains),
                    rosters,
                    f"chain {key[0]}/{key[1]}: recorded head does not match its last event",
                )
        extra = set(heads) - set(chains)
        if extra:
            origin, epoch = sorted(extra)[0]
            return VerifyReport(
                count, len(chains), rosters, f"chain {origin}/{epoch}: head without events"
            )
        return VerifyReport(count, len(chains), rosters, None)


def _check_row(
    row: EventRow,
    chains: dict[tuple[str, int], tuple[int, bytes]],
    net: bytes,
    resolve: KeyResolver,
) -> str | None:
    event = row.event
    h = event.header
    try:
        check_signed(event, net=net, resolve=resolve)
    except ProtocolError as exc:
        return f"{exc} [{exc.reason}]"
    last = chains.get((h.origin, h.epoch))
    want_seq, want_prev = (last[0] + 1, last[1]) if last else (1, None)
    if h.seq != want_seq:
        return f"chain gap: expected seq {want_seq}"
    if h.prev != want_prev:
        return "chain link broken: prev is not the id of the event before it"
    return None


async def export_lines(store_path: Path) -> AsyncIterator[str]:
    """The store as JSON lines: every roster certificate, then every event."""
    async with open_store(store_path, readonly=True) as store:
        for r in await store.rosters():
            yield json.dumps({"type": "roster", "version": r.version, "cert": _b64(r.cert)})
        async for row in store.iter_events():
            e = row.event
            h = e.header
            yield json.dumps(
                {
                    "type": "event",
                    "id": e.id.hex(),
                    "origin": h.origin,
                    "epoch": h.epoch,
                    "seq": h.seq,
                    "kind": h.kind,
                    "wall_ms": h.wall_ms,
                    "status": _STATUS.get(row.status, "unknown"),
                    "envelope": _b64(e.envelope()),
                }
            )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


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
    """Envelopes from an export file (roster lines are skipped: rosters come from peers)."""
    with path.open() as f:
        for number, line in enumerate(f, 1):
            try:
                entry = json.loads(line)
                if entry.get("type") == "event":
                    yield base64.b64decode(entry["envelope"], validate=True)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ConfigError(f"{path}, line {number}: not an rrn export line") from exc
