"""The ingest pipeline: verify -> chain check -> store -> project, in batches.

Owns the single writer of a node's history. Every event, the node's own and
everyone else's, passes through one worker that verifies it, places it in its
chain (append, duplicate no-op, hold behind a gap, record a fork), and commits
whole batches in one sqlite transaction together with the alert projection. Own
events get their seq and prev here, so the chain can never fork itself, and are
handed back only once durable.

Three stages overlap: while batch k commits (sqlite thread), batch k+1 is placed
and projected (event loop), and batch k+2's signatures are checked (worker
threads). Batch k+1 never reads what batch k is still writing: placement uses
in-memory heads and the in-flight batch's events, the projection its own cache.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from prometheus_client import Counter

from rrn.federation.alerts import AlertState, AlertView
from rrn.federation.chain import (
    Head,
    Verdict,
    check_fork_proof,
    classify,
    decode_fork_proof,
    fork_proof,
)
from rrn.federation.keyring import Keyring, Rotation
from rrn.node.home.clock import Clock
from rrn.node.home.config import IngestConfig
from rrn.node.pipeline.metrics import IngestMetrics, kind_label
from rrn.node.pipeline.projection import Change, Projection
from rrn.node.pipeline.responses import observe_responses
from rrn.node.pipeline.verify import Checked, Verifier
from rrn.node.store.db import APPLIED, UNAPPLIED, Batch, RosterRow, Store
from rrn.node.store.network import Network
from rrn.protocol.alerts import AlertRaised, AlertShared, AlertTombstoned
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event, open_envelope, sign_event
from rrn.protocol.errors import ProtocolError, Reason, StoreError
from rrn.protocol.kinds import (
    AlertPayload,
    Kind,
    Payload,
    encode_payload,
    kind_of,
    seal_event,
    unseal,
)
from rrn.protocol.membership import sign_rotation
from rrn.protocol.sealing import OpenKeys, SealError, encode_sealed, seal
from rrn.protocol.sealing import Position as SealedAt

__all__ = ["Identity", "Ingestor", "Outcome", "SealFor"]

logger = logging.getLogger(__name__)

ChainKey = tuple[str, int]
Position = tuple[str, int, int]
#: Called after each commit with the appended events and how each came.
CommitHook = Callable[[list[tuple[Event, str]]], Awaitable[None]]
#: Called with the wire bytes of each new fork proof, to broadcast it.
ForkHook = Callable[[bytes], Awaitable[None]]
AlertsHook = Callable[[list[tuple[AlertState, AlertView | None]] | None], None]
Reply = asyncio.Future["Outcome | Event"]
_QUEUE_MAX: Final = 20_000
#: Batches whose signatures are being checked ahead of the one being placed.
_VERIFY_AHEAD: Final = 2


@dataclass(frozen=True)
class Identity:
    """Who this node signs as, and the keys that open what is sealed to it."""

    org: str
    epoch: int
    key: Ed25519PrivateKey
    enc: OpenKeys | None = None
    #: Every signing key this node holds, by epoch (roster approvals are signed
    #: with the epoch the roster lists, which a rotation in the chain leaves behind).
    signing: Mapping[int, Ed25519PrivateKey] = dataclasses.field(default_factory=dict)

    def key_of(self, epoch: int) -> Ed25519PrivateKey | None:
        """The signing key of `epoch`, if this node holds it."""
        return self.key if epoch == self.epoch else self.signing.get(epoch)


@dataclass(frozen=True)
class _Rotate:
    """Rotate to this key epoch: the new signing key and the new sealing key's public half."""

    epoch: int
    key: Ed25519PrivateKey
    enc_pub: bytes


@dataclass(frozen=True)
class Outcome:
    """What became of a submitted event."""

    verdict: str  # appended | duplicate | held | fork | rejected
    event_id: bytes | None = None
    reason: Reason | None = None


@dataclass(frozen=True)
class SealFor:
    """Seal these plaintext details into the event's `sealed` field, to these members.

    Done when the event is signed: only then is its chain position known, and
    the blob is bound to it (protocol/sealing.py).
    """

    plaintext: bytes
    to: tuple[str, ...]


