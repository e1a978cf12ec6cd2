"""Founding and joining a network: cards, roster documents, adoption.

Owns the files organisations exchange out of band (JSON, so they can be read,
mailed and checked by people) and the adoption of a network by a node home:

    rrn/card             a member card, signed by the card's own key
    rrn/roster-proposal  roster bytes and the approvals collected so far
    rrn/network          every roster certificate from genesis: what a joiner adopts

A home adopts a network only if every roster version verifies from genesis and
the current version lists this node with its own keys. Adopting replaces the
one-member network a home starts with; a store that already holds events is
kept aside, never silently mixed into another network.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

import msgspec

from rrn.federation.roster import make_genesis, verify_genesis
from rrn.node.home.clock import Clock
from rrn.node.home.keys import Keys
from rrn.node.home.layout import Home
from rrn.node.membership.policy import describe_limits, describe_mesh, describe_policy
from rrn.node.store.db import Store, open_store
from rrn.node.store.network import Network, verify_chain
from rrn.node.store.rows import RosterRow
from rrn.protocol.errors import ConfigError, FederationError, ProtocolError, StoreError
from rrn.protocol.policy import NetworkPolicy
from rrn.protocol.roster import (
    ROSTER_VERSION,
    Approval,
    Card,
    Role,
    RosterCert,
    SignKey,
    decode_cert,
    decode_roster,
    encode_cert,
    open_card,
    roster_id,
    sign_card,
    sign_roster,
)

__all__ = [
    "adopt_network",
    "card_document",
    "export_network",
    "genesis_document",
    "own_card",
    "proposal_document",
    "proposal_of",
    "read_card",
    "read_document",
    "sign_document",
    "write_document",
]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: object, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError as exc:
        raise ConfigError(f"{what} is not valid base64") from exc


def read_document(path: Path, expected: str) -> dict[str, Any]:
    """A JSON document of the given type, with one clear error for anything else."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"no file at {path}") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a readable rrn document") from exc
    if not isinstance(doc, dict) or doc.get("type") != expected:
        raise ConfigError(f"{path} is not an {expected} document")
    return doc


def write_document(path: Path, doc: dict[str, Any]) -> None:
    """Write a document atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


# -- cards ----------------------------------------------------------------------


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


def _my_card(home: Home, keys: Keys, clock: Clock) -> Card:
    """This node's card as its config and keys describe it now."""
    return own_card(
        keys,
        org=home.config.node.org,
        name=home.config.node.name,
        roles=_own_roles(home),
        endpoints=list(home.config.federation.advertise),
        now_ms=clock.now_ms(),
    )


def card_document(home: Home, keys: Keys, clock: Clock) -> dict[str, Any]:
    """This node's signed card, as a document to hand to the other members."""
    card = _my_card(home, keys, clock)
    signed = sign_card(keys.sign, card)
    return {
        "type": "rrn/card",
        "org": card.org,
        "name": card.name,
        "roles": [str(r) for r in card.roles],
        "endpoints": card.endpoints or "behind NAT",
        "signing_key": card.sign_key.pub.hex(),
        "tls_fingerprint": card.tls_spki.hex(),
        "card": _b64(msgspec.msgpack.encode(signed)),
    }


def read_card(path: Path) -> Card:
    """A verified card from a card document."""
    doc = read_document(path, "rrn/card")
    try:
        card = open_card(_unb64(doc.get("card"), f"{path}: card"))
    except ProtocolError as exc:
        raise ConfigError(f"{path}: the card does not verify ({exc.reason})") from exc
    if doc.get("org") != card.org or doc.get("tls_fingerprint") != card.tls_spki.hex():
        raise ConfigError(f"{path}: the readable fields do not match the signed card")
    return card


# -- roster documents --------------------------------------------------------------


def proposal_document(
    roster_bytes: bytes, approvals: list[Approval], net: bytes | None
) -> dict[str, Any]:
    roster = decode_roster(roster_bytes)
    return {
        "type": "rrn/roster-proposal",
        "network": None if net is None else net.hex(),
        "version": roster.version,
        "roster_id": roster_id(roster_bytes).hex(),
        "threshold": roster.threshold,
        "members": [
            {
                "org": m.org,
                "name": m.name,
                "roles": [str(r) for r in m.roles],
                "signing_key": m.key().pub.hex(),
                "epoch": m.key().epoch,
                "tls_fingerprint": m.tls_spki.hex(),
                "endpoints": m.endpoints,
            }
            for m in roster.members
        ],
        "former": [m.org for m in roster.former],
        "cutoffs": [[c.org, c.epoch, c.last_seq] for c in roster.cutoffs],
        "escalation": describe_policy(roster.policy),
        "limits": describe_limits(roster.policy),
        "mesh": describe_mesh(roster.policy),
        "roster": _b64(roster_bytes),
        "approvals": [{"org": a.org, "epoch": a.epoch, "sig": _b64(a.sig)} for a in approvals],
    }


