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
from rrn.federation.limits import MAX_FUTURE_MS, Usage, charge, limits_of, over_quota
from rrn.node.home.clock import Clock
from rrn.node.pipeline.batch import ChainKey, Item, Outcome, Position, Work
from rrn.node.pipeline.held import Held
from rrn.node.pipeline.metrics import IngestMetrics
from rrn.node.pipeline.own import OwnChain, Rotate
from rrn.node.pipeline.verify import Checked, Verifier
from rrn.node.store.db import Store
from rrn.node.store.network import Network
from rrn.node.store.rows import RosterRow
from rrn.node.store.writes import Batch
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event, open_envelope
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
        #: What each chain claimed so far (latest signed time, that day's events, bytes).
        self.usage: dict[ChainKey, Usage] = {}
        self.frozen: dict[ChainKey, int] = {}
        #: Chains whose event at this seq was refused for good (a quota): nothing after
        #: it can ever be placed, so nothing after it is asked for.
        self.stuck: dict[ChainKey, int] = {}
        #: The batch being committed while the next is placed (its events count as stored).
        self.inflight: Work | None = None

    def held_upto(self, key: ChainKey) -> int:
        """The last seq of a chain held here, counting events held right after its head."""
        head = self.heads.get(key)
        return self.held.upto(key, head.seq if head else 0)

    async def load(self) -> None:
        """Heads, what each chain claimed, freezes and held events, from the store."""
        self.heads = await self.store.heads()
        self.usage = await self.store.usage()
        self.frozen = await self.store.freezes()
        extra = Batch()
        for envelope, _ in await self.store.pending():
            event = open_envelope(envelope)
            if not self.held.restore(event):  # a second event for one position (older stores)
                h = event.header
                extra.pending_del.append((h.origin, h.epoch, h.seq, event.id))
        if extra:
            await self.store.commit(extra)

    async def handle(self, item: Item, verified: Checked | None, work: Work) -> Outcome | Event:
        """Place one item into the batch; ProtocolError if it is refused."""
        if item.own is not None:
            key = (self.own.me.org, self.own.me.epoch)
            head = self.heads.get(key)
            event = self.own.sign(
                item.own,
                self.network,
                head,
                not_before=self._usage_before(key, (head.seq if head else 0) + 1).wall_ms,
                refs=item.refs,
                to_seal=item.seal,
                audience=item.audience,
            )
            self._admit(event, work)
            self._append(event, item.received, "own", work)
            return event
        if item.tick:
            self._release_due(item.received, work)
            return Outcome("released")
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
        key = (me.org, me.epoch)
        head = self.heads.get(key)
        before = self._usage_before(key, (head.seq if head else 0) + 1)
        event = self.own.sign_rotation(rotate, self.network, head, not_before=before.wall_ms)
        self._admit(event, work)
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
            if not self._due(event):
                return self._hold(event, work)  # claims a time too far ahead: it waits
            self._admit(event, work)
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
        await self._fork_stored(event, work)
        return Outcome("fork", event.id)

    async def _stored_at(self, pos: Position, work: Work) -> Event | None:
        """The event at a chain position: this batch, the one committing, or the store."""
        found = work.at.get(pos)
        if found is None and self.inflight is not None:
            found = self.inflight.at.get(pos)
        return found or await self.store.event_at(*pos)

    def _due(self, event: Event) -> bool:
        """Whether the time an event claims is near enough to apply it now."""
        return event.header.wall_ms <= self.clock.now_ms() + MAX_FUTURE_MS

    def _usage_before(self, key: ChainKey, seq: int) -> Usage:
        """What the history before `seq` of this chain claimed: its own so far, or for the
        first event of an epoch a rotation began, the rotated epoch's (so a rotation
        cannot reset a quota)."""
        if seq > 1:
            return self.usage.get(key, Usage())
        rotation = self.network.keyring.rotated_into(*key)
        if rotation is None:
            return Usage()
        return self.usage.get((rotation.origin, rotation.from_epoch), Usage())

    def _admit(self, event: Event, work: Work) -> None:
        """Charge an event to its chain's day; refuse it (for good) past the quota, keep it
        unapplied if its time goes back. Call just before `_append`."""
        h = event.header
        key = (h.origin, h.epoch)
        usage, unapplied = charge(self._usage_before(key, h.seq), h)
        problem = over_quota(usage, limits_of(self.network.roster))
        if problem is not None:
            if self.stuck.get(key) != h.seq:
                logger.warning(
                    "%s (epoch %d) signed %s: its events from seq %d on are refused",
                    h.origin, h.epoch, problem, h.seq,
                )  # fmt: skip
            self.stuck[key] = h.seq
            raise ProtocolError(f"{h.origin} signed {problem}", Reason.QUOTA_EXCEEDED)
        if unapplied is not None:
            work.refused[event.id] = unapplied
        self.usage[key] = work.batch.usage[key] = usage

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
        if network.authority != old.authority:
            work.rebuild = True  # roles, members or policy changed: every view is judged anew
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
        h = event.header
        if h.origin == self.own.me.org and self._due(event):
            # Only we sign our chain, so a verified event of it beyond our head proves
            # our store is behind (restored from a backup): signing on would fork it.
            self.own.block(
                "behind",
                f"the network holds this node's own events up to seq {h.seq} at least, beyond "
                "its store; catching up before signing anything new",
            )
        other = self.held.add(event, limits_of(self.network.roster))
        if other is not None:  # two events signed for one position: fork evidence
            self._fork(event, work, other=other)
            return Outcome("fork", event.id)
        if self.held.at((h.origin, h.epoch), h.seq) is event:
            work.batch.pending_add.append((event, self.clock.now_ms()))
        return Outcome("held", event.id)

    def _release_due(self, received: float, work: Work) -> None:
        """Place held events whose time has come and whose predecessors are here."""
        for key in self.held.chains():
            self._release_held(key, received, "pull", work)

    def _release_held(self, key: ChainKey, received: float, source: str, work: Work) -> None:
        """Place held events that now follow the head (and are due)."""
        if not self.held.holds(key):
            return  # the common case: nothing waits in this chain
        while self.held.holds(key):
            head = self.heads.get(key, Head(0, b""))
            if not self.network.keyring.may_sign(*key, head.seq + 1):
                # The epoch ended here (a key rotation): whatever was held beyond is void.
                for _ in self._unhold(self.held.take_all(key), work):
                    self.metrics.reject(Reason.EPOCH_CUT_OFF, None)
                return
            waiting = self.held.at(key, head.seq + 1)
            if waiting is None or not self._due(waiting):
                break  # a gap, or a time still too far ahead
            self._unhold([self.held.take(key, head.seq + 1) or waiting], work)
            if waiting.header.prev != (head.id if head.seq else None):
                break  # it does not link to the head: a fork that sync will surface again
            try:
                self._admit(waiting, work)
            except ProtocolError as exc:
                self.metrics.reject(exc.reason, None)
                break
            self._append(waiting, received, source, work)
            if self.own.me.org == key[0] and not self.held.holds(key):
                self.own.unblock("behind")
        self._unhold(self.held.take_through(key, self.heads.get(key, Head(0, b"")).seq), work)

    def _unhold(self, events: list[Event], work: Work) -> list[Event]:
        for event in events:
            h = event.header
            work.batch.pending_del.append((h.origin, h.epoch, h.seq, event.id))
        return events

    # -- forks ------------------------------------------------------------------------

    async def _fork_stored(self, event: Event, work: Work) -> None:
        """Record a fork between `event` and the stored event it conflicts with."""
        h = event.header
        other = await self._stored_at((h.origin, h.epoch, h.seq), work)
        if other is None or other.id == event.id:
            other = await self._stored_at((h.origin, h.epoch, h.seq - 1), work)
        assert other is not None, "a fork verdict implies a stored conflicting event"
        self._fork(event, work, other=other)

    def _fork(self, event: Event, work: Work, *, other: Event) -> None:
        h = event.header
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
