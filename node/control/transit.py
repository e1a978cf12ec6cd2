"""Sealed details on the control channel between the CLI and its daemon.

Owns how identifying details cross the node's local NATS: never in the clear.
The CLI seals details it sends to the daemon's X25519 key (from the daemon's
run file); for details it asks to read, it sends a fresh one-request X25519 key
and the daemon seals the reply to it. Both blobs are bound to control positions
(epoch 0, which no chain event has), so neither can be passed off as an event's.
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from rrn.protocol.errors import ControlError, ProtocolError
from rrn.protocol.sealing import OpenKeys, Position, decode_sealed, encode_sealed, open_sealed, seal

__all__ = ["open_reply", "open_request", "seal_reply", "seal_request"]

_REQUEST_SEQ: Final = 0
_REPLY_SEQ: Final = 1


def _at(net: bytes, org: str, seq: int) -> Position:
    return Position(net, org, 0, seq)


def seal_request(plaintext: bytes, info: dict[str, object]) -> bytes:
    """Seal details for the daemon that wrote `info` (its run file)."""
    try:
        org = str(info["org"])
        net = bytes.fromhex(str(info["net"]))
        pub = X25519PublicKey.from_public_bytes(bytes.fromhex(str(info["enc_pub"])))
    except (KeyError, ValueError) as exc:
        raise ControlError("the daemon is too old to take sealed details; restart it") from exc
    return encode_sealed(seal(plaintext, {org: pub}, _at(net, org, _REQUEST_SEQ)))


def open_request(blob: bytes, org: str, key: OpenKeys, net: bytes) -> bytes:
    """The details a CLI sealed to this daemon (ControlError if they do not open)."""
    try:
        return open_sealed(decode_sealed(blob), org, key, _at(net, org, _REQUEST_SEQ))
    except ProtocolError as exc:
        raise ControlError("the sealed details do not open with this node's key") from exc


def seal_reply(plaintext: bytes, reply_to: bytes, org: str, net: bytes) -> bytes:
    """Seal details for the CLI that sent the one-request key `reply_to`."""
    try:
        pub = X25519PublicKey.from_public_bytes(reply_to)
    except ValueError as exc:
        raise ControlError("reply_to is not an X25519 public key") from exc
    return encode_sealed(seal(plaintext, {org: pub}, _at(net, org, _REPLY_SEQ)))


def open_reply(blob: bytes, key: X25519PrivateKey, org: str, net: bytes) -> bytes:
    """Details the daemon sealed to this CLI's one-request key."""
    try:
        return open_sealed(decode_sealed(blob), org, key, _at(net, org, _REPLY_SEQ))
    except ProtocolError as exc:
        raise ControlError("the daemon's sealed reply does not open") from exc
