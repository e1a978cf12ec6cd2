"""Signed events: the header, the envelope, signing and verification.

Owns the byte layout of an event on the wire, the limits checked before parsing,
the signing input and the event id. Pure: no I/O, no clock (the caller passes
`wall_ms`), no knowledge of rosters beyond a key-resolving callable.

Wire form (docs/PROTOCOL.md, "Events"):

    envelope = msgpack [header_bytes: bin, signature: bin(64), payload: bin | nil]
    signature = Ed25519(PAE("rrn/event/v1", header_bytes))
    id        = SHA-256(PAE("rrn/event-id/v1", header_bytes))
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Annotated, Final

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from msgspec import Meta

from rrn.protocol.encoding import (
    DECODE_ERRORS,
    DOMAIN_EVENT,
    DOMAIN_EVENT_ID,
    decode_canonical,
    digest,
    encode,
    pae,
)
from rrn.protocol.errors import (
    DecodeError,
    OversizeError,
    PayloadError,
    Reason,
    SignatureError,
    ValidationError,
)
from rrn.protocol.types import Hash32, NonNeg, OrgId, Positive

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_PAYLOAD_BYTES",
    "MAX_REFS",
    "PROTOCOL_VERSION",
    "Event",
    "Header",
    "KeyResolver",
    "event_id",
    "open_envelope",
    "sign_event",
    "verify_event",
    "wire_bytes",
]

PROTOCOL_VERSION: Final = 1
MAX_HEADER_BYTES: Final = 4096
MAX_PAYLOAD_BYTES: Final = 65536
#: header + signature + payload at their limits, plus msgpack framing, rounded up.
MAX_ENVELOPE_BYTES: Final = 70 * 1024
MAX_REFS: Final = 16

Kind = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,3}$", max_length=48)]


class Header(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, gc=False):
    """What the origin signs. Field order is the wire order; never reorder.

    Immutable and acyclic (`refs` a tuple of bytes), so never tracked by the garbage
    collector: a node catching up holds thousands (as Event does, `gc=False`)."""

    v: int
    net: Hash32
    origin: OrgId
    epoch: Positive
    seq: Positive
    prev: Hash32 | None
    kind: Kind
    wall_ms: NonNeg
    roster_ver: NonNeg
    refs: Annotated[tuple[Hash32, ...], Meta(max_length=MAX_REFS)]
    payload_hash: Hash32
    payload_len: Annotated[int, Meta(ge=0, le=MAX_PAYLOAD_BYTES)]


class _Wire(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    header: bytes
    sig: Annotated[bytes, Meta(min_length=64, max_length=64)]
    payload: bytes | None


def wire_bytes(header_bytes: bytes, sig: bytes, payload: bytes | None) -> bytes:
    """The canonical wire bytes of an event from its parts as stored: neither hashed
    nor decoded (a peer's page of 2,000 events was decoded whole, on the loop, only to
    be encoded again)."""
    return encode(_Wire(header_bytes, sig, payload))


class Event(msgspec.Struct, frozen=True, gc=False):
    """An event whose envelope is well-formed (and, from `verify_event`, verified)."""

    id: bytes
    header: Header
    header_bytes: bytes
    sig: bytes
    payload: bytes | None

    def envelope(self) -> bytes:
        """The canonical wire bytes of this event."""
        return wire_bytes(self.header_bytes, self.sig, self.payload)

    def without_payload(self) -> Event:
        """The same event with its detached payload dropped; it still verifies."""
        return Event(self.id, self.header, self.header_bytes, self.sig, None)


#: Resolves (origin, epoch, seq) to the public key that must have signed it, or
#: raises ValidationError (unknown_origin, unknown_epoch, epoch_cut_off).
KeyResolver = Callable[[str, int, int], Ed25519PublicKey]

_WIRE_DECODER: Final = msgspec.msgpack.Decoder(_Wire)
_HEADER_DECODER: Final = msgspec.msgpack.Decoder(Header)


def event_id(header_bytes: bytes) -> bytes:
    """The id of an event: a hash of its exact header bytes under its own domain."""
    return digest(DOMAIN_EVENT_ID, header_bytes)


def open_envelope(raw: bytes) -> Event:
    """Check sizes, then decode strictly; no signature check.

    Used by `verify_event`, and alone where only structure matters (export of a
    store whose signatures are checked separately).
    """
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise OversizeError(
            f"envelope is {len(raw)} bytes, limit {MAX_ENVELOPE_BYTES}", Reason.OVERSIZE_ENVELOPE
        )
    wire = decode_canonical(raw, _WIRE_DECODER, "envelope", Reason.MALFORMED_ENVELOPE)
    if len(wire.header) > MAX_HEADER_BYTES:
        raise OversizeError(
            f"header is {len(wire.header)} bytes, limit {MAX_HEADER_BYTES}", Reason.OVERSIZE_HEADER
        )
    if wire.payload is not None and len(wire.payload) > MAX_PAYLOAD_BYTES:
        raise OversizeError(
            f"payload is {len(wire.payload)} bytes, limit {MAX_PAYLOAD_BYTES}",
            Reason.OVERSIZE_PAYLOAD,
        )
    header = decode_header(wire.header)
    return Event(event_id(wire.header), header, wire.header, wire.sig, wire.payload)


def decode_header(data: bytes) -> Header:
    """Strictly decode header bytes and check the rules a schema cannot express."""
    try:
        header = decode_canonical(data, _HEADER_DECODER, "header", Reason.MALFORMED_HEADER)
    except DecodeError as exc:
        if exc.reason is Reason.MALFORMED_HEADER and _claimed_version(data) not in (
            None,
            PROTOCOL_VERSION,
        ):
            raise DecodeError(
                f"header version {_claimed_version(data)} is not supported (this node speaks "
                f"version {PROTOCOL_VERSION})",
                Reason.UNSUPPORTED_VERSION,
            ) from exc
        raise
    if header.v != PROTOCOL_VERSION:
        raise DecodeError(
            f"header version {header.v} is not supported (this node speaks version "
            f"{PROTOCOL_VERSION})",
            Reason.UNSUPPORTED_VERSION,
        )
    if (header.seq == 1) != (header.prev is None):
        raise DecodeError("header prev must be nil exactly when seq is 1", Reason.MALFORMED_HEADER)
    return header


def verify_event(raw: bytes, *, net: bytes, resolve: KeyResolver) -> Event:
    """Verify envelope bytes as received; return the event or raise ProtocolError.

    Order (each step's failure has its own reason): sizes, envelope decode,
    header decode and canonical form, version, network, key lookup, signature
    over the received header bytes, payload length and hash.
    """
    event = open_envelope(raw)
    check_signed(event, net=net, resolve=resolve)
    return event


def check_signed(event: Event, *, net: bytes, resolve: KeyResolver) -> None:
    """The network, signature and payload checks of an already opened event."""
    header = event.header
    if header.net != net:
        raise ValidationError("event belongs to another network", Reason.WRONG_NETWORK)
    key = resolve(header.origin, header.epoch, header.seq)
    try:
        key.verify(event.sig, pae(DOMAIN_EVENT, event.header_bytes))
    except InvalidSignature as exc:
        raise SignatureError("event signature does not verify", Reason.BAD_SIGNATURE) from exc
    if event.payload is not None:
        check_payload(header, event.payload)


def check_payload(header: Header, payload: bytes) -> None:
    """Raise PayloadError unless `payload` is exactly what the header committed to."""
    if len(payload) != header.payload_len:
        raise PayloadError(
            f"payload is {len(payload)} bytes, header says {header.payload_len}",
            Reason.PAYLOAD_LENGTH_MISMATCH,
        )
    if hashlib.sha256(payload).digest() != header.payload_hash:
        raise PayloadError("payload does not match its signed hash", Reason.PAYLOAD_HASH_MISMATCH)


def sign_event(
    key: Ed25519PrivateKey,
    *,
    net: bytes,
    origin: str,
    epoch: int,
    seq: int,
    prev: bytes | None,
    kind: str,
    wall_ms: int,
    roster_ver: int,
    payload: bytes,
    refs: Sequence[bytes] = (),
) -> Event:
    """Build and sign an event; the result passes `verify_event` with the public key."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise OversizeError(
            f"payload is {len(payload)} bytes, limit {MAX_PAYLOAD_BYTES}", Reason.OVERSIZE_PAYLOAD
        )
    header = Header(
        v=PROTOCOL_VERSION,
        net=net,
        origin=origin,
        epoch=epoch,
        seq=seq,
        prev=prev,
        kind=kind,
        wall_ms=wall_ms,
        roster_ver=roster_ver,
        refs=tuple(refs),
        payload_hash=hashlib.sha256(payload).digest(),
        payload_len=len(payload),
    )
    header_bytes = encode(header)
    # Round-trip through the strict decoder: a caller can never sign a header
    # that receivers would refuse (bad org id, prev/seq mismatch, too many refs).
    checked = decode_header(header_bytes)
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise OversizeError(
            f"header is {len(header_bytes)} bytes, limit {MAX_HEADER_BYTES}", Reason.OVERSIZE_HEADER
        )
    sig = key.sign(pae(DOMAIN_EVENT, header_bytes))
    return Event(event_id(header_bytes), checked, header_bytes, sig, payload)


def _claimed_version(data: bytes) -> int | None:
    """The version a header claims, read leniently, only to name the error."""
    try:
        value = msgspec.msgpack.decode(data)
    except DECODE_ERRORS:
        return None
    if isinstance(value, list) and value and type(value[0]) is int:
        return value[0]
    return None
