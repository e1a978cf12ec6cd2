"""Membership carried as chain events: roster proposals, approvals, key rotations.

Owns the payloads of `roster.proposed`, `roster.approved` and `key.rotated`. An
approval is a signature over the proposed roster's bytes (protocol/roster.py)
and proves itself, so any member's event may carry approvals collected from
others, such as a newcomer's proof of possession of its new key.

A `key.rotated` event is a member's routine move to its next key epoch, signed
by both keys: the event by the old signing key (as every event of its chain),
and the rotation statement inside it by the new one, which proves possession
and binds the new keys to this exact place in the old chain. Pure.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from msgspec import Meta

from rrn.protocol.encoding import DOMAIN_KEY_ROTATED, encode, pae
from rrn.protocol.envelope import Header
from rrn.protocol.errors import Reason, SignatureError, ValidationError
from rrn.protocol.roster import MAX_MEMBERS, Approval
from rrn.protocol.types import Hash32, Key32, Positive, Sig64

__all__ = [
    "KeyRotated",
    "RosterApproved",
    "RosterProposed",
    "check_rotation",
    "rotation_statement",
    "sign_rotation",
]

Approvals = Annotated[list[Approval], Meta(max_length=2 * MAX_MEMBERS)]


class RosterProposed(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The full bytes of a proposed next roster version, with any approvals already made."""

    roster: Annotated[bytes, Meta(max_length=60 * 1024)]
    approvals: Approvals = []


class RosterApproved(msgspec.Struct, frozen=True, kw_only=True):
    """Approvals of the proposed roster with this roster id."""

    roster: Hash32
    approvals: Annotated[list[Approval], Meta(min_length=1, max_length=2 * MAX_MEMBERS)]


class KeyRotated(msgspec.Struct, frozen=True, kw_only=True):
    """The origin's next key epoch: its new signing and sealing keys.

    Events of the origin's current epoch end with this one; its next events are
    signed under `epoch` with `sign_pub`, and members seal to `enc_pub` from now
    on. `proof` is the new signing key's signature over `rotation_statement`.
    """

    epoch: Positive
    sign_pub: Key32
    enc_pub: Key32
    proof: Sig64


def rotation_statement(
    *,
    net: bytes,
    origin: str,
    from_epoch: int,
    seq: int,
    epoch: int,
    sign_pub: bytes,
    enc_pub: bytes,
) -> bytes:
    """What the new key signs: PAE("rrn/key-rotated/v1", msgpack [net, origin,
    from_epoch, seq, epoch, sign_pub, enc_pub]), the old chain position included
    so that a proof can never be moved to another event or another network."""
    body = encode([net, origin, from_epoch, seq, epoch, sign_pub, enc_pub])
    return pae(DOMAIN_KEY_ROTATED, body)


def sign_rotation(
    new_key: Ed25519PrivateKey,
    *,
    net: bytes,
    origin: str,
    from_epoch: int,
    seq: int,
    epoch: int,
    enc_pub: bytes,
) -> KeyRotated:
    """The payload of a rotation to `new_key` at (origin, from_epoch, seq)."""
    sign_pub = new_key.public_key().public_bytes_raw()
    statement = rotation_statement(
        net=net,
        origin=origin,
        from_epoch=from_epoch,
        seq=seq,
        epoch=epoch,
        sign_pub=sign_pub,
        enc_pub=enc_pub,
    )
    return KeyRotated(
        epoch=epoch, sign_pub=sign_pub, enc_pub=enc_pub, proof=new_key.sign(statement)
    )


def check_rotation(header: Header, payload: KeyRotated) -> None:
    """Raise ProtocolError (reason bad_rotation) unless the new key signed this rotation here."""
    if payload.epoch <= header.epoch:
        raise ValidationError(
            f"a rotation must move to a later key epoch than {header.epoch}", Reason.BAD_ROTATION
        )
    statement = rotation_statement(
        net=header.net,
        origin=header.origin,
        from_epoch=header.epoch,
        seq=header.seq,
        epoch=payload.epoch,
        sign_pub=payload.sign_pub,
        enc_pub=payload.enc_pub,
    )
    try:
        Ed25519PublicKey.from_public_bytes(payload.sign_pub).verify(payload.proof, statement)
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError(
            "the new key's proof does not verify for this rotation", Reason.BAD_ROTATION
        ) from exc
