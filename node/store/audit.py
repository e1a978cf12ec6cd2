"""`rrn log verify` and `rrn log export`: audit the signed history, and carry it offline.

Owns the full re-verification of a store and the JSON-lines export format
(docs/PROTOCOL.md, "Export format"). Both read the store directly (read-only),
so they work whether or not the daemon runs.

verify trusts nothing the store says about an event beyond its signed bytes: the
roster chain from genesis (and that no event names a roster version the store
lacks), each header decoded (a bad one named by its position), every column
against the header it claims to describe (origin, epoch, seq, id, kind, time),
every signature with the keys in force at that point of the chain (a key
rotation is learned as it is met, so an old key signing after it is caught),
every payload hash, every chain link, the recorded heads, and events held
behind gaps.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rrn.federation.keyring import Keyring, Rotation
from rrn.node.store.db import Store, open_store
from rrn.node.store.network import Network, verify_chain
from rrn.node.store.rows import APPLIED, FROZEN, UNAPPLIED, ChainKey, RawRow
from rrn.protocol.envelope import Event, check_signed, decode_header, event_id, open_envelope
from rrn.protocol.errors import ProtocolError, RrnError
from rrn.protocol.kinds import Kind

__all__ = ["VerifyReport", "export_lines", "verify_store"]

_STATUS: Final = {APPLIED: "applied", UNAPPLIED: "unapplied", FROZEN: "frozen"}


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


class _Walk:
    """The state of one verification: keys in force, chains so far, what was seen."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.keyring = Keyring(network.roster)
        self.chains: dict[ChainKey, tuple[int, bytes]] = {}
        self.count = 0
        self.top_roster_ver = 0

    def check(self, row: RawRow) -> str | None:
        """What is wrong with one stored event, or None."""
        where = f"event {row.origin}/{row.epoch}/{row.seq}"
        try:
            header = decode_header(row.header)
        except ProtocolError as exc:
            return f"{where}: its header does not decode [{exc.reason}]"
        event = Event(event_id(row.header), header, row.header, row.sig, row.payload)
        where += f" (id {event.id.hex()[:16]})"
        stored = (row.origin, row.epoch, row.seq, row.id, row.kind, row.wall_ms)
        signed = (header.origin, header.epoch, header.seq, event.id, header.kind, header.wall_ms)
        if stored != signed:
            return f"{where}: its stored columns do not match its signed header"
        try:
            check_signed(event, net=self.network.net, resolve=self.keyring.resolve)
        except ProtocolError as exc:
            return f"{where}: {exc} [{exc.reason}]"
        problem = self._link(event)
        if problem is not None:
            return f"{where}: {problem}"
        self.top_roster_ver = max(self.top_roster_ver, header.roster_ver)
        if header.kind == Kind.KEY_ROTATED and row.status == APPLIED:
            self._learn(event)
        return None

    def _link(self, event: Event) -> str | None:
        h = event.header
        last = self.chains.get((h.origin, h.epoch))
        want_seq, want_prev = (last[0] + 1, last[1]) if last else (1, None)
        if h.seq != want_seq:
            return f"chain gap: expected seq {want_seq}"
        if h.prev != want_prev:
            return "chain link broken: prev is not the id of the event before it"
        self.chains[h.origin, h.epoch] = (h.seq, event.id)
        return None

    def _learn(self, event: Event) -> None:
        """A rotation the node honoured: the old key signs nothing after it from here."""
        try:
            rotation = Rotation.from_event(event)
            if rotation is not None:
                self.keyring = self.keyring.learn(rotation)
        except ProtocolError:
            pass  # refused when it arrived as well: kept, not honoured


#: How often long work reports its progress, in events.
PROGRESS_EVERY: Final = 50_000


async def verify_store(
    store_path: Path, progress: Callable[[int], None] | None = None
) -> VerifyReport:
    """Re-verify everything in a store; stop at the first bad event, link or head.
    `progress` hears the count every PROGRESS_EVERY events."""
    async with open_store(store_path, readonly=True) as store:
        try:
            network = verify_chain(await store.rosters())
        except RrnError as exc:
            return VerifyReport(0, 0, 0, f"roster chain: {exc}")
        walk = _Walk(network)
        rosters = network.roster_version + 1
        async for row in store.raw_rows():
            walk.count += 1
            if progress is not None and walk.count % PROGRESS_EVERY == 0:
                progress(walk.count)
            problem = walk.check(row)
            if problem is not None:
                return VerifyReport(walk.count, len(walk.chains), rosters, problem)
        problem = await _heads_and_held(store, walk)
        return VerifyReport(walk.count, len(walk.chains), rosters, problem)


async def _heads_and_held(store: Store, walk: _Walk) -> str | None:
    if walk.top_roster_ver > walk.network.roster_version:
        return (
            f"events name roster version {walk.top_roster_ver}, but the store holds rosters "
            f"only up to {walk.network.roster_version} (a roster row is missing)"
        )
    heads = await store.heads()
    for key in sorted(heads.keys() | walk.chains.keys()):
        head, last = heads.get(key), walk.chains.get(key)
        if head is None or last is None or (head.seq, head.id) != last:
            return f"chain {key[0]}/{key[1]}: recorded head does not match its last event"
    for envelope, _ in await store.pending():
        try:
            event = open_envelope(envelope)
            check_signed(event, net=walk.network.net, resolve=walk.keyring.resolve)
        except ProtocolError as exc:
            return f"an event held behind a gap does not verify [{exc.reason}]"
    return None


async def export_lines(store_path: Path) -> AsyncIterator[str]:
    """The store as JSON lines (PROTOCOL 7): rosters, chain heads, events, held events."""
    async with open_store(store_path, readonly=True) as store:
        for r in await store.rosters():
            yield json.dumps({"type": "roster", "version": r.version, "cert": _b64(r.cert)})
        for (origin, epoch), head in sorted((await store.heads()).items()):
            yield json.dumps(
                {"type": "head", "origin": origin, "epoch": epoch, "seq": head.seq,
                 "id": head.id.hex()}
            )  # fmt: skip
        async for row in store.iter_events():
            yield _event_line("event", row.event, _STATUS.get(row.status, "unknown"))
        held = [open_envelope(e) for e, _ in await store.pending()]
        for event in sorted(held, key=lambda e: (e.header.origin, e.header.epoch, e.header.seq)):
            yield _event_line("held", event, "held")


def _event_line(kind: str, e: Event, status: str) -> str:
    h = e.header
    return json.dumps(
        {
            "type": kind,
            "id": e.id.hex(),
            "origin": h.origin,
            "epoch": h.epoch,
            "seq": h.seq,
            "kind": h.kind,
            "wall_ms": h.wall_ms,
            "status": status,
            "envelope": _b64(e.envelope()),
        }
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
