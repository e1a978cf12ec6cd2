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
    "DOMAIN_ALIVE",
    "DOMAIN_CARD",
    "DOMAIN_CONTROL",
    "DOMAIN_EVENT",
    "DOMAIN_EVENT_ID",
    "DOMAIN_HEARTBEAT",
    "DOMAIN_KEY_ROTATED",
    "DOMAIN_REQUEST",
    "DOMAIN_ROSTER",
    "DOMAIN_ROSTER_ID",
    "DOMAIN_SOFTWARE",
    "check_unique_keys",
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
DOMAIN_SOFTWARE: Final = b"rrn/software/v1"
DOMAIN_ALIVE: Final = b"rrn/alive/v1"
DOMAIN_CONTROL: Final = b"rrn/control/v1"
DOMAIN_KEY_ROTATED: Final = b"rrn/key-rotated/v1"

_ENCODER: Final = msgspec.msgpack.Encoder(order="deterministic")
#: Re-encodes a generic decoding in the order it was read (the duplicate-key fast path).
_AS_READ: Final = msgspec.msgpack.Encoder()
_MAX_DEPTH: Final = 32

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


def check_unique_keys(data: bytes) -> None:
    """Refuse msgpack in which any map, at any depth, names a key twice.

    Decoders disagree on such maps (the first value, the last, an error), so two
    implementations would derive different states from the same signed bytes.
    Keys are compared by value (a string spelled as fixstr and as str8 is the same
    key). Raises DecodeError (malformed_payload) or returns.
    """
    try:
        # Fast path: if the generic decoding re-encodes to the same bytes, no key
        # was dropped by the decoder, so none was repeated (what honest encoders
        # produce). Anything else is walked byte by byte.
        if _AS_READ.encode(msgspec.msgpack.decode(data)) == data:
            return
    except DECODE_ERRORS as exc:
        raise DecodeError(f"not msgpack: {redact(exc)}", Reason.MALFORMED_PAYLOAD) from exc
    try:
        end = _Walker(data).value(0, 0)
    except (IndexError, ValueError) as exc:
        raise DecodeError(f"malformed msgpack: {exc}", Reason.MALFORMED_PAYLOAD) from exc
    if end != len(data):
        raise DecodeError("malformed msgpack: trailing bytes", Reason.MALFORMED_PAYLOAD)


class _Walker:
    """Steps through msgpack without building values, checking map keys."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _int(self, at: int, size: int) -> int:
        if at + size > len(self.data):
            raise IndexError("truncated")
        return int.from_bytes(self.data[at : at + size], "big")

    def value(self, i: int, depth: int) -> int:
        """The offset just past the value at `i`."""
        if depth > _MAX_DEPTH:
            raise ValueError("nested too deep")
        shape, a, b = _SHAPES[self.data[i]]
        if shape == _FIXED:  # `a` bytes follow
            return i + 1 + a
        # `a` is the count itself (a fix type) or, negated, the width of the count.
        count, start = (a, i + 1) if a >= 0 else (self._int(i + 1, -a), i + 1 - a)
        if shape == _BYTES:  # then `b` bytes (an ext's type), then the data
            return start + b + count
        if shape == _ARRAY:
            for _ in range(count):
                start = self.value(start, depth + 1)
            return start
        if shape == _MAP:
            return self._map(start, count, depth)
        raise ValueError(f"byte 0x{self.data[i]:02x} starts no msgpack value")

    def _map(self, i: int, count: int, depth: int) -> int:
        seen: set[bytes] = set()
        for _ in range(count):
            start = i
            i = self.value(i, depth + 1)
            key = self._key(start, i)
            if key in seen:
                raise ValueError("a map names the same key twice")
            seen.add(key)
            i = self.value(i, depth + 1)
        return i

    def _key(self, start: int, end: int) -> bytes:
        first = self.data[start]
        if 0xA0 <= first <= 0xBF or first in (0xD9, 0xDA, 0xDB):
            _, a, _ = _SHAPES[first]  # strings: by their text, whatever the spelling
            return b"s" + self.data[start + 1 + (0 if a >= 0 else -a) : end]
        return b"o" + self.data[start:end]


_FIXED, _BYTES, _ARRAY, _MAP, _BAD = range(5)


def _shapes() -> list[tuple[int, int, int]]:
    """For each first byte of a msgpack value: its shape and sizes (see _Walker.value)."""
    table = [(_BAD, 0, 0)] * 256
    for b in range(256):
        if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
            table[b] = (_FIXED, 0, 0)  # fixints, nil, booleans
        elif 0xA0 <= b <= 0xBF:
            table[b] = (_BYTES, b & 0x1F, 0)  # fixstr
        elif 0x90 <= b <= 0x9F:
            table[b] = (_ARRAY, b & 0x0F, 0)
        elif 0x80 <= b <= 0x8F:
            table[b] = (_MAP, b & 0x0F, 0)
    for b, width in ((0xC4, 1), (0xC5, 2), (0xC6, 4), (0xD9, 1), (0xDA, 2), (0xDB, 4)):
        table[b] = (_BYTES, -width, 0)  # bin, str
    for b, width in ((0xC7, 1), (0xC8, 2), (0xC9, 4)):
        table[b] = (_BYTES, -width, 1)  # ext: a type byte, then the data
    sizes = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4}
    sizes |= {0xD3: 8, 0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}  # ints, floats, fixext
    for b, size in sizes.items():
        table[b] = (_FIXED, size, 0)
    for b, width, shape in ((0xDC, 2, _ARRAY), (0xDD, 4, _ARRAY), (0xDE, 2, _MAP), (0xDF, 4, _MAP)):
        table[b] = (shape, -width, 0)
    return table


_SHAPES: Final = _shapes()


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