@dataclass
class _Item:
    received: float  # time.perf_counter() at receipt, for the latency histogram
    raw: bytes | None = None
    own: Payload | None = None
    refs: Sequence[bytes] = ()
    seal: SealFor | None = None
    #: Members the whole event is sealed to (a restricted alert's audience).
    audience: tuple[str, ...] | None = None
    rotate: _Rotate | None = None
    future: Reply | None = None
    #: How the event came: "own", "live" (pushed by a peer), "pull" (asked for), "local".
    source: str = "local"
    #: The member that delivered it, for per-peer accounting.
    peer: str | None = None
    #: A fork proof to record, or a roster version to adopt (control items).
    proof: bytes | None = None
    adopt: tuple[Network, list[RosterRow]] | None = None


#: A batch taken from the queue and the task checking its signatures.
_Verifying = tuple[list[_Item], "asyncio.Future[list[Checked | None]]"]


@dataclass
class _Work:
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
        self.network = network
        self.me = me
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
        self.heads: dict[ChainKey, Head] = {}
        self.frozen: dict[ChainKey, int] = {}
        #: Why own appends are refused, by cause (the store is behind, the chain forked).
        self._blocks: dict[str, str] = {}
        self.projection = Projection(store)
        #: Where signatures are checked; closed when `run` ends.
        self.verifier = Verifier(network.net, network.roster_bytes, network.keyring)
        self._held: dict[ChainKey, dict[int, list[Event]]] = collections.defaultdict(dict)
        self._held_count = 0
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(_QUEUE_MAX)
        self._inflight: _Work | None = None
        self._stored = 0
        self._kind_counters: dict[str, Counter] = {}

    async def load(self) -> None:
        """Read chain heads, freezes, held events and counters from the store."""
        self.heads = await self.store.heads()
        self.frozen = await self.store.freezes()
        for envelope, _ in await self.store.pending():
            self._hold(open_envelope(envelope))
        self._stored = await self.store.count_events()
        await self.projection.load()
        self._publish_gauges()

    @property
    def stored(self) -> int:
        """Events in the store."""
        return self._stored

    @property
    def open_alerts(self) -> int:
        """Alerts open or claimed (drills included)."""
        return self.projection.open_total

    # -- entry points -----------------------------------------------------------

    @property
    def appends_blocked(self) -> str | None:
        """Why own events are refused now, or None."""
        return next(iter(self._blocks.values()), None)

    def block_own(self, cause: str, why: str) -> None:
        """Refuse own events until `unblock_own(cause)`: signing on would fork our chain."""
        if cause not in self._blocks:
            logger.error("own events blocked: %s", why)
        self._blocks[cause] = why

    def unblock_own(self, cause: str) -> None:
        """Lift one cause of refusal (the others stay)."""
        if self._blocks.pop(cause, None) is not None:
            logger.info("own events no longer blocked (%s)", cause)

    async def submit(self, raw: bytes, *, source: str = "local", peer: str | None = None) -> Reply:
        """Queue received envelope bytes; the future resolves once handled."""
        future: Reply = asyncio.get_running_loop().create_future()
        item = _Item(time.perf_counter(), raw=raw, future=future, source=source, peer=peer)
        await self._queue.put(item)
        return future

    async def enqueue(self, raw: bytes, *, source: str = "local", peer: str | None = None) -> None:
        """Queue received envelope bytes, waiting for room; nobody waits for the outcome."""
        await self._queue.put(_Item(time.perf_counter(), raw=raw, source=source, peer=peer))

    def submit_nowait(self, raw: bytes, *, source: str = "live", peer: str | None = None) -> bool:
        """Queue envelope bytes without waiting; False (counted) if the queue is full."""
        try:
            self._queue.put_nowait(_Item(time.perf_counter(), raw=raw, source=source, peer=peer))
        except asyncio.QueueFull:
            self._reject(Reason.RATE_LIMITED, peer)
            return False
        return True

    async def record_fork_proof(self, proof: bytes, *, peer: str | None = None) -> Outcome:
        """Record a fork proof received from a peer (checked in the worker)."""
        future: Reply = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(time.perf_counter(), proof=proof, future=future, peer=peer))
        result = await future
        assert isinstance(result, Outcome)
        return result

    async def adopt(self, network: Network, rows: list[RosterRow]) -> None:
        """Switch to a newer roster (stored with these rows) in order with the events."""
        future: Reply = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(time.perf_counter(), adopt=(network, rows), future=future))
        await future

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
        if seal is None:
            encode_payload(payload)  # refuse what receivers would refuse, before queueing
        else:
            self._sealing_keys(seal.to)  # unknown members are refused before queueing
        if audience is None:
            audience = await self._audience_of(payload)
        future: Reply = asyncio.get_running_loop().create_future()
        item = _Item(
            time.perf_counter(),
            own=payload,
            refs=refs,
            seal=seal,
            audience=tuple(audience) if audience is not None else None,
            future=future,
            source="own",
        )
        await self._queue.put(item)
        result = await future
        assert isinstance(result, Event)
        return result

    async def rotate(self, epoch: int, key: Ed25519PrivateKey, enc_pub: bytes) -> Event:
        """Move this node to key epoch `epoch`: sign `key.rotated` with the current key,
        then every later event with `key`; return the rotation once durable.

        The private keys must already be on disk: once the event exists, the old
        epoch can sign nothing more.
        """
        if self.appends_blocked is not None:
            raise StoreError(self.appends_blocked)
        future: Reply = asyncio.get_running_loop().create_future()
        item = _Item(
            time.perf_counter(), rotate=_Rotate(epoch, key, enc_pub), future=future, source="own"
        )
        await self._queue.put(item)
        result = await future
        assert isinstance(result, Event)
        return result

    async def _audience_of(self, payload: Payload) -> tuple[str, ...] | None:
        """The audience of the alert an event is about, if that alert is restricted."""
        if not isinstance(payload, AlertPayload) or isinstance(
            payload, AlertRaised | AlertTombstoned
        ):
            return None
        state = await self.projection.state(payload.alert)
        if state is None or state.raised is None or not state.raised.audience:
            return None
        return state.raised.audience

    async def flush(self) -> None:
        """Wait until everything queued so far is durable (`run` must be running)."""
        await self._queue.join()

    # -- the worker -------------------------------------------------------------

    async def run(self) -> None:
        """Handle queued items in overlapping batches until cancelled.

        This task is the queue's only consumer: it takes batches in order and
        starts their signature checks ahead, so checks of the next batches run
        while this one is placed and committed.
        """
        ahead: collections.deque[_Verifying] = collections.deque()
        committing: asyncio.Future[None] | None = None
        try:
            while True:
                if not ahead:
                    ahead.append(self._verify(await self._take_waiting()))
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
                self._inflight = work
                committing = asyncio.ensure_future(self._finish(work))
                if work.batch.forks:
                    await committing  # the rebuild must finish before the next batch
        finally:
            for _, task in ahead:
                task.cancel()
            if committing is not None:
                committing.cancel()
            self.verifier.close()

    async def _take_waiting(self) -> list[_Item]:
        first = await self._queue.get()
        return [first, *self._take_now(self.config.batch_max - 1)]

    def _take_now(self, most: int) -> list[_Item]:
        items: list[_Item] = []
        while len(items) < most and not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    def _top_up(self, ahead: collections.deque[_Verifying]) -> None:
        while len(ahead) < _VERIFY_AHEAD and not self._queue.empty():
            ahead.append(self._verify(self._take_now(self.config.batch_max)))

    def _verify(self, items: list[_Item]) -> _Verifying:
        async def check() -> list[Checked | None]:
            received = [item.raw for item in items if item.raw is not None]
            results = iter(await self.verifier.verify(received))
            return [next(results) if item.raw is not None else None for item in items]

        return items, asyncio.ensure_future(check())

    async def _prepare(self, items: list[_Item], checked: list[Checked | None]) -> _Work:
        work = _Work(len(items))
        for item, verified in zip(items, checked, strict=True):
            try:
                result = await self._one(item, verified, work)
            except ProtocolError as exc:
                self._reject(exc.reason, item.peer)
                if (item.own is not None or item.rotate is not None) and item.future is not None:
                    work.failures.append((item.future, exc))
                    continue
                result = Outcome("rejected", reason=exc.reason)
            if item.future is not None:
                work.replies.append((item.future, result))
        await self._project(work)
        return work

    def _reject(self, reason: Reason, peer: str | None) -> None:
        self.metrics.rejected.labels(reason=str(reason)).inc()
        if peer is not None:
            self.metrics.peer_rejected.labels(peer=peer, reason=str(reason)).inc()
        logger.debug("rejected an event from %s: %s", peer or "local", reason)

    async def _finish(self, work: _Work) -> None:
        """Commit a prepared batch, then answer and announce it."""
        work.batch.durable = work.own or bool(work.batch.rosters or work.batch.forks)
        try:
            if work.batch:
                await self.store.commit(work.batch)
            if work.batch.forks or work.rebuild:
                await self.rebuild_projection()
        except StoreError as exc:
            logger.error("store commit failed; stopping ingest: %s", exc)
            for future, _ in work.replies:
                if not future.done():
                    future.set_exception(exc)
            raise
        finally:
            for _ in range(work.size):
                self._queue.task_done()
        self._after_commit(work)
        try:
            if self.on_commit is not None and work.appended:
                await self.on_commit([(e, source) for e, _, source in work.appended])
            if self.on_fork is not None:
                for fork in work.batch.forks:
                    await self.on_fork(fork[3])
            if self.on_dropped is not None and work.batch.drop_payloads:
                await self.on_dropped(work.batch.drop_payloads)
        except Exception:
            logger.exception("post-commit hook failed")

    async def _one(self, item: _Item, verified: Checked | None, work: _Work) -> Outcome | Event:
        if item.own is not None:
            event = self._sign_own(item.own, item.refs, item.seal, item.audience)
            self._append(event, item.received, "own", work)
            return event
        if item.rotate is not None:
            return self._rotate_own(item.rotate, item.received, work)
        if item.proof is not None:
            return await self._proof(item.proof, work)
        if item.adopt is not None:
            self._adopt(*item.adopt, work)
            return Outcome("adopted")
        if (
            isinstance(verified, ProtocolError)
            and verified.reason is Reason.UNKNOWN_EPOCH
            and item.raw is not None
        ):
            # Checked ahead, before this or an earlier batch taught the keyring a
            # rotation: check again against the keyring of now.
            verified = self.verifier.verify_one(item.raw)
        if isinstance(verified, ProtocolError):
            raise verified
        assert verified is not None
        return await self._place(verified, item, work)

    def _rotate_own(self, rotate: _Rotate, received: float, work: _Work) -> Event:
        """Sign our rotation, honour it, and sign with the new key from the next event on."""
        me = self.me
        head = self.heads.get((me.org, me.epoch))
        seq = (head.seq if head else 0) + 1
        payload = sign_rotation(
            rotate.key,
            net=self.network.net,
            origin=me.org,
            from_epoch=me.epoch,
            seq=seq,
            epoch=rotate.epoch,
            enc_pub=rotate.enc_pub,
        )
        rotation = Rotation(me.org, me.epoch, seq, rotate.epoch, payload.sign_pub, rotate.enc_pub)
        self.network.keyring.learn(rotation)  # refuses (ValidationError) before anything is signed
        event = self._sign_own(payload, (), None, None)
        self.me = dataclasses.replace(
            me, signing={**me.signing, me.epoch: me.key, rotate.epoch: rotate.key}
        )
        self._append(event, received, "own", work)  # honours it: we sign with the new key now
        if self.me.epoch != rotate.epoch:
            logger.error("this node's key rotation was not honoured; see the warning above")
        return event

    def _sign_own(
        self,
        payload: Payload,
        refs: Sequence[bytes],
        to_seal: SealFor | None,
        audience: tuple[str, ...] | None,
    ) -> Event:
        head = self.heads.get((self.me.org, self.me.epoch))
        seq = (head.seq if head else 0) + 1
        pos = SealedAt(self.network.net, self.me.org, self.me.epoch, seq)
        if to_seal is not None:
            if not isinstance(payload, AlertRaised | AlertShared):
                raise SealError("only alert.raised and alert.shared carry sealed details")
            blob = seal(to_seal.plaintext, self._sealing_keys(to_seal.to), pos)
            payload = msgspec.structs.replace(payload, sealed=encode_sealed(blob))
        if audience is not None:
            if not isinstance(payload, AlertPayload):
                raise SealError("only alert events are sealed whole")
            current = set(self.network.roster.orgs())
            payload = seal_event(
                payload, self._sealing_keys([o for o in audience if o in current]), pos
            )
        data = encode(payload) if to_seal is None and audience is None else encode_payload(payload)
        return sign_event(
            self.me.key,
            net=self.network.net,
            origin=self.me.org,
            epoch=self.me.epoch,
            seq=seq,
            prev=head.id if head else None,
            kind=str(kind_of(payload)),
            wall_ms=self.clock.now_ms(),
            roster_ver=self.network.roster_version,
            payload=data,
            refs=refs,
        )

    def _sealing_keys(self, orgs: Sequence[str]) -> dict[str, X25519PublicKey]:
        """The X25519 keys of current members, by org (SealError for anyone else).

        A member's latest key rotation in its chain gives its key, else the roster.
        """
        keys = {}
        for org in orgs:
            pub = self.network.keyring.enc_pub(org)
            if self.network.roster.member(org) is None or pub is None:
                raise SealError(f"{org} is not a current member: nothing is sealed to it")
            keys[org] = X25519PublicKey.from_public_bytes(pub)
        return keys

    # -- chains -----------------------------------------------------------------

    async def _place(self, event: Event, item: _Item, work: _Work) -> Outcome:
        h = event.header
        key = (h.origin, h.epoch)
        cut = self.network.keyring.cutoff(h.origin, h.epoch)
        if cut is not None and h.seq > cut:  # verified before a roster change or rotation ended it
            raise ProtocolError("key epoch cut off (roster or key rotation)", Reason.EPOCH_CUT_OFF)
        verdict = classify(h, event.id, self.heads.get(key), frozen_after=self.frozen.get(key))
        if verdict is Verdict.LOOKUP:
            stored = await self._stored_at((h.origin, h.epoch, h.seq), work)
            verdict = classify(
                h,
                event.id,
                self.heads.get(key),
                frozen_after=self.frozen.get(key),
                stored_id=stored.id if stored else None,
            )
        if verdict is Verdict.APPEND:
            self._append(event, item.received, item.source, work)
            self._release_held(key, item.received, item.source, work)
            return Outcome("appended", event.id)
        if verdict is Verdict.DUPLICATE:
            self.metrics.duplicates.inc()
            return Outcome("duplicate", event.id)
        if verdict is Verdict.GAP:
            return self._hold_new(event, work)
        if verdict is Verdict.FROZEN:
            raise ProtocolError("this chain is frozen by a fork proof", Reason.FEED_FROZEN)
        await self._fork(event, work)
        return Outcome("fork", event.id)

    async def _stored_at(self, pos: Position, work: _Work) -> Event | None:
        """The event at a chain position: this batch, the one committing, or the store."""
        found = work.at.get(pos)
        if found is None and self._inflight is not None:
            found = self._inflight.at.get(pos)
        return found or await self.store.event_at(*pos)

    def _append(self, event: Event, received: float, source: str, work: _Work) -> None:
        h = event.header
        if source == "own":
            work.own = True
        self.heads[h.origin, h.epoch] = Head(h.seq, event.id)
        work.batch.heads[h.origin, h.epoch] = Head(h.seq, event.id)
        work.at[h.origin, h.epoch, h.seq] = event
        work.appended.append((event, received, source))
        if h.kind == Kind.KEY_ROTATED:
            self._learn_rotation(event, work)

    def _learn_rotation(self, event: Event, work: _Work) -> None:
        """Honour a key rotation just appended: its epoch ends here, the next begins."""
        h = event.header
        frozen = self.frozen.get((h.origin, h.epoch))
        if frozen is not None and h.seq > frozen:
            return  # past a fork: not applied
        try:
            rotation = Rotation.from_event(event)
            assert rotation is not None
            keyring = self.network.keyring.learn(rotation)
        except ProtocolError as exc:
            work.refused[event.id] = exc.reason
            logger.warning(
                "%s signed a key rotation this node does not honour (%s)", h.origin, exc.reason
            )
            return
        self._use_keyring(keyring)
        logger.info(
            "%s rotated from key epoch %d to %d", h.origin, rotation.from_epoch, rotation.epoch
        )
        if h.origin == self.me.org and rotation.from_epoch == self.me.epoch:
            self._follow_own_rotation(rotation)

    def _follow_own_rotation(self, rotation: Rotation) -> None:
        """Our own chain moved on (our rotation, or one restored by sync after a
        restore from backup): sign with its new key, or not at all."""
        key = self.me.signing.get(rotation.epoch)
        if key is not None and key.public_key().public_bytes_raw() == rotation.sign_pub:
            self.me = dataclasses.replace(self.me, epoch=rotation.epoch, key=key)
            return
        self.block_own(
            "rotated",
            f"this node's chain moved to key epoch {rotation.epoch}, whose key this home does "
            f"not hold: restore keys/sign-{rotation.epoch}.pem and restart",
        )

    def _use_keyring(self, keyring: Keyring) -> None:
        self.network = self.network.with_keyring(keyring)
        self.verifier.update(self.network.net, self.network.roster_bytes, keyring)

    def _hold_new(self, event: Event, work: _Work) -> Outcome:
        h = event.header
        if h.origin == self.me.org:
            self.block_own(
                "behind",
                "the network holds events of this node beyond its own store; restore the "
                "store from a backup (or let it sync) before raising anything",
            )
        chain = self._held[h.origin, h.epoch]
        if any(e.id == event.id for e in chain.get(h.seq, [])):
            return Outcome("held", event.id)
        if sum(len(v) for v in chain.values()) >= self.config.max_pending_per_chain:
            raise ProtocolError("too many events held behind a gap", Reason.GAP_OVERFLOW)
        self._hold(event)
        work.batch.pending_add.append((event, self.clock.now_ms()))
        return Outcome("held", event.id)

    def _hold(self, event: Event) -> None:
        h = event.header
        self._held[h.origin, h.epoch].setdefault(h.seq, []).append(event)
        self._held_count += 1

    def _release_held(self, key: ChainKey, received: float, source: str, work: _Work) -> None:
        """After an append, place held events that now follow the head."""
        chain = self._held.get(key)
        if not chain:
            return
        while True:
            head = self.heads[key]
            if not self.network.keyring.may_sign(*key, head.seq + 1):
                # The epoch ended here (a key rotation): whatever was held beyond is void.
                for seq in list(chain):
                    self._unhold(chain.pop(seq), work)
                    self._reject(Reason.EPOCH_CUT_OFF, None)
                return
            waiting = chain.pop(head.seq + 1, None)
            if waiting is None:
                break
            self._unhold(waiting, work)
            nxt = next((e for e in waiting if e.header.prev == head.id), None)
            if nxt is None:
                break  # none links to the head: a fork that sync will surface again
            self._append(nxt, received, source, work)
        for seq in [s for s in chain if s <= self.heads[key].seq]:
            self._unhold(chain.pop(seq), work)

    def _unhold(self, events: list[Event], work: _Work) -> None:
        self._held_count -= len(events)
        for event in events:
            h = event.header
            work.batch.pending_del.append((h.origin, h.epoch, h.seq, event.id))

    async def _fork(self, event: Event, work: _Work) -> None:
        h = event.header
        other = await self._stored_at((h.origin, h.epoch, h.seq), work)
        if other is None or other.id == event.id:
            other = await self._stored_at((h.origin, h.epoch, h.seq - 1), work)
        assert other is not None, "a fork verdict implies a stored conflicting event"
        # Same seq: the chain diverges there. A broken link at seq s: it diverges at s-1.
        frozen_after = min(other.header.seq, h.seq) - 1
        previous = self.frozen.get((h.origin, h.epoch))
        if previous is None or frozen_after < previous:
            self.frozen[h.origin, h.epoch] = frozen_after
        proof = encode(fork_proof(other, event))
        work.batch.forks.append((h.origin, h.epoch, frozen_after, proof, self.clock.now_ms()))
        self.metrics.forks.inc()
        logger.warning(
            "fork proof: origin %s epoch %d signed two events at seq %d; chain frozen after %d",
            h.origin,
            h.epoch,
            frozen_after + 1,
            frozen_after,
        )
        if h.origin == self.me.org:
            self.block_own("fork", "this node's own chain has forked; a new key epoch is needed")

    async def _proof(self, data: bytes, work: _Work) -> Outcome:
        """Record a fork proof a peer sent: freeze the chain it convicts."""
        proof = decode_fork_proof(data)
        facts = check_fork_proof(proof, net=self.network.net, resolve=self.network.keyring.resolve)
        key = (facts.origin, facts.epoch)
        previous = self.frozen.get(key)
        if previous is not None and previous <= facts.frozen_after:
            return Outcome("duplicate")
        self.frozen[key] = facts.frozen_after
        work.batch.forks.append(
            (facts.origin, facts.epoch, facts.frozen_after, data, self.clock.now_ms())
        )
        self.metrics.forks.inc()
        logger.warning(
            "fork proof from %s: chain %s/%d frozen after %d",
            "a peer",
            facts.origin,
            facts.epoch,
            facts.frozen_after,
        )
        if facts.origin == self.me.org:
            self.block_own("fork", "this node's own chain has forked; a new key epoch is needed")
        return Outcome("fork")

    def _adopt(self, network: Network, rows: list[RosterRow], work: _Work) -> None:
        """Switch to a new roster; chains it cuts off stop where it says."""
        old = self.network
        if network.roster_version <= old.roster_version:
            return  # adopted already (announced by a peer and assembled here at once)
        network = network.with_keyring(old.keyring.rebased(network.roster))
        self.network = network
        self.verifier.update(network.net, network.roster_bytes, network.keyring)
        work.batch.rosters.extend(rows)
        for cut in network.roster.cutoffs:
            if old.roster.cutoff(cut.org, cut.epoch) == cut.last_seq:
                continue
            key = (cut.org, cut.epoch)
            if key not in self.frozen or self.frozen[key] > cut.last_seq:
                self.frozen[key] = cut.last_seq
            work.batch.cutoffs.append((cut.org, cut.epoch, cut.last_seq))
            work.rebuild = True
            if key == (self.me.org, self.me.epoch):
                self.block_own(
                    "cut",
                    f"the roster cut this node's key epoch {cut.epoch} after seq {cut.last_seq}; "
                    "it signs again once a roster lists its new key",
                )
        logger.info("adopted roster version %d", network.roster_version)

    # -- projection -------------------------------------------------------------

    async def _project(self, work: _Work) -> None:
        """Decide each appended event's status and fold alert events into state."""
        facts: list[tuple[Event, AlertPayload, tuple[str, ...]]] = []
        now = self.clock.now_ms()
        for event, _, _ in work.appended:
            status = APPLIED
            frozen = self.frozen.get((event.header.origin, event.header.epoch))
            if frozen is not None and event.header.seq > frozen:
                status = UNAPPLIED
            elif event.id in work.refused:
                status = UNAPPLIED
                self.metrics.unapplied.labels(reason=str(work.refused[event.id])).inc()
            elif event.payload is not None:
                try:
                    found = self._alert_fact(event)
                except ProtocolError as exc:
                    status = UNAPPLIED
                    self.metrics.unapplied.labels(reason=str(exc.reason)).inc()
                else:
                    if found is not None:
                        facts.append((event, *found))
            work.batch.events.append((event, status, now))
        if facts:
            work.batch.alerts, work.batch.views, work.changes = await self.projection.apply(facts)
            work.batch.drop_payloads = await self._erased_payloads(facts, work)

    def _alert_fact(
        self, event: Event, *, count: bool = True
    ) -> tuple[AlertPayload, tuple[str, ...]] | None:
        """An event's alert payload and the audience it was sealed to, if it is one.

        A sealed event not sealed to this member is an opaque link of its chain:
        counted (unless `count` is off, on a rebuild), kept, not applied. Raises
        ProtocolError when the payload is bad.
        """
        assert event.payload is not None
        try:
            _, payload, audience = unseal(
                event.header, event.payload, self.me.org, self.me.enc, self.network.net
            )
        except SealError as exc:
            if exc.reason is not Reason.NOT_AUTHORISED:
                raise
            if count:
                self.metrics.opaque.inc()
            return None
        return (payload, audience) if isinstance(payload, AlertPayload) else None

    async def _erased_payloads(
        self, facts: list[tuple[Event, AlertPayload, tuple[str, ...]]], work: _Work
    ) -> list[bytes]:
        """Events whose payloads go, after the facts of this batch were applied.

        Every fact of an alert its origin deleted (the alert's earlier events,
        and any arriving later), and the events a tombstone lists that are its
        signer's own alert events (so that members the alert was never shown to
        delete the opaque events they hold). Never a tombstone itself.
        """
        states = work.batch.alerts
        erased = {a for a, s in states.items() if s.erased is not None}
        before = {a: old for old, new in work.changes if (a := new.alert) in erased}
        drop: set[bytes] = set()
        for alert in erased:
            old = before.get(alert)
            if old is not None:
                drop |= {p.id for p in old.positions()} - {t.pos.id for t in old.tombstones}
        tombs = [(e, p) for e, p, _ in facts if isinstance(p, AlertTombstoned)]
        for event, payload, _ in facts:
            if (
                not isinstance(payload, AlertTombstoned)
                and (event.id if isinstance(payload, AlertRaised) else payload.alert) in erased
            ):
                drop.add(event.id)
        if tombs:
            listed = {i for _, t in tombs for i in t.events}
            in_batch = {e.id: (e.header.origin, e.header.kind) for e, _, _ in work.appended}
            known = {**await self.store.event_kinds(listed - in_batch.keys()), **in_batch}
            for event, tomb in tombs:
                for eid in tomb.events:
                    origin, kind = known.get(eid, ("", ""))
                    if origin == event.header.origin and _is_alert_kind(kind):
                        drop.add(eid)
        drop -= {e.id for e, _ in tombs}
        return sorted(drop)

    async def rebuild_projection(self) -> None:
        """Recompute every alert from applied events (after a fork froze a chain)."""
        facts: list[tuple[Event, AlertPayload, tuple[str, ...]]] = []
        async for row in self.store.iter_events(applied_only=True):
            event = row.event
            if event.payload is None:
                continue
            try:
                found = self._alert_fact(event, count=False)
            except ProtocolError:
                continue
            if found is not None:
                facts.append((event, *found))
        states = self.projection.rebuild(facts)
        await self.store.commit(Batch(alerts=states, replace_alerts=True))
        self._publish_gauges()
        if self.on_alerts is not None:
            self.on_alerts(None)

    def _after_commit(self, work: _Work) -> None:
        now = time.perf_counter()
        for event, received, _ in work.appended:
            self._ingested(event.header.kind).inc()
            self.metrics.latency.observe(now - received)
        self._stored += len(work.batch.events)
        self._publish_gauges()
        for old, new in work.changes:
            observe_responses(self.metrics.responses, self.network.roster, old, new)
        if self.on_alerts is not None and work.changes:
            views = work.batch.views
            self.on_alerts([(new, views.get(new.alert)) for _, new in work.changes])
        for future, result in work.replies:
            if not future.done():
                future.set_result(result)
        for future, exc in work.failures:
            if not future.done():
                future.set_exception(exc)

    def _ingested(self, kind: str) -> Counter:
        child = self._kind_counters.get(kind)
        if child is None:
            child = self._kind_counters[kind] = self.metrics.ingested.labels(kind=kind_label(kind))
        return child

    def _publish_gauges(self) -> None:
        self.metrics.stored.set(self._stored)
        self.metrics.held.set(self._held_count)
        self.metrics.set_open_alerts((s, u, e, n) for (s, u, e), n in self.projection.open.items())


def _is_alert_kind(kind: str) -> bool:
    """Kinds whose payloads a tombstone may delete: alert events, whole or sealed."""
    return kind == str(Kind.SEALED) or (
        kind.startswith("alert.") and kind != str(Kind.ALERT_TOMBSTONED)
    )
