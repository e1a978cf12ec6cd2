"""Sealed details: encrypted once, readable only by the members they are sealed to.

Owns the wire form and the cryptography of a sealed blob (docs/PROTOCOL.md,
"Sealed details"). Each seal uses a fresh 32-byte content key K:

- the plaintext is encrypted with ChaCha20-Poly1305 under K (a zero nonce: K
  encrypts exactly one message), with associated data binding it to its place:
  the network, the origin's chain position (origin, epoch, seq) and the key
  commitment;
- K is committed to, `commit = SHA-256(PAE("rrn/seal-key/v1", K))`, so a
  recipient can tell that every recipient got the same key (no wrap can open
  another plaintext for one member than for the others);
- K is wrapped to each recipient's X25519 key (`enc_pub` in its roster entry)
  with HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
  ChaCha20-Poly1305), the HPKE `info` naming the network, the position and the
  recipient, so a wrap cannot be moved to another event or another member.

The blob sits in the event's payload, whose hash the origin signs in the header:
the ciphertext and the commitment are therefore covered by the signature, and
a payload deleted later (a tombstone) leaves the chain verifiable. Pure.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Mapping, Sequence
from typing import Annotated, Final

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from msgspec import Meta

from rrn.protocol.encoding import decode_canonical, encode, pae
from rrn.protocol.errors import DecodeError, ProtocolError, Reason
from rrn.protocol.types import Hash32, OrgId

__all__ = [
    "DETAIL_FIELDS",
    "MAX_SEALED_BYTES",
    "MAX_SEALED_EVENT_BYTES",
    "SEAL_VERSION",
    "Details",
    "OpenKeys",
    "Position",
    "SealError",
    "Sealed",
    "Wrap",
    "decode_details",
    "decode_sealed",
    "encode_details",
    "encode_sealed",
    "open_sealed",
    "reseal",
    "seal",
]

SEAL_VERSION: Final = 1
#: Plaintext limit: sealed details and up to 256 wraps must fit in one event payload (60 KiB).
MAX_SEALED_BYTES: Final = 16 * 1024
#: Plaintext limit of a sealed event (an alert payload, itself holding a details blob).
MAX_SEALED_EVENT_BYTES: Final = 40 * 1024
MAX_RECIPIENTS: Final = 256
DOMAIN_SEAL_KEY: Final = b"rrn/seal-key/v1"
DOMAIN_SEALED: Final = b"rrn/sealed/v1"
DOMAIN_SEAL_WRAP: Final = b"rrn/seal-wrap/v1"

#: The private key(s) a member opens blobs with: after a key rotation it holds its
#: new sealing key and the older ones (blobs sealed before others learnt the new one).
OpenKeys = X25519PrivateKey | Sequence[X25519PrivateKey]

_SUITE: Final = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
#: enc (32) + wrapped key (32) + tag (16).
WRAP_BYTES: Final = 80
_ZERO_NONCE: Final = bytes(12)


class SealError(ProtocolError):
    """A sealed blob that cannot be opened: not for us, tampered with, or misplaced."""

    reason = Reason.MALFORMED_PAYLOAD


Text = Annotated[str, Meta(min_length=1, max_length=4000)]


class Details(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What is sealed about a defender: the plaintext inside a blob (a msgpack map)."""

    identity: Text | None = None  # name, organisation, role
    location: Text | None = None  # exact place, address, detention centre
    contacts: Text | None = None  # phone, Signal, relatives, lawyer
    risk: Text | None = None  # risk assessment
    narrative: Text | None = None  # what happened

    def fields(self) -> dict[str, str]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not None}


_DETAILS_DECODER: Final = msgspec.msgpack.Decoder(Details)
#: The fields of sealed details, in order.
DETAIL_FIELDS: Final = Details.__struct_fields__


def encode_details(details: Details) -> bytes:
    """The plaintext of a blob; refuses empty details."""
    if not details.fields():
        raise SealError("sealed details are empty: give at least one field")
    data = encode(details)
    if len(data) > MAX_SEALED_BYTES:
        raise SealError(f"sealed details are limited to {MAX_SEALED_BYTES} bytes")
    return data


def decode_details(data: bytes) -> Details:
    """Details opened from a blob (strictly typed; unknown fields are ignored)."""
    try:
        return _DETAILS_DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SealError("the opened details do not decode") from exc


class Position(msgspec.Struct, frozen=True):
    """Where the sealed blob lives: the network and the origin's chain position."""

    net: bytes
    origin: str
    epoch: int
    seq: int

    def bytes(self) -> bytes:
        """net ‖ u8 len(origin) ‖ origin ‖ u32 epoch ‖ u64 seq (big-endian)."""
        org = self.origin.encode()
        return self.net + bytes([len(org)]) + org + struct.pack(">IQ", self.epoch, self.seq)


