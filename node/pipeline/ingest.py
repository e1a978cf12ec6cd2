"""The ingest pipeline: verify -> chain check -> store -> project, in batches.

Owns the single writer of a node's history. Every event, the node's own and
everyone else's, passes through one worker that verifies it, places it in its
chain (node/pipeline/chains.py), and commits whole batches in one sqlite
transaction together with the alert projection. Own events get their seq and
prev here, so the chain can never fork itself, and are handed back only once
durable.

Three stages overlap: while batch k commits (sqlite thread), batch k+1 is placed
and projected (event loop), and batch k+2's signatures are checked (worker
processes). Batch k+1 never reads what batch k is still writing: placement uses
in-memory heads and the in-flight batch's events, the projection its own cache.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import AlertState
from rrn.federation.chain import Head
from rrn.node.home.clock import Clock, Slicer
from rrn.node.home.config import IngestConfig
from rrn.node.pipeline.batch import ChainKey, Item, Outcome, Reply, Work
from rrn.node.pipeline.chains import Chains
from rrn.node.pipeline.facts import applied_facts
from rrn.node.pipeline.held import Held
from rrn.node.pipeline.metrics import IngestMetrics
from rrn.node.pipeline.own import Identity, OwnChain, Rotate, SealFor, sealing_keys
from rrn.node.pipeline.projection import Projection
from rrn.node.pipeline.queue import PULL, IngestQueue
from rrn.node.pipeline.responses import observe_responses
from rrn.node.pipeline.verify import Checked, Verifier
from rrn.node.store.db import Store
from rrn.node.store.network import Network
from rrn.node.store.rows import RosterRow
from rrn.protocol.checkins import CheckinPlanned
from rrn.protocol.drills import DrillScheduled
from rrn.protocol.envelope import Event
from rrn.protocol.errors import ProtocolError, Reason, StoreError
from rrn.protocol.kinds import Payload, check_own

__all__ = ["AlertChanges", "Identity", "Ingestor", "Outcome", "SealFor"]

logger = logging.getLogger(__name__)

#: Called after each commit with the appended events, how each came, and whether an
#: honest node passes it on (not if it is kept unapplied, or the rules refuse it).
CommitHook = Callable[[list[tuple[Event, str, bool]]], Awaitable[None]]
#: Called with the wire bytes of each new fork proof, to broadcast it.
ForkHook = Callable[[bytes], Awaitable[None]]
#: Committed alert changes (each state with its view); None: every alert was judged
#: again (a rebuild).
AlertChanges = list[tuple[AlertState, AlertView | None]] | None
AlertsHook = Callable[[AlertChanges], None]
#: Batches whose signatures are being checked ahead of the one being placed.
_VERIFY_AHEAD: Final = 2
#: A batch taken from the queue and the task checking its signatures.
_Verifying = tuple[list[Item], "asyncio.Future[list[Checked | None]]"]


class Ingestor:
    """The one writer of a node's store."""

    def __init__(
        self,
        *,
        store: Store,
        network: Network,
        me: Identity,
        metrics: IngestMetrics,
        clock: Clock,
        config: IngestConfig,
        on_commit: CommitHook | None = None,
        on_fork: ForkHook | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.config = config
        self.on_commit = on_commit
        self.on_fork = on_fork
        #: Told each committed batch's changed alert states with their views (None
        #: after a rebuild: reread all).
        self.on_alerts: AlertsHook | None = None
        #: Told the ids of events whose payloads a tombstone deleted, once committed
        #: (to delete copies kept elsewhere, e.g. the integrators' stream).
        self.on_dropped: Callable[[list[bytes]], Awaitable[None]] | None = None
        #: Told how each envelope of a pulled page checked, in order (pull sync).
        self.on_pulled: Callable[[Item, Checked | None], None] | None = None
        self.own = OwnChain(me, clock)
        self.projection = Projection(store)
        #: Where signatures are checked; closed when `run` ends.
        self.verifier = Verifier(
            network.net, network.roster_bytes, network.keyring, self.metrics.workers_lost.inc
        )
        self.chains = Chains(
            store=store,
            network=network,
            own=self.own,
            held=Held(),
            verifier=self.verifier,
            metrics=metrics,
            clock=clock,
        )
        self._queue = IngestQueue()
        self._stored = 0

    async def load(self) -> None:
        """Read chain heads, freezes, held events and counters from the store."""
        await self.chains.load()
        self._stored = await self.store.count_events()
        await self.projection.load()
        self._publish_gauges()

    # -- what the rest of the node reads --------------------------------------------

    @property
    def network(self) -> Network:
        """The roster and keyring events verify under now."""
        return self.chains.network

    @property
    def me(self) -> Identity:
        """Who this node signs as."""
        return self.own.me

    @me.setter
    def me(self, me: Identity) -> None:
        self.own.me = me

    @property
    def heads(self) -> dict[ChainKey, Head]:
        """The last contiguous event of every chain held."""
        return self.chains.heads

    async def release_due_now(self) -> None:
        """Place held events whose time has come (and what follows them), now."""
        await self._handled(Item(time.perf_counter(), tick=True))

    @property
    def stored(self) -> int:
        """Events in the store."""
        return self._stored

    @property
    def open_alerts(self) -> int:
        """Alerts open or claimed (drills included)."""
        return self.projection.open_total

    @property
    def busy(self) -> bool:
        """Whether items taken in are not all handled: events placed in their chains (the
        heads say so) may not yet be stored, or their alerts' changes announced."""
        return self._queue.unfinished > 0

    @property
    def appends_blocked(self) -> str | None:
        """Why own events are refused now, or None."""
        return self.own.blocked

    # -- entry points -----------------------------------------------------------

    async def submit(self, raw: bytes, *, source: str = "local", peer: str | None = None) -> Reply:
        """Queue received envelope bytes; the future resolves once handled."""
        future: Reply = asyncio.get_running_loop().create_future()
        item = Item(time.perf_counter(), raw=raw, future=future, source=source, peer=peer)
        await self._queue.put(item)
        return future

    async def enqueue(self, raw: bytes, *, peer: str | None = None, page: int = 0) -> None:
        """Queue pulled envelope bytes, waiting for room among the pulled (queue.py);
        nobody waits for the outcome (`on_pulled` is told how it checked)."""
        item = Item(time.perf_counter(), raw=raw, source=PULL, peer=peer, page=page)
        await self._queue.put(item)

    def offer(self, raw: bytes, *, peer: str) -> Reply | None:
        """Queue envelope bytes pushed live by a peer, without waiting; the future of the
        outcome, or None (counted) if the queue is full."""
        future: Reply = asyncio.get_running_loop().create_future()
        item = Item(time.perf_counter(), raw=raw, source="live", peer=peer, future=future)
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.metrics.reject(Reason.RATE_LIMITED, peer)
            return None
        return future

    async def record_fork_proof(self, proof: bytes, *, peer: str | None = None) -> Outcome:
        """Record a fork proof received from a peer (checked in the worker)."""
        result = await self._handled(Item(time.perf_counter(), proof=proof, peer=peer))
        assert isinstance(result, Outcome)
        return result

    async def adopt(self, network: Network, rows: list[RosterRow]) -> None:
        """Switch to a newer roster (stored with these rows) in order with the events."""
        await self._handled(Item(time.perf_counter(), adopt=(network, rows)))

    async def append(
        self,
        payload: Payload,
        refs: Sequence[bytes] = (),
        *,
        seal: SealFor | None = None,
        audience: Sequence[str] | None = None,
    ) -> Event:
        """Sign `payload` as the next event of our own chain; return it once durable.

        With `seal`, the payload's `sealed` field is filled at signing time. With
        `audience`, the whole event is sealed to those members (kind `sealed`);
        events about an alert raised that way are sealed to its audience anyway.
        """
        if self.appends_blocked is not None:
            raise StoreError(self.appends_blocked)
        if seal is None or isinstance(payload, CheckinPlanned | DrillScheduled):
            check_own(payload)  # refuse what receivers would refuse, before queueing
        else:
            sealing_keys(self.network, seal.to)  # unknown members are refused before queueing
        if audience is None:
            audience = await self.projection.audience_of(payload)
        item = Item(
            time.perf_counter(),
            own=payload,
            refs=refs,
            seal=seal,
            audience=tuple(audience) if audience is not None else None,
            source="own",
        )
        result = await self._handled(item)
        assert isinstance(result, Event)
        return result

    async def rotate(self, epoch: int, key: Ed25519PrivateKey, enc_pub: bytes) -> Event:
        """Move this node to key epoch `epoch`: sign `key.rotated` with the current key,
        then every later event with `key`; return the rotation once durable. The private
        keys must already be on disk: once the event exists, the old epoch signs nothing."""
        if self.appends_blocked is not None:
            raise StoreError(self.appends_blocked)
        item = Item(time.perf_counter(), rotate=Rotate(epoch, key, enc_pub), source="own")
        result = await self._handled(item)
        assert isinstance(result, Event)
        return result

    async def _handled(self, item: Item) -> Outcome | Event:
        """Queue an item and wait until it is handled (and durable, if it was stored)."""
        item.future = asyncio.get_running_loop().create_future()
        await self._queue.put(item)
        return await item.future

    async def flush(self) -> None:
        """Wait until everything queued so far is durable (`run` must be running)."""
        await self._queue.join()

    # -- the worker -------------------------------------------------------------

    async def run(self) -> None:
        """Handle queued items in overlapping batches until cancelled: the queue's only
        consumer, it takes batches in order and starts their signature checks ahead, so
        the next batches are checked while this one is placed and committed."""
        ahead: collections.deque[_Verifying] = collections.deque()
        committing: asyncio.Future[None] | None = None
        try:
            while True:
                if not ahead:
                    ahead.append(self._verify(await self._queue.take(self.config.batch_max)))
                self._top_up(ahead)
                items, verifying = ahead[0]
                if committing is not None:
                    # Notice a failed commit at once, not when the next batch comes.
                    waiting: set[asyncio.Future[Any]] = {verifying, committing}
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    if committing.done():
                        committing.result()
                checked = await verifying
                ahead.popleft()
                self._top_up(ahead)
                await asyncio.sleep(0)  # let the checks just started reach their workers
                work = await self._prepare(items, checked)
                if committing is not None:
                    await committing
                self.chains.inflight = work
                committing = asyncio.ensure_future(self._finish(work))
                if work.batch.forks:
                    await committing  # the rebuild must finish before the next batch
        finally:
            for _, task in ahead:
                task.cancel()
            if committing is not None:
                committing.cancel()
            self.verifier.close()

    def _top_up(self, ahead: collections.deque[_Verifying]) -> None:
        while len(ahead) < _VERIFY_AHEAD and not self._queue.empty():
            ahead.append(self._verify(self._queue.take_now(self.config.batch_max)))

    def _verify(self, items: list[Item]) -> _Verifying:
        async def check() -> list[Checked | None]:
            received = [item.raw for item in items if item.raw is not None]
            results = iter(await self.verifier.verify(received))
            return [next(results) if item.raw is not None else None for item in items]

        return items, asyncio.ensure_future(check())

    async def _prepare(self, items: list[Item], checked: list[Checked | None]) -> Work:
        """Place a batch's items in their chains and project what they change."""
        work = Work(len(items))
        for item, verified in zip(items, checked, strict=True):
            await work.slicer.step()
            if item.page and self.on_pulled is not None:
                self.on_pulled(item, verified)
            try:
                result = await self.chains.handle(item, verified, work)
            except ProtocolError as exc:
                self.metrics.reject(exc.reason, item.peer)
                logger.debug("refused an item from %s: %s", item.peer or "local", exc.reason)
                if item.signs and item.future is not None:
                    work.failures.append((item.future, exc))
                    continue
                result = Outcome("rejected", reason=exc.reason)
            if item.future is not None:
                work.replies.append((item.future, result))
        now_ms, frozen = self.clock.now_ms(), self.chains.frozen
        facts = await applied_facts(
            work, frozen, self.me, self.network.net, metrics=self.metrics, now_ms=now_ms
        )
        if facts:
            await self.projection.project(work, facts, self.network.authority, self.metrics.alerts)
        return work

    async def _finish(self, work: Work) -> None:
        """Commit a prepared batch, then answer and announce it."""
        work.batch.durable = work.own or bool(work.batch.rosters or work.batch.forks)
        try:
            try:
                if work.batch:
                    await self.store.commit(work.batch)
                self.projection.committed(work)
                if work.batch.forks or work.rebuild:
                    await self.rebuild_projection()
            except StoreError as exc:
                logger.error("store commit failed; stopping ingest: %s", exc)
                for future, _ in work.replies:
                    if not future.done():
                        future.set_exception(exc)
                raise
            await self._after_commit(work)  # in slices: done (flush returns) once it ends
        finally:
            self._queue.done(work.size)
        try:
            if self.on_commit is not None and work.appended:
                await self.on_commit(
                    [(e, source, e.id not in work.quiet) for e, _, source in work.appended]
                )
            if self.on_fork is not None:
                for fork in work.batch.forks:
                    await self.on_fork(fork[3])
            if self.on_dropped is not None and work.batch.drop_payloads:
                await self.on_dropped(list(work.batch.drop_payloads))
        except Exception:
            logger.exception("post-commit hook failed")

    async def rebuild_projection(self) -> None:
        """Recompute every alert from applied events (after a fork froze a chain)."""
        await self.projection.rebuilt(self.me, self.network.net, self.network.authority)
        self._publish_gauges()
        if self.on_alerts is not None:
            self.on_alerts(None)

    async def _after_commit(self, work: Work) -> None:
        now, slicer = time.perf_counter(), Slicer()
        for event, received, _ in work.appended:
            self.metrics.appended(event.header.kind, now - received)
            await slicer.step()
        self._stored += len(work.batch.events)
        self._publish_gauges()
        for old, new in work.changes:
            observe_responses(self.metrics.responses, self.network.roster, old, new)
            await slicer.step()
        if self.on_alerts is not None and work.changes:
            views = work.batch.views
            self.on_alerts([(new, views.get(new.alert)) for _, new in work.changes])
        for future, result in work.replies:
            if not future.done():
                future.set_result(result)
        for future, exc in work.failures:
            if not future.done():
                future.set_exception(exc)

    def _publish_gauges(self) -> None:
        self.metrics.stored.set(self._stored)
        self.metrics.held.set(self.chains.held.count)
        self.metrics.alerts.set_open((s, u, e, n) for (s, u, e), n in self.projection.open.items())
