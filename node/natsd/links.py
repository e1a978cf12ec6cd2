"""The credential of one NATS link, derived by both of its ends.

Owns per-link nkeys: the dialler and the acceptor each compute X25519 between
their own link key and the other's (both from the roster), then HKDF-SHA256 with
the network id and both org ids, giving the Ed25519 seed of the nkey the dialler
authenticates with. Every link has its own nkey; nobody outside the pair can
compute it, and the roster stays the only PKI.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rrn.node.natsd.nkeys import user_public, user_seed

__all__ = ["link_nkey"]


def link_seed(
    mine: X25519PrivateKey, peer_pub: bytes, *, net: bytes, dialler: str, acceptor: str
) -> bytes:
    """The 32-byte Ed25519 seed of the link dialler -> acceptor."""
    shared = mine.exchange(X25519PublicKey.from_public_bytes(peer_pub))
    info = b"rrn/link-nkey/v1\x00" + dialler.encode() + b"\x00" + acceptor.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=net, info=info).derive(shared)


def link_nkey(
    mine: X25519PrivateKey, peer_pub: bytes, *, net: bytes, dialler: str, acceptor: str
) -> tuple[str, str]:
    """(seed 'SU…', public 'U…') of the nkey of the link dialler -> acceptor."""
    seed = link_seed(mine, peer_pub, net=net, dialler=dialler, acceptor=acceptor)
    return user_seed(seed), user_public(seed)