class Wrap(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """The content key, sealed to one member with HPKE: [org, enc ‖ ct]."""

    to: OrgId
    key: Annotated[bytes, Meta(min_length=WRAP_BYTES, max_length=WRAP_BYTES)]


class Sealed(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """[v, commit, wraps, ct]: wraps sorted by org, each org once."""

    v: int
    commit: Hash32
    wraps: Annotated[list[Wrap], Meta(min_length=1, max_length=MAX_RECIPIENTS)]
    ct: Annotated[bytes, Meta(min_length=16, max_length=MAX_SEALED_EVENT_BYTES + 16)]

    def recipients(self) -> list[str]:
        return [w.to for w in self.wraps]


_DECODER: Final = msgspec.msgpack.Decoder(Sealed)


def key_commitment(key: bytes) -> bytes:
    """The commitment to a content key carried in the blob."""
    return hashlib.sha256(pae(DOMAIN_SEAL_KEY, key)).digest()


def _aad(pos: Position, commit: bytes) -> bytes:
    return pae(DOMAIN_SEALED, pos.bytes() + commit)


def _info(pos: Position, org: str) -> bytes:
    return pae(DOMAIN_SEAL_WRAP, pos.bytes() + org.encode())


def seal(
    plaintext: bytes,
    recipients: Mapping[str, X25519PublicKey],
    pos: Position,
    *,
    key: bytes | None = None,
    limit: int = MAX_SEALED_BYTES,
) -> Sealed:
    """Seal `plaintext` at `pos` to each recipient (org -> its X25519 key).

    `key` is for test vectors only; leave it out to get a fresh random key.
    `limit` is the plaintext limit (details; sealed events allow more).
    """
    if not recipients:
        raise SealError("a sealed blob needs at least one recipient")
    if len(plaintext) > min(limit, MAX_SEALED_EVENT_BYTES):
        raise SealError(f"sealed plaintext is limited to {limit} bytes")
    k = key if key is not None else os.urandom(32)
    commit = key_commitment(k)
    ct = ChaCha20Poly1305(k).encrypt(_ZERO_NONCE, plaintext, _aad(pos, commit))
    wraps = [
        Wrap(to=org, key=_SUITE.encrypt(k, recipients[org], info=_info(pos, org)))
        for org in sorted(recipients)
    ]
    return Sealed(v=SEAL_VERSION, commit=commit, wraps=wraps, ct=ct)


def _content_key(sealed: Sealed, me: str, private: OpenKeys, pos: Position) -> bytes:
    wrap = next((w for w in sealed.wraps if w.to == me), None)
    if wrap is None:
        raise SealError("these details are not sealed to this member", Reason.NOT_AUTHORISED)
    keys = [private] if isinstance(private, X25519PrivateKey) else list(private)
    k = None
    for candidate in keys:  # newest first; a wrong key fails its AEAD tag
        try:
            k = _SUITE.decrypt(wrap.key, candidate, info=_info(pos, me))
            break
        except (InvalidTag, ValueError):
            continue
    if k is None:
        raise SealError("the wrapped key does not open (tampered, or another event's)")
    if len(k) != 32 or key_commitment(k) != sealed.commit:
        raise SealError("the wrapped key does not match the sealed key commitment")
    return k


def open_sealed(sealed: Sealed, me: str, private: OpenKeys, pos: Position) -> bytes:
    """The plaintext, if `me` is a recipient and nothing was changed or moved."""
    k = _content_key(sealed, me, private, pos)
    try:
        return ChaCha20Poly1305(k).decrypt(_ZERO_NONCE, sealed.ct, _aad(pos, sealed.commit))
    except InvalidTag as exc:
        raise SealError("the sealed details do not open (tampered, or another event's)") from exc


def reseal(
    sealed: Sealed,
    me: str,
    private: OpenKeys,
    pos: Position,
    *,
    to: Mapping[str, X25519PublicKey],
    at: Position,
) -> Sealed:
    """The same details sealed afresh to other recipients at another position.

    How a holder passes what a claimant needs to act: a new content key, so the
    new recipients learn nothing that opens the original blob.
    """
    return seal(open_sealed(sealed, me, private, pos), to, at)


def encode_sealed(sealed: Sealed) -> bytes:
    """Canonical bytes of a sealed blob, checked as receivers check them."""
    data = encode(sealed)
    decode_sealed(data)
    return data


def decode_sealed(data: bytes) -> Sealed:
    """Strictly decode a sealed blob and check its form (not whether it opens)."""
    if len(data) > MAX_SEALED_EVENT_BYTES + 16 + MAX_RECIPIENTS * (WRAP_BYTES + 40) + 64:
        raise SealError("sealed blob is too large", Reason.OVERSIZE_PAYLOAD)
    try:
        sealed = decode_canonical(data, _DECODER, "sealed blob", Reason.MALFORMED_PAYLOAD)
    except DecodeError as exc:
        raise SealError(str(exc), exc.reason) from exc
    if sealed.v != SEAL_VERSION:
        raise SealError("sealed blob version is not supported", Reason.UNSUPPORTED_VERSION)
    orgs = sealed.recipients()
    if orgs != sorted(set(orgs)):
        raise SealError("sealed blob recipients must be sorted, each once")
    return sealed
