"""This node's own chain: who it signs as, signing its next event, and why it must not.

Owns the identity the node signs with (and the keys that open what is sealed to
it), sealing at signing time (only then is the event's chain position known, and
sealed blobs are bound to it), the signing of a key rotation, and the causes that
block own appends (a store behind the network, a fork, a roster cut): signing on
in any of those would fork the node's own chain.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from rrn.federation.chain import Head
from rrn.federation.keyring import Rotation
from rrn.node.home.clock import Clock
from rrn.node.store.network import Network
from rrn.protocol.alerts import AlertRaised, AlertShared
from rrn.protocol.checkins import CheckinPlanned
from rrn.protocol.collective import CollectiveProposed
from rrn.protocol.drills import DrillScheduled
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event, sign_event
from rrn.protocol.kinds import FactPayload, Payload, encode_payload, kind_of, seal_event
from rrn.protocol.membership import sign_rotation
from rrn.protocol.sealing import OpenKeys, SealError, encode_sealed, seal
from rrn.protocol.sealing import Position as SealedAt

__all__ = ["Identity", "OwnChain", "Rotate", "SealFor", "sealing_keys"]

logger = logging.getLogger(__name__)


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
class SealFor:
    """Seal these plaintext details into the event's `sealed` field, to these members.

    Done when the event is signed: only then is its chain position known, and
    the blob is bound to it (protocol/sealing.py).
    """

    plaintext: bytes
    to: tuple[str, ...]


@dataclass(frozen=True)
class Rotate:
    """Rotate to this key epoch: the new signing key and the new sealing key's public half."""

    epoch: int
    key: Ed25519PrivateKey
    enc_pub: bytes


