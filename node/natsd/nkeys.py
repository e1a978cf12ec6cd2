"""NATS nkeys: the text form of the Ed25519 keys nats-server authenticates with.

Owns encoding a 32-byte Ed25519 seed or public key as a NATS user nkey
(base32 of prefix, key and CRC-16/XMODEM, as nats-io/nkeys does). Small enough
to own rather than depend on the `nkeys` package and its crypto backend.
"""

from __future__ import annotations

import base64
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["user_public", "user_seed"]

_PREFIX_SEED: Final = 18 << 3  # 'S'
_PREFIX_USER: Final = 20 << 3  # 'U'


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _encode(raw: bytes) -> str:
    raw = raw + _crc16(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode().rstrip("=")


def user_seed(seed: bytes) -> str:
    """The 'SU…' seed string of a user nkey with this 32-byte Ed25519 seed."""
    if len(seed) != 32:
        raise ValueError("an nkey seed is 32 bytes")
    b1 = _PREFIX_SEED | (_PREFIX_USER >> 5)
    b2 = (_PREFIX_USER & 31) << 3
    return _encode(bytes([b1, b2]) + seed)


def user_public(seed: bytes) -> str:
    """The 'U…' public nkey of the user whose Ed25519 seed is `seed`."""
    pub = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return _encode(bytes([_PREFIX_USER]) + pub)
