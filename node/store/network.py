"""The network a node belongs to, as its stored rosters prove it.

Owns loading and re-verifying the roster chain from the store (genesis, then each
N -> N+1), giving the network id, the current roster and the keyring (with the
key rotations found in the stored chains), and building this node's own card.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from rrn.federation.authority import Authority
from rrn.federation.keyring import Keyring, Rotation
from rrn.federation.roster import verify_genesis, verify_next
from rrn.node.store.db import Store
from rrn.node.store.rows import RosterRow
from rrn.protocol.errors import FederationError, ProtocolError, StoreError
from rrn.protocol.kinds import Kind
from rrn.protocol.roster import (
    Roster,
    decode_cert,
    roster_id,
)

__all__ = ["Network", "load_network", "verify_chain"]


@dataclass(frozen=True)
class Network:
    """The verified state of membership a node works under."""

    net: bytes
    roster: Roster
    roster_bytes: bytes
    roster_version: int
    keyring: Keyring

    @functools.cached_property
    def authority(self) -> Authority:
        """Who may change alerts, and how, under this roster (federation/authority.py)."""
        return Authority.of(self.roster)

    def with_keyring(self, keyring: Keyring) -> Network:
        """The same network with another keyring (after a key rotation)."""
        return dataclasses.replace(self, keyring=keyring)


def verify_chain(rows: list[RosterRow]) -> Network:
    """Re-verify stored roster versions from genesis; raise if any link is bad."""
    if not rows or rows[0].version != 0:
        raise StoreError("the store holds no genesis roster")
    genesis = decode_cert(rows[0].cert)
    roster = verify_genesis(genesis)
    net = roster_id(genesis.roster)
    roster_bytes = genesis.roster
    for row in rows[1:]:
        cert = decode_cert(row.cert)
        try:
            roster = verify_next(roster, roster_bytes, cert)
        except FederationError as exc:
            raise StoreError(f"stored roster version {row.version} does not verify: {exc}") from exc
        roster_bytes = cert.roster
    return Network(net, roster, roster_bytes, roster.version, Keyring(roster))


async def load_network(store: Store) -> Network:
    """The network recorded in `store`, verified from its genesis, with its rotations."""
    network = verify_chain(await store.rosters())
    stored_net = await store.get_meta("net")
    if stored_net is not None and stored_net != network.net:
        raise StoreError("the store's network id does not match its genesis roster")
    return network.with_keyring(Keyring(network.roster, await _stored_rotations(store)))


async def _stored_rotations(store: Store) -> list[Rotation]:
    """The rotations in the store: a rotation ends its epoch, so it is a chain's head
    (events after it in that epoch are refused everywhere), and is not past a fork."""
    found = []
    frozen = await store.freezes()
    for event in await store.head_events(str(Kind.KEY_ROTATED)):
        h = event.header
        if h.seq > frozen.get((h.origin, h.epoch), h.seq):
            continue
        try:
            rotation = Rotation.from_event(event)
        except ProtocolError:
            continue
        if rotation is not None:
            found.append(rotation)
    return found
