"""What flows through the ingest pipeline: queued items, the batch they form, outcomes.

Owns the shapes only; node/pipeline/ingest.py moves them through the stages and
node/pipeline/chains.py decides what each item does to the chains.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from rrn.federation.alerts import AlertState
from rrn.node.home.clock import Slicer
from rrn.node.pipeline.own import Rotate, SealFor
from rrn.node.store.network import Network
from rrn.node.store.rows import RosterRow
from rrn.node.store.writes import Batch
from rrn.protocol.envelope import Event
from rrn.protocol.errors import Reason
from rrn.protocol.kinds import Payload

__all__ = ["ChainKey", "Change", "Item", "Outcome", "Position", "Reply", "Work"]

ChainKey = tuple[str, int]
Position = tuple[str, int, int]
#: One alert's state before and after a batch.
Change = tuple[AlertState | None, AlertState]


@dataclass(frozen=True)
class Outcome:
    """What became of a submitted event."""

    verdict: str  # appended | duplicate | held | fork | rejected
    event_id: bytes | None = None
    reason: Reason | None = None


Reply = asyncio.Future["Outcome | Event"]


class Item(msgspec.Struct):
    """One thing queued for the pipeline: received bytes, an own payload, or a control item.

    A struct, not a dataclass: one holding only bytes and strings (an event pulled
    from a peer) is not tracked by the garbage collector, and a catch-up keeps
    thousands queued, which each full pass of the collector would otherwise walk."""

    received: float  # time.perf_counter() at receipt, for the latency histogram
    raw: bytes | None = None
    own: Payload | None = None
    refs: Sequence[bytes] = ()
    seal: SealFor | None = None
    #: Members the whole event is sealed to (a restricted alert's audience).
    audience: tuple[str, ...] | None = None
    rotate: Rotate | None = None
    future: Reply | None = None
    #: How the event came: "own", "live" (pushed by a peer), "pull" (asked for), "local".
    source: str = "local"
    #: The member that delivered it, for per-peer accounting.
    peer: str | None = None
    #: Pulled: the token of the answer it came in (node/peering/ranges.py), else 0.
    page: int = 0
    #: A fork proof to record, or a roster version to adopt (control items).
    proof: bytes | None = None
    adopt: tuple[Network, list[RosterRow]] | None = None
    #: Place held events whose time has come (a periodic control item).
    tick: bool = False

    @property
    def signs(self) -> bool:
        """Whether handling it signs an event of our own (its caller wants the failure)."""
        return self.own is not None or self.rotate is not None


@dataclass
class Work:
    """One batch: what to write, and what to tell submitters once it is durable."""

    size: int
    batch: Batch = field(default_factory=Batch)
    at: dict[Position, Event] = field(default_factory=dict)
    appended: list[tuple[Event, float, str]] = field(default_factory=list)
    rebuild: bool = False
    own: bool = False
    replies: list[tuple[Reply, Outcome | Event]] = field(default_factory=list)
    failures: list[tuple[Reply, BaseException]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    #: Key rotations appended but not honoured (kept in the chain, not applied).
    refused: dict[bytes, Reason] = field(default_factory=dict)
    #: Events an honest node does not pass on: kept unapplied, or refused by the rules.
    quiet: set[bytes] = field(default_factory=set)
    #: Hands the event loop back while the batch is placed and projected.
    slicer: Slicer = field(default_factory=Slicer)