class OwnChain:
    """Signs this node's events, each the next of its chain, unless something blocks it."""

    def __init__(self, me: Identity, clock: Clock) -> None:
        self.me = me
        self._clock = clock
        #: Why own appends are refused, by cause (the store is behind, the chain forked).
        self._blocks: dict[str, str] = {}

    @property
    def blocked(self) -> str | None:
        """Why own events are refused now, or None."""
        return next(iter(self._blocks.values()), None)

    def block(self, cause: str, why: str) -> None:
        """Refuse own events until `unblock(cause)`."""
        if cause not in self._blocks:
            logger.error("own events blocked: %s", why)
        self._blocks[cause] = why

    def unblock(self, cause: str) -> None:
        """Lift one cause of refusal (the others stay)."""
        if self._blocks.pop(cause, None) is not None:
            logger.info("own events no longer blocked (%s)", cause)

    def sign(
        self,
        payload: Payload,
        network: Network,
        head: Head | None,
        *,
        not_before: int = 0,
        refs: Sequence[bytes] = (),
        to_seal: SealFor | None = None,
        audience: tuple[str, ...] | None = None,
    ) -> Event:
        """`payload` signed as the event after `head`, sealed as asked.

        Its time is the clock's, or `not_before` (the latest time the chain claimed)
        if the clock went back: along a chain, time never goes back.
        """
        me = self.me
        seq = (head.seq if head else 0) + 1
        pos = SealedAt(network.net, me.org, me.epoch, seq)
        if isinstance(payload, CheckinPlanned):
            payload = _seal_plan(payload, to_seal, network, pos)
        elif isinstance(payload, DrillScheduled):  # its secret (until now in the clear)
            blob = seal(payload.secret, sealing_keys(network, [me.org]), pos)
            payload = msgspec.structs.replace(payload, secret=encode_sealed(blob))
        elif to_seal is not None:
            if not isinstance(payload, AlertRaised | AlertShared | CollectiveProposed):
                raise SealError("only alert.raised, alert.shared and proposals carry sealed text")
            blob = seal(to_seal.plaintext, sealing_keys(network, to_seal.to), pos)
            payload = msgspec.structs.replace(payload, sealed=encode_sealed(blob))
        if audience is not None:
            if not isinstance(payload, FactPayload):
                raise SealError("only alert and check-in events are sealed whole")
            current = set(network.roster.orgs())
            payload = seal_event(
                payload, sealing_keys(network, [o for o in audience if o in current]), pos
            )
        sealed = (
            to_seal is not None or audience is not None or isinstance(payload, _SEALED_AS_SIGNED)
        )
        data = encode_payload(payload) if sealed else encode(payload)
        return sign_event(
            me.key,
            net=network.net,
            origin=me.org,
            epoch=me.epoch,
            seq=seq,
            prev=head.id if head else None,
            kind=str(kind_of(payload)),
            wall_ms=max(self._clock.now_ms(), not_before),
            roster_ver=network.roster_version,
            payload=data,
            refs=refs,
        )

    def sign_rotation(
        self, rotate: Rotate, network: Network, head: Head | None, *, not_before: int = 0
    ) -> Event:
        """Sign `key.rotated` to `rotate`'s epoch; the node holds the new key from now on.

        Refuses (ValidationError) before anything is signed if the keyring would
        not honour it. The new key signs once the event is appended (`follow`).
        """
        me = self.me
        seq = (head.seq if head else 0) + 1
        payload = sign_rotation(
            rotate.key,
            net=network.net,
            origin=me.org,
            from_epoch=me.epoch,
            seq=seq,
            epoch=rotate.epoch,
            enc_pub=rotate.enc_pub,
        )
        rotation = Rotation(me.org, me.epoch, seq, rotate.epoch, payload.sign_pub, rotate.enc_pub)
        network.keyring.learn(rotation)
        event = self.sign(payload, network, head, not_before=not_before)
        self.me = dataclasses.replace(
            me, signing={**me.signing, me.epoch: me.key, rotate.epoch: rotate.key}
        )
        return event

    def follow(self, rotation: Rotation) -> None:
        """Our own chain moved on (our rotation, or one restored by sync after a
        restore from backup): sign with its new key, or not at all."""
        key = self.me.signing.get(rotation.epoch)
        if key is not None and key.public_key().public_bytes_raw() == rotation.sign_pub:
            self.me = dataclasses.replace(self.me, epoch=rotation.epoch, key=key)
            return
        self.lacks_key(rotation.epoch)

    def lacks_key(self, epoch: int) -> None:
        """Our chain is at key epoch `epoch`, whose key this home does not hold."""
        self.block(
            "rotated",
            f"this node's chain moved to key epoch {epoch}, whose key this home does "
            f"not hold: restore keys/sign-{epoch}.pem and restart",
        )


def sealing_keys(network: Network, orgs: Sequence[str]) -> dict[str, X25519PublicKey]:
    """The X25519 keys of current members, by org (SealError for anyone else).

    A member's latest key rotation in its chain gives its key, else the roster.
    """
    keys = {}
    for org in orgs:
        pub = network.keyring.enc_pub(org)
        if network.roster.member(org) is None or pub is None:
            raise SealError(f"{org} is not a current member: nothing is sealed to it")
        keys[org] = X25519PublicKey.from_public_bytes(pub)
    return keys


#: Payloads with a field sealed to this member as they are signed.
_SEALED_AS_SIGNED: Final = (CheckinPlanned, DrillScheduled)


def _seal_plan(
    plan: CheckinPlanned, details: SealFor | None, network: Network, pos: SealedAt
) -> CheckinPlanned:
    """A check-in plan as signed: its `duress` field (the encoded DuressMap, until now)
    sealed to the origin alone, its alert's details sealed as asked."""
    duress = seal(plan.duress, sealing_keys(network, [pos.origin]), pos)
    alert = plan.alert
    if details is not None:
        blob = seal(details.plaintext, sealing_keys(network, details.to), pos)
        alert = msgspec.structs.replace(alert, sealed=encode_sealed(blob))
    return msgspec.structs.replace(plan, alert=alert, duress=encode_sealed(duress))
