"""Where each item of a batch goes: the chains as this node holds them, and the rules.

Owns the in-memory state of every chain (heads, freezes after fork proofs, events
held behind gaps, the network and keyring they verify under) and what one item
does to it: append (releasing what was held behind), a duplicate no-op, a hold
behind a gap, fork evidence that freezes a chain, an own event signed as the
next of our chain, a key rotation honoured, a roster version adopted. Nothing
here writes the store: it fills the batch that node/pipeline/ingest.py commits.
"""

from __future__ import annotations

import logging

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
from rrn.node.pipeline.batch import ChainKey, Item, Outcome, Position, Work
from rrn.node.pipeline.held import Held
from rrn.node.pipeline.metrics import IngestMetrics
from rrn.node.pipeline.own import OwnChain, Rotate
from rrn.node.pipeline.verify import Checked, Verifier
from rrn.node.store.db import Store
from rrn.node.store.network import Network
from rrn.node.store.rows import RosterRow
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event
from rrn.protocol.errors import ProtocolError, Reason
from rrn.protocol.kinds import Kind

__all__ = ["Chains"]

logger = logging.getLogger(__name__)


class Chains:
    """Every chain this node holds, and the placing of items into them."""

    def __init__(
        self,
        *,
        store: Store,
        network: Network,
        own: OwnChain,
        held: Held,
        verifier: Verifier,
        metrics: IngestMetrics,
        clock: Clock,
    ) -> None:
        self.store = store
        self.network = network
        self.own = own
        self.held = held
        self.verifier = verifier
        self.metrics = metrics
        self.clock = clock
        self.heads: dict[ChainKey, Head] = {}
        self.frozen: dict[ChainKey, int] = {}
        #: The batch being committed while the next is placed (its events count as stored).
        self.inflight: Work | None = None

    async def handle(self, item: Item, verified: Checked | None, work: Work) -> Outcome | Event:
        """Place one item into the batch; ProtocolError if it is refused."""
        if item.own is not None:
            head = self.heads.get((self.own.me.org, self.own.me.epoch))
            event = self.own.sign(
                item.own,
                self.network,
                head,
                refs=item.refs,
                to_seal=item.seal,
                audience=item.audience,
            )
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

    def _rotate_own(self, rotate: Rotate, received: float, work: Work) -> Event:
        """Sign our rotation, honour it, and sign with the new key from the next event on."""
        me = self.own.me
        event = self.own.sign_rotation(rotate, self.network, self.heads.get((me.org, me.epoch)))
        self._append(event, received, "own", work)  # honours it: we sign with the new key now
        if self.own.me.epoch != rotate.epoch:
            logger.error("this node's key rotation was not honoured; see the warning above")
        return event

    # -- placing a verified event -------------------------------------------------

    async def _place(self, event: Event, item: Item, work: Work) -> Outcome:
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
            return self._hold(event, work)
        if verdict is Verdict.FROZEN:
            raise ProtocolError("this chain is frozen by a fork proof", Reason.FEED_FROZEN)
        await self._fork(event, work)
        return Outcome("fork", event.id)

    async def _stored_at(self, pos: Position, work: Work) -> Event | None:
        """The event at a chain position: this batch, the one committing, or the store."""
        found = work.at.get(pos)
        if found is None and self.inflight is not None:
            found = self.inflight.at.get(pos)
        return found or await self.store.event_at(*pos)

    def _append(self, event: Event, received: float, source: str, work: Work) -> None:
        h = event.header
        if source == "own":
            work.own = True
        self.heads[h.origin, h.epoch] = Head(h.seq, event.id)
        work.batch.heads[h.origin, h.epoch] = Head(h.seq, event.id)
        work.at[h.origin, h.epoch, h.seq] = event
        work.appended.append((event, received, source))
        if h.kind == Kind.KEY_ROTATED:
            self._learn_rotation(event, work)

    # -- key rotations and rosters ------------------------------------------------

    def _learn_rotation(self, event: Event, work: Work) -> None:
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
        me = self.own.me
        if h.origin == me.org and rotation.from_epoch == me.epoch:
            self.own.follow(rotation)

    def _use_keyring(self, keyring: Keyring) -> None:
        self.network = self.network.with_keyring(keyring)
        self.verifier.update(self.network.net, self.network.roster_bytes, keyring)

    def _adopt(self, network: Network, rows: list[RosterRow], work: Work) -> None:
        """Switch to a new roster; chains it cuts off stop where it says."""
        old = self.network
        if network.roster_version <= old.roster_version:
            return  # adopted already (announced by a peer and assembled here at once)
        network = network.with_keyring(old.keyring.rebased(network.roster))
        self.network = network
        self.verifier.update(network.net, network.roster_bytes, network.keyring)
        work.batch.rosters.extend(rows)
        me = self.own.me
        for cut in network.roster.cutoffs:
            if old.roster.cutoff(cut.org, cut.epoch) == cut.last_seq:
                continue
            key = (cut.org, cut.epoch)
            if key not in self.frozen or self.frozen[key] > cut.last_seq:
                self.frozen[key] = cut.last_seq
            work.batch.cutoffs.append((cut.org, cut.epoch, cut.last_seq))
            work.rebuild = True
            if key == (me.org, me.epoch):
                self.own.block(
                    "cut",
                    f"the roster cut this node's key epoch {cut.epoch} after seq {cut.last_seq}; "
                    "it signs again once a roster lists its new key",
                )
        logger.info("adopted roster version %d", network.roster_version)

    # -- gaps -----------------------------------------------------------------------

    def _hold(self, event: Event, work: Work) -> Outcome:
        if event.header.origin == self.own.me.org:
            self.own.block(
                "behind",
                "the network holds events of this node beyond its own store; restore the "
                "store from a backup (or let it sync) before raising anything",
            )
        if self.held.add(event):
            work.batch.pending_add.append((event, self.clock.now_ms()))
        return Outcome("held", event.id)

    def _release_held(self, key: ChainKey, received: float, source: str, work: Work) -> None:
        """After an append, place held events that now follow the head."""
        if not self.held.holds(key):
            return
        while True:
            head = self.heads[key]
            if not self.network.keyring.may_sign(*key, head.seq + 1):
                # The epoch ended here (a key rotation): whatever was held beyond is void.
                for _ in self._unhold(self.held.take_all(key), work):
                    self.metrics.reject(Reason.EPOCH_CUT_OFF, None)
                return
            waiting = self._unhold(self.held.take(key, head.seq + 1), work)
            nxt = next((e for e in waiting if e.header.prev == head.id), None)
            if nxt is None:
                break  # nothing waits, or none links to the head: sync surfaces a fork again
            self._append(nxt, received, source, work)
        self._unhold(self.held.take_through(key, self.heads[key].seq), work)

    def _unhold(self, events: list[Event], work: Work) -> list[Event]:
        for event in events:
            h = event.header
            work.batch.pending_del.append((h.origin, h.epoch, h.seq, event.id))
        return events

    # -- forks ------------------------------------------------------------------------

    async def _fork(self, event: Event, work: Work) -> None:
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
        self._forked(h.origin, h.epoch, frozen_after, "this node")

    async def _proof(self, data: bytes, work: Work) -> Outcome:
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
        self._forked(facts.origin, facts.epoch, facts.frozen_after, "a peer")
        return Outcome("fork")

    def _forked(self, origin: str, epoch: int, frozen_after: int, found_by: str) -> None:
        self.metrics.forks.inc()
        logger.warning(
            "fork proof (found by %s): origin %s signed two events at seq %d of key epoch %d; "
            "chain frozen after %d",
            found_by,
            origin,
            frozen_after + 1,
            epoch,
            frozen_after,
        )
        if origin == self.own.me.org:
            self.own.block("fork", "this node's own chain has forked; a new key epoch is needed")
