"""Messages between members that are not chain events: heartbeats and sync.

Owns the wire form of heartbeats (signed, carrying the sender's chain heads),
signs of life (signed, small, relayed across hops: 10.1b),
range requests (signed) and range responses (unsigned: the events inside prove
themselves), and how a signed message is made and opened. Pure.

    signed message = msgpack [body: bin, signature: bin(64)]
    signature      = Ed25519(PAE(domain, body))  with domain rrn/heartbeat/v1 or rrn/request/v1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Final, TypeVar

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from msgspec import Meta

from rrn.protocol.encoding import (
    DECODE_ERRORS,
    DOMAIN_ALIVE,
    DOMAIN_HEARTBEAT,
    DOMAIN_REQUEST,
    DOMAIN_SOFTWARE,
    decode_canonical,
    encode,
    pae,
)
from rrn.protocol.errors import DecodeError, OversizeError, Reason, SignatureError, ValidationError
from rrn.protocol.roster import MAX_MEMBERS
from rrn.protocol.types import Hash32, NonNeg, OrgId, Positive, Sig64

__all__ = [
    "MAX_ALIVE_BYTES",
    "MAX_HEARTBEAT_BYTES",
    "MAX_RANGE_EVENTS",
    "MAX_REQUEST_BYTES",
    "MAX_RESPONSE_BYTES",
    "MAX_SOFTWARE_BYTES",
    "MESSAGE_VERSION",
    "Alive",
    "HeadEntry",
    "Heartbeat",
    "RangeRequest",
    "RangeResponse",
    "Software",
    "decode_response",
    "encode_response",
    "open_alive",
    "open_heartbeat",
    "open_request",
    "open_software",
    "sign_alive",
    "sign_heartbeat",
    "sign_request",
    "sign_software",
]

MESSAGE_VERSION: Final = 1
MAX_HEARTBEAT_BYTES: Final = 256 * 1024
MAX_SOFTWARE_BYTES: Final = 1024
MAX_ALIVE_BYTES: Final = 512
MAX_REQUEST_BYTES: Final = 1024
#: Responses stay under nats-server's default 1 MB max_payload.
MAX_RESPONSE_BYTES: Final = 900 * 1024
MAX_RANGE_EVENTS: Final = 2000

Nonce = Annotated[bytes, Meta(min_length=16, max_length=16)]

#: Looks up the current signing key of (org, epoch) or raises ValidationError.
CurrentKey = Callable[[str, int], Ed25519PublicKey]

T = TypeVar("T")


class HeadEntry(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """The last event a node holds of one (origin, epoch) chain."""

    origin: OrgId
    epoch: Positive
    seq: NonNeg
    id: Hash32


class Heartbeat(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """Liveness, clock and version vector of one node, every few seconds."""

    v: int
    net: Hash32
    org: OrgId
    epoch: Positive
    boot: Nonce  # random per daemon start: counters restart with it
    counter: NonNeg  # strictly increasing within one boot
    wall_ms: NonNeg
    roster_ver: NonNeg
    heads: Annotated[list[HeadEntry], Meta(max_length=4096)]


class Alive(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """A member's sign of life (10.1b): published with each heartbeat and passed on by
    others to peers that do not hear it directly, so members that hear it only through
    others know it is live. What it proves is the signer's; when it was signed is
    judged by the receiver's own clock. `hears` says which members the signer hears
    directly now (a bit per member of roster `roster_ver`, in org order): a hint that
    tells its peers whether to pass signs on to it."""

    v: int
    net: Hash32
    org: OrgId
    epoch: Positive
    boot: Nonce
    counter: NonNeg
    wall_ms: NonNeg
    roster_ver: NonNeg
    hears: Annotated[bytes, Meta(max_length=(MAX_MEMBERS + 7) // 8)]


#: A version string as a node reports it (letters, digits and . + _ - only).
VersionText = Annotated[str, Meta(pattern=r"^[A-Za-z0-9.+_-]{0,64}$")]


class Software(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """What a node runs, announced at start and now and then (10.1a). Informational:
    a claim about itself, never used to decide anything."""

    v: int
    net: Hash32
    org: OrgId
    epoch: Positive
    wall_ms: NonNeg
    rrn: VersionText
    protocol: NonNeg
    nats_server: VersionText
    tz_database: VersionText
    lock: VersionText  # SHA-256 (hex) of the runtime lock it was installed from, or ""


class RangeRequest(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """Ask one peer for events of one chain from a seq on."""

    v: int
    net: Hash32
    requester: OrgId
    responder: OrgId
    epoch_of_requester: Positive
    nonce: Nonce
    wall_ms: NonNeg
    origin: OrgId
    epoch: Positive
    from_seq: Positive
    limit: Annotated[int, Meta(ge=1, le=MAX_RANGE_EVENTS)]


class RangeResponse(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """Envelopes of consecutive events of the requested chain; `more` if truncated."""

    nonce: Nonce
    origin: OrgId
    epoch: Positive
    events: Annotated[list[bytes], Meta(max_length=MAX_RANGE_EVENTS)]
    more: bool


class _Signed(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    body: bytes
    sig: Sig64


_SIGNED: Final = msgspec.msgpack.Decoder(_Signed)
_HEARTBEAT: Final = msgspec.msgpack.Decoder(Heartbeat)
_SOFTWARE: Final = msgspec.msgpack.Decoder(Software)
_ALIVE: Final = msgspec.msgpack.Decoder(Alive)
_REQUEST: Final = msgspec.msgpack.Decoder(RangeRequest)
_RESPONSE: Final = msgspec.msgpack.Decoder(RangeResponse)


def _sign(key: Ed25519PrivateKey, domain: bytes, body: object) -> bytes:
    data = encode(body)
    return encode(_Signed(data, key.sign(pae(domain, data))))


def sign_heartbeat(key: Ed25519PrivateKey, hb: Heartbeat) -> bytes:
    """Wire bytes of a heartbeat signed by the sender's current key."""
    return _sign(key, DOMAIN_HEARTBEAT, hb)


