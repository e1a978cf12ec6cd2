"""The network a node belongs to, as its stored rosters prove it.

Owns loading and re-verifying the roster chain from the store (genesis, then each
N -> N+1), giving the network id, the current roster and the keyring (with the
key rotations found in the stored chains), and building this node's own card.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from federation.keyring import Keyring, Rotation
from federation.roster import verify_genesis, verify_next
from node.keys import Keys
from node.store import RosterRow, Store
from protocol.envelope import Event
from protocol.errors import FederationError, ProtocolError, Reason, StoreError
from protocol.kinds import Kind, decode_payload
from protocol.membership import KeyRotated
from protocol.roster import (
    ROSTER_VERSION,
    Card,
    Role,
    Roster,
    SignKey,
    decode_cert,
    roster_id,
)

__all__ = ["Network", "load_network", "own_card", "rotation_of"]


@dataclass(frozen=True)
class Network:
    """The verified state of membership a node works under."""

    net: bytes
    roster: Roster
    roster_bytes: bytes
    roster_version: int
    keyring: Keyring

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


def rotation_of(event: Event) -> Rotation | None:
    """The rotation a `key.rotated` event states, None for any other event.

    Raises ProtocolError when it is one but its payload or proof is bad.
    """
    if event.header.kind != Kind.KEY_ROTATED:
        return None
    if event.payload is None:
        raise ProtocolError("a key rotation without its payload", Reason.BAD_ROTATION)
    payload = decode_payload(event.header.kind, event.payload)
    assert isinstance(payload, KeyRotated)
    return Rotation.of(event.header, payload)


async def _stored_rotations(store: Store) -> list[Rotation]:
    """The rotations in the store: a rotation ends its epoch, so it is a chain's head
    (events after it in that epoch are refused everywhere), and is not past a fork."""
    found = []
    frozen = await store.freezes()
    for (origin, epoch), head in (await store.heads()).items():
        if head.seq > frozen.get((origin, epoch), head.seq):
            continue
        event = await store.event_at(origin, epoch, head.seq)
        try:
            rotation = rotation_of(event) if event is not None else None
        except ProtocolError:
            continue
        if rotation is not None:
            found.append(rotation)
    return found


def own_card(
    keys: Keys, *, org: str, name: str, roles: list[Role], endpoints: list[str], now_ms: int
) -> Card:
    """This node's card, describing its current keys."""
    return Card(
        v=ROSTER_VERSION,
        org=org,
        name=name,
        roles=roles,
        sign_key=SignKey(epoch=keys.epoch, pub=keys.sign_pub()),
        enc_pub=keys.enc_pub(),
        link_pub=keys.link_pub(),
        endpoints=endpoints,
        tls_spki=keys.tls_spki(),
        tls_cert=keys.tls_cert_der(),
        created_ms=now_ms,
    )
