"""The history bench/history.py measures: years of alert life cycles between two members,
signed into an export file (PROTOCOL.md §7) that `rrn log import` takes.

Alert k is raised at start + k * gap by Lima (node 1) or Jakarta (node 3) in turn,
claimed by the other (no expiry), updated and — three in four — resolved by its
origin; with `tombstones`, an alert resolved more than a year before now carries
the tombstone its origin's retention signed then. Each chain is signed in time
order.
"""

from __future__ import annotations

import base64
import collections
import heapq
import json
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rrn.node.devnet.devnet import Devnet
from rrn.node.home.config import NatsConfig
from rrn.node.home.layout import open_home
from rrn.protocol.alerts import (
    AlertClaimed,
    AlertRaised,
    AlertResolved,
    AlertTombstoned,
    AlertUpdated,
)
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event, sign_event
from rrn.protocol.kinds import Payload, kind_of
from rrn.protocol.vocabulary import IncidentType, Outcome, Severity, TombstoneReason, Urgency

__all__ = ["HOLDER", "JOINER", "OTHER", "Plan", "log", "write_history"]

DAY_MS: Final = 86_400_000
RETENTION_MS: Final = 365 * DAY_MS  # [retention] closed_days, the default
#: After its raise: claimed by the other member, updated, resolved (ms).
STEPS_MS: Final = {"claim": 300_000, "update": 3_600_000, "resolve": 6 * 3_600_000}
TOMB_AFTER_MS: Final = STEPS_MS["resolve"] + RETENTION_MS + 60_000
#: Which orgs of the devnet: 1 holds the history, 2 joins late, 3 signed half of it.
HOLDER, JOINER, OTHER = 1, 2, 3


def log(msg: str) -> None:
    print(f"[history] {msg}", file=sys.stderr, flush=True)


@dataclass
class _Chain:
    org: str
    key: Ed25519PrivateKey
    epoch: int
    out: IO[str]
    seq: int = 0
    prev: bytes | None = None

    def sign(self, net: bytes, wall_ms: int, payload: Payload) -> Event:
        self.seq += 1
        event = sign_event(
            self.key,
            net=net,
            origin=self.org,
            epoch=self.epoch,
            seq=self.seq,
            prev=self.prev,
            kind=str(kind_of(payload)),
            wall_ms=wall_ms,
            roster_ver=0,
            payload=encode(payload),
        )
        self.prev = event.id
        line = {
            "type": "event",
            "id": event.id.hex(),
            "origin": self.org,
            "epoch": self.epoch,
            "seq": self.seq,
            "kind": event.header.kind,
            "wall_ms": wall_ms,
            "status": "applied",
            "envelope": base64.b64encode(event.envelope()).decode(),
        }
        self.out.write(json.dumps(line) + "\n")
        return event


@dataclass
class Plan:
    """When each alert's events are signed: alert k raised at start + k * gap."""

    alerts: int
    start_ms: int
    gap_ms: int
    now_ms: int
    tombstones: bool

    @classmethod
    def of(cls, events: int, years: float, now_ms: int, tombstones: bool) -> Plan:
        start = now_ms - int(years * 365 * DAY_MS)
        alerts = max(1, int(events / 4.25))
        while True:
            gap = (now_ms - 2 * DAY_MS - start) // alerts
            plan = cls(alerts, start, gap, now_ms, tombstones)
            if (n := plan.count()) >= events:
                return plan
            alerts += (events - n) // 4 + 1

    def raised_ms(self, k: int) -> int:
        return self.start_ms + k * self.gap_ms

    def open(self, k: int) -> bool:
        return k % 4 == 3

    def tombstoned(self, k: int) -> bool:
        late = self.raised_ms(k) + TOMB_AFTER_MS < self.now_ms - 60_000
        return self.tombstones and not self.open(k) and late

    def count(self) -> int:
        return sum(3 + (not self.open(k)) + self.tombstoned(k) for k in range(self.alerts))

    def steps(self) -> Iterator[tuple[int, int, str]]:
        """(signed time, alert, step) in time order."""
        later: list[tuple[int, int, str]] = []
        for k in range(self.alerts):
            at = self.raised_ms(k)
            while later and later[0][0] <= at:
                yield heapq.heappop(later)
            yield at, k, "raise"
            for step in ("claim", "update") + (() if self.open(k) else ("resolve",)):
                heapq.heappush(later, (at + STEPS_MS[step], k, step))
            if self.tombstoned(k):
                heapq.heappush(later, (at + TOMB_AFTER_MS, k, "tombstone"))
        while later:
            yield heapq.heappop(later)


