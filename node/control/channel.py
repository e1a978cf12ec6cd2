"""The local control channel between the CLI and its own daemon.

Owns the request/reply messages and their authentication. The CLI sends a
request on the node's own NATS, subject `rrn.local.ctl.<org>`; the daemon
answers. On the embedded server the subject is reachable only with the node's
local credential (HOME/keys/nats.pass); in addition every request carries an
HMAC-SHA256 under HOME/keys/control.key over its body, a timestamp within five
minutes and a nonce never seen before, so the channel stays closed even on a
shared external NATS. Both files are 0600: only the node's OS user can drive it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Final, TypeVar

import msgspec
from msgspec import Meta

from rrn.protocol.encoding import DECODE_ERRORS, DOMAIN_CONTROL, check_unique_keys, pae, redact
from rrn.protocol.errors import ControlError, DecodeError, Reason

__all__ = [
    "MAX_SKEW_MS",
    "ControlReply",
    "Handler",
    "Verifier",
    "decode_args",
    "decode_reply",
    "encode_reply",
    "handler",
    "make_request",
    "now_ms",
    "to_json",
]

#: How far a request's time may be from the daemon's clock (and how long its nonce is kept).
MAX_SKEW_MS: Final = 5 * 60 * 1000
_MAX_REQUEST_BYTES: Final = 256 * 1024

T = TypeVar("T")


class _Request(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    op: Annotated[str, Meta(max_length=64)]
    args: bytes
    ts_ms: int
    nonce: Annotated[bytes, Meta(min_length=16, max_length=16)]
    #: The subject the answer goes to: covered by the MAC, so a copy of the request
    #: cannot have its answer sent anywhere else.
    reply: Annotated[str, Meta(min_length=1, max_length=128)]


class _Signed(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    body: bytes
    mac: Annotated[bytes, Meta(min_length=32, max_length=32)]


class ControlReply(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The daemon's answer: a result, or one line saying what went wrong."""

    ok: bool
    error: str = ""
    result: msgspec.Raw = msgspec.Raw(b"\xc0")


class Request(msgspec.Struct, frozen=True):
    """An authenticated request, decoded."""

    op: str
    args: bytes
    #: Its single-use id: a retry of the same request carries the same nonce.
    nonce: bytes
    ts_ms: int
    reply: str


Handler = Callable[[bytes], Awaitable[object]]


def make_request(key: bytes, op: str, args: object, now_ms: int, reply: str) -> bytes:
    """Encode and authenticate a request for operation `op`, answered on `reply`."""
    body = msgspec.msgpack.encode(
        _Request(
            op=op,
            args=msgspec.msgpack.encode(args),
            ts_ms=now_ms,
            nonce=secrets.token_bytes(16),
            reply=reply,
        )
    )
    return msgspec.msgpack.encode(_Signed(body=body, mac=_mac(key, body)))


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, pae(DOMAIN_CONTROL, body), hashlib.sha256).digest()


class Verifier:
    """Checks the MAC and freshness of control requests (single use is the server's)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def check(self, data: bytes, now_ms: int, *, reply: str) -> Request:
        """The request that came with answer subject `reply`, or DecodeError (counted,
        never answered with details)."""
        if len(data) > _MAX_REQUEST_BYTES:
            raise DecodeError("control request too large", Reason.OVERSIZE_ENVELOPE)
        try:
            signed = msgspec.msgpack.decode(data, type=_Signed)
        except DECODE_ERRORS as exc:
            raise DecodeError("malformed control request", Reason.MALFORMED_MESSAGE) from exc
        if not hmac.compare_digest(_mac(self._key, signed.body), signed.mac):
            raise DecodeError("control request not authenticated", Reason.BAD_SIGNATURE)
        try:
            req = msgspec.msgpack.decode(signed.body, type=_Request)
        except DECODE_ERRORS as exc:
            raise DecodeError("malformed control request", Reason.MALFORMED_MESSAGE) from exc
        if abs(req.ts_ms - now_ms) > MAX_SKEW_MS:
            raise DecodeError("stale control request", Reason.STALE_MESSAGE)
        if req.reply != reply:
            raise DecodeError("answer subject is not the one signed", Reason.MALFORMED_MESSAGE)
        return Request(req.op, req.args, req.nonce, req.ts_ms, req.reply)


def decode_args(data: bytes, type_: type[T]) -> T:
    """Arguments of an operation; a ControlError naming the field if they are wrong."""
    try:
        check_unique_keys(data)
        return msgspec.msgpack.decode(data, type=type_)
    except DECODE_ERRORS as exc:
        raise ControlError(f"invalid arguments: {redact(exc)}") from exc
    except DecodeError as exc:
        raise ControlError(f"invalid arguments: {exc}") from exc


def handler(type_: type[T], fn: Callable[[T], Awaitable[object]]) -> Handler:
    """An operation handler: decode its arguments as `type_`, then call `fn`."""

    async def handle(data: bytes) -> object:
        return await fn(decode_args(data, type_))

    return handle


def encode_reply(reply: ControlReply, result: object = None) -> bytes:
    """Bytes of a reply, with `result` encoded inside."""
    if result is not None:
        reply = msgspec.structs.replace(reply, result=msgspec.Raw(msgspec.msgpack.encode(result)))
    return msgspec.msgpack.encode(reply)


def decode_reply(data: bytes, type_: type[T]) -> T:
    """The result of a reply, or ControlError with the daemon's message."""
    try:
        reply = msgspec.msgpack.decode(data, type=ControlReply)
        if not reply.ok:
            raise ControlError(reply.error or "the daemon refused the request")
        return msgspec.msgpack.decode(reply.result, type=type_)
    except DECODE_ERRORS as exc:
        raise ControlError("the daemon's answer could not be read (version mismatch?)") from exc


def to_json(value: object) -> str:
    """JSON text of a result, as `--json` prints it."""
    return json.dumps(msgspec.to_builtins(value), indent=2, sort_keys=False)


def now_ms() -> int:
    """Wall time for request stamps (the CLI has no injected clock)."""
    return time.time_ns() // 1_000_000
