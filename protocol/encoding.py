"""Canonical bytes: the msgpack encoder, domain strings and signing input.

Owns the one deterministic encoder every signed structure goes through, the
domain strings that keep a signature for one object type from being reused for
another, and DSSE's pre-authentication encoding (PAE). Pure; imports nothing
outside the standard library and msgspec.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Final, TypeVar

import msgspec

from rrn.protocol.errors import DecodeError, Reason

__all__ = [
    "DECODE_ERRORS",
    "DOMAIN_CARD",
    "DOMAIN_CONTROL",
    "DOMAIN_EVENT",
    "DOMAIN_EVENT_ID",
    "DOMAIN_HEARTBEAT",
    "DOMAIN_KEY_ROTATED",
    "DOMAIN_REQUEST",
    "DOMAIN_ROSTER",
    "DOMAIN_ROSTER_ID",
    "decode_canonical",
    "digest",
    "encode",
    "pae",
    "redact",
]

# One domain string per object type (docs/PROTOCOL.md, "Domain separation").
DOMAIN_EVENT: Final = b"rrn/event/v1"
DOMAIN_EVENT_ID: Final = b"rrn/event-id/v1"
DOMAIN_ROSTER: Final = b"rrn/roster/v1"
DOMAIN_ROSTER_ID: Final = b"rrn/roster-id/v1"
DOMAIN_CARD: Final = b"rrn/card/v1"
DOMAIN_HEARTBEAT: Final = b"rrn/heartbeat/v1"
DOMAIN_REQUEST: Final = b"rrn/request/v1"
DOMAIN_CONTROL: Final = b"rrn/control/v1"
DOMAIN_KEY_ROTATED: Final = b"rrn/key-rotated/v1"

_ENCODER: Final = msgspec.msgpack.Encoder(order="deterministic")

#: Everything decoding untrusted msgpack can raise: msgspec's own errors, invalid
#: UTF-8 in a string, and nesting deeper than the decoder allows.
DECODE_ERRORS: Final = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)

T = TypeVar("T")


def encode(obj: object) -> bytes:
    """Encode with the single deterministic msgpack encoder used for signing."""
    return _ENCODER.encode(obj)


def pae(domain: bytes, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of `body` under the type `domain`.

    "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal.
    """
    return b"DSSEv1 %d %b %d %b" % (len(domain), domain, len(body), body)


def digest(domain: bytes, body: bytes) -> bytes:
    """SHA-256 over the PAE of `body`: ids and hashes of signed objects."""
    return hashlib.sha256(pae(domain, body)).digest()


def decode_canonical(
    data: bytes,
    decoder: msgspec.msgpack.Decoder[T],
    what: str,
    reason: Reason,
    encode: Callable[[T], bytes] | None = None,
) -> T:
    """Strictly decode `data` and insist it re-encodes to the very same bytes.

    One value has exactly one accepted encoding, so it has one id and one
    signature; a different spelling of the same value is refused. `encode` is
    the canonical encoder when it is not the plain one (rosters).
    """
    try:
        value = decoder.decode(data)
    except DECODE_ERRORS as exc:
        raise DecodeError(f"{what} does not decode: {redact(exc)}", reason) from exc
    if (encode or _ENCODER.encode)(value) != data:
        raise DecodeError(f"{what} is not in canonical encoding", Reason.NON_CANONICAL)
    return value


def redact(exc: Exception) -> str:
    """A decoder's message with every value taken from the input removed.

    msgspec names the failing path in backticks (kept) but quotes offending values
    and unknown field names (dropped), and those could be anything, including a
    defender's name typed into the wrong field.
    """
    text = _QUOTED.sub("'…'", str(exc))
    text = _UNKNOWN_FIELD.sub("unknown field", text)
    return text if len(text) <= 200 else text[:200] + "…"


_QUOTED: Final = re.compile(r"'[^']*'")
_UNKNOWN_FIELD: Final = re.compile(r"unknown field `[^`]*`")