def _payload(step: str, k: int, ids: list[bytes]) -> Payload:
    if step == "raise":
        return AlertRaised(
            country=("PE", "KE", "ID", "CO")[k % 4],
            incident_types=[(IncidentType.DEATH_THREAT, IncidentType.RAID)[k % 2]],
            severity=Severity.SEVERE,
            urgency=(Urgency.IMMEDIATE, Urgency.DAYS, Urgency.WEEKS)[k % 3],
            languages=["es"],
            pseudonym=f"hrd-{'abcdefgh'[k % 8]}bcdefg{'234567'[k % 6]}",
        )
    alert = ids[0]
    if step == "claim":
        return AlertClaimed(alert=alert)
    if step == "update":
        return AlertUpdated(alert=alert, severity=Severity.EXTREME)
    if step == "resolve":
        return AlertResolved(alert=alert, outcome=Outcome.SAFE)
    return AlertTombstoned(alert=alert, reason=TombstoneReason.RETENTION_ENDED, events=sorted(ids))


def write_history(
    devnet: Devnet, path: Path, events: int, years: float, tombs: bool
) -> dict[str, int]:
    """Sign `events` events of node 1's and node 3's chains into an export file."""
    homes = {k: open_home(devnet.node(k).home) for k in (HOLDER, OTHER)}
    with sqlite3.connect(homes[HOLDER].store_path) as db:
        net = bytes(db.execute("SELECT value FROM meta WHERE key = 'net'").fetchone()[0])
        rosters = db.execute("SELECT version, cert FROM rosters ORDER BY version").fetchall()
    plan = Plan.of(events, years, int(time.time() * 1000) - 3_600_000, tombs)
    parts = {k: path.with_suffix(f".{k}") for k in homes}
    files = {k: parts[k].open("w") for k in homes}
    chains = {
        k: _Chain(h.config.node.org, h.keys().sign, h.keys().epoch, files[k])
        for k, h in homes.items()
    }
    ids: dict[int, list[bytes]] = {}
    tally: collections.Counter[str] = collections.Counter()
    #: Alerts closed within [nats] bucket_closed_days: the integrators' bucket keeps them.
    recent = int(time.time() * 1000) - NatsConfig().bucket_closed_days * DAY_MS
    done = opened = 0
    for at, k, step in plan.steps():
        if done == events:
            break
        origin = (HOLDER, OTHER)[k % 2]
        signer = (HOLDER, OTHER)[(k + 1) % 2] if step == "claim" else origin
        event = chains[signer].sign(net, at, _payload(step, k, ids.get(k, [])))
        ids.setdefault(k, []).append(event.id)
        if step in ("tombstone", "resolve" if not plan.tombstoned(k) else ""):
            del ids[k]
        opened += step == "raise" and plan.open(k)
        tally[step] += 1
        tally["closed_kept"] += step == "resolve" and at >= recent and not plan.tombstoned(k)
        done += 1
        if done % 100_000 == 0:
            log(f"signed {done:,} events")
    for f in files.values():
        f.close()
    with path.open("w") as out:
        for version, cert in rosters:
            out.write(json.dumps({"type": "roster", "version": version,
                                  "cert": base64.b64encode(cert).decode()}) + "\n")  # fmt: skip
        for c in chains.values():
            head = {"type": "head", "origin": c.org, "epoch": c.epoch, "seq": c.seq}
            out.write(json.dumps(head | {"id": (c.prev or b"").hex()}) + "\n")
        for k in homes:
            with parts[k].open() as part:
                shutil.copyfileobj(part, out)
            parts[k].unlink()
    return {"events": done, "alerts": tally["raise"], "open_alerts": opened,
            "closed_kept": tally["closed_kept"],
            "tombstoned": tally["tombstone"]}  # fmt: skip