def sign_software(key: Ed25519PrivateKey, sw: Software) -> bytes:
    """Wire bytes of a software announcement signed by the sender's current key."""
    return _sign(key, DOMAIN_SOFTWARE, sw)


def open_software(data: bytes, *, net: bytes, key_for: CurrentKey) -> Software:
    """A verified software announcement, or a ProtocolError saying why not."""
    return _open(
        data,
        limit=MAX_SOFTWARE_BYTES,
        domain=DOMAIN_SOFTWARE,
        decoder=_SOFTWARE,
        signer=lambda sw: (sw.org, sw.epoch),
        key_for=key_for,
        net=net,
    )


def sign_alive(key: Ed25519PrivateKey, alive: Alive) -> bytes:
    """Wire bytes of a sign of life signed by the member's current key."""
    return _sign(key, DOMAIN_ALIVE, alive)


def open_alive(data: bytes, *, net: bytes, key_for: CurrentKey) -> Alive:
    """A verified sign of life, or a ProtocolError saying why not."""
    return _open(
        data,
        limit=MAX_ALIVE_BYTES,
        domain=DOMAIN_ALIVE,
        decoder=_ALIVE,
        signer=lambda a: (a.org, a.epoch),
        key_for=key_for,
        net=net,
    )


def sign_request(key: Ed25519PrivateKey, req: RangeRequest) -> bytes:
    """Wire bytes of a range request signed by the requester's current key."""
    return _sign(key, DOMAIN_REQUEST, req)


def _open(
    data: bytes,
    *,
    limit: int,
    domain: bytes,
    decoder: msgspec.msgpack.Decoder[T],
    signer: Callable[[T], tuple[str, int]],
    key_for: CurrentKey,
    net: bytes,
) -> T:
    if len(data) > limit:
        raise OversizeError("message exceeds its size limit", Reason.OVERSIZE_ENVELOPE)
    signed = decode_canonical(data, _SIGNED, "message", Reason.MALFORMED_MESSAGE)
    body = decode_canonical(signed.body, decoder, "message body", Reason.MALFORMED_MESSAGE)
    if getattr(body, "v", None) != MESSAGE_VERSION:
        raise DecodeError("message version not supported", Reason.UNSUPPORTED_VERSION)
    if getattr(body, "net", None) != net:
        raise ValidationError("message belongs to another network", Reason.WRONG_NETWORK)
    org, epoch = signer(body)
    try:
        key_for(org, epoch).verify(signed.sig, pae(domain, signed.body))
    except InvalidSignature as exc:
        raise SignatureError("message signature does not verify", Reason.BAD_SIGNATURE) from exc
    return body


def open_heartbeat(data: bytes, *, net: bytes, key_for: CurrentKey) -> Heartbeat:
    """A verified heartbeat, or a ProtocolError saying why not."""
    return _open(
        data,
        limit=MAX_HEARTBEAT_BYTES,
        domain=DOMAIN_HEARTBEAT,
        decoder=_HEARTBEAT,
        signer=lambda hb: (hb.org, hb.epoch),
        key_for=key_for,
        net=net,
    )


def open_request(data: bytes, *, net: bytes, key_for: CurrentKey) -> RangeRequest:
    """A verified range request, or a ProtocolError saying why not."""
    return _open(
        data,
        limit=MAX_REQUEST_BYTES,
        domain=DOMAIN_REQUEST,
        decoder=_REQUEST,
        signer=lambda r: (r.requester, r.epoch_of_requester),
        key_for=key_for,
        net=net,
    )


def encode_response(resp: RangeResponse) -> bytes:
    """Wire bytes of a range response."""
    return encode(resp)


def decode_response(data: bytes) -> RangeResponse:
    """A range response; its events are verified one by one by the receiver."""
    if len(data) > MAX_RESPONSE_BYTES + 64 * 1024:
        raise OversizeError("response exceeds its size limit", Reason.OVERSIZE_ENVELOPE)
    try:
        return _RESPONSE.decode(data)
    except DECODE_ERRORS as exc:
        raise DecodeError("malformed range response", Reason.MALFORMED_MESSAGE) from exc