def proposal_of(doc: dict[str, Any], path: Path) -> tuple[bytes, list[Approval]]:
    """Roster bytes and approvals of a proposal document."""
    roster_bytes = _unb64(doc.get("roster"), f"{path}: roster")
    try:
        decode_roster(roster_bytes)
        approvals = [
            Approval(org=str(a["org"]), epoch=int(a["epoch"]), sig=_unb64(a["sig"], "approval"))
            for a in doc.get("approvals", [])
        ]
    except (ProtocolError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a valid roster proposal") from exc
    return roster_bytes, approvals


def genesis_document(
    home: Home,
    keys: Keys,
    cards: list[Card],
    *,
    threshold: int | None,
    clock: Clock,
    policy: NetworkPolicy | None = None,
    states: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A genesis roster of this node and `cards`, approved by this node."""
    me = _my_card(home, keys, clock)
    try:
        roster_bytes = make_genesis(
            [me, *cards],
            threshold=threshold,
            created_ms=clock.now_ms(),
            policy=policy,
            states=states,
        )
    except FederationError as exc:
        raise ConfigError(str(exc)) from exc
    approval = sign_roster(keys.sign, me.org, keys.epoch, roster_bytes)
    return proposal_document(roster_bytes, [approval], None)


def _own_roles(home: Home) -> list[Role]:
    return [Role(r) for r in home.config.node.roles]


def sign_document(doc: dict[str, Any], path: Path, home: Home, keys: Keys) -> dict[str, Any]:
    """The proposal with this node's approval added (after checking it lists us right)."""
    roster_bytes, approvals = proposal_of(doc, path)
    roster = decode_roster(roster_bytes)
    org = home.config.node.org
    member = roster.member(org)
    if member is None or member.key().pub != keys.sign_pub():
        raise ConfigError(
            f"{path} does not list {org} with this node's signing key; do not sign it"
        )
    mine = sign_roster(keys.sign, org, keys.epoch, roster_bytes)
    kept = [a for a in approvals if (a.org, a.epoch) != (org, keys.epoch)]
    net = bytes.fromhex(doc["network"]) if doc.get("network") else None
    return proposal_document(roster_bytes, [*kept, mine], net)


# -- adoption ---------------------------------------------------------------------


def certs_of(doc: dict[str, Any], path: Path) -> list[bytes]:
    """Roster certificates from a network document or a complete genesis proposal."""
    if doc.get("type") == "rrn/roster-proposal":
        roster_bytes, approvals = proposal_of(doc, path)
        cert = RosterCert(roster=roster_bytes, approvals=approvals)
        try:
            verify_genesis(cert)
        except FederationError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        return [encode_cert(cert)]
    return [_unb64(c, f"{path}: certificate") for c in doc.get("certs", [])]


async def adopt_network(
    home: Home, keys: Keys, certs: list[bytes], *, clock: Clock, keep_history: bool = False
) -> Network:
    """Make `home` a member of the network these certificates describe."""
    rows = []
    for version, data in enumerate(certs):
        try:
            cert = decode_cert(data)
            rows.append(RosterRow(version, roster_id(cert.roster), cert.roster, data))
        except ProtocolError as exc:
            raise ConfigError(f"roster certificate {version} is malformed") from exc
    try:
        network = verify_chain(rows)
    except (StoreError, FederationError, ProtocolError) as exc:
        raise ConfigError(f"the network does not verify: {exc}") from exc
    org = home.config.node.org
    member = network.roster.member(org)
    key = member.key_for(keys.epoch) if member else None
    if key is None or key.pub != keys.sign_pub():
        raise ConfigError(f"the network's roster does not list {org} with this node's keys")
    await _replace_store(home, rows, network, clock, keep_history)
    return network


async def _replace_store(
    home: Home, rows: list[RosterRow], network: Network, clock: Clock, keep_history: bool
) -> None:
    async with open_store(home.store_path) as store:
        current = await store.get_meta("net")
        if current == network.net:
            await _add_rosters(store, rows, clock)
            return
        events = await store.count_events()
    if events and not keep_history:
        raise ConfigError(
            f"this home's store already holds {events} event(s) of another network; "
            "pass --set-aside-history to keep it aside and start a new store"
        )
    aside = home.store_path.with_name(f"store.{clock.now_ms()}.db")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(home.store_path) + suffix)
        if src.exists():
            shutil.move(src, Path(str(aside) + suffix))
    async with open_store(home.store_path, create=True) as store:
        await _add_rosters(store, rows, clock)
        await store.set_meta("net", network.net)


async def _add_rosters(store: Store, rows: list[RosterRow], clock: Clock) -> None:
    for row in rows:
        await store.put_roster(row, clock.now_ms())


async def export_network(store_path: Path) -> dict[str, Any]:
    """Every roster certificate this node holds, for a joiner to adopt."""
    async with open_store(store_path, readonly=True) as store:
        rows = await store.rosters()
        net = await store.get_meta("net")
    return {
        "type": "rrn/network",
        "network": net.hex() if net else None,
        "version": rows[-1].version if rows else None,
        "certs": [_b64(r.cert) for r in rows],
    }
