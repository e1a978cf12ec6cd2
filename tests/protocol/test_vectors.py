"""The published test vectors verify as documented, and match the code exactly."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rrn.federation.keyring import Keyring, Rotation
from rrn.federation.roster import verify_genesis
from rrn.protocol.encoding import DOMAIN_EVENT, DOMAIN_EVENT_ID, pae
from rrn.protocol.envelope import verify_event
from rrn.protocol.errors import ProtocolError
from rrn.protocol.kinds import decode_payload
from rrn.protocol.membership import KeyRotated
from rrn.protocol.roster import decode_cert, roster_id
from tests.vectors.generate import PATH, render
from tests.vectors.topology import PATH as TOPOLOGY_PATH
from tests.vectors.topology import render as render_topology

VECTORS: dict[str, Any] = json.loads(PATH.read_text())
NET = bytes.fromhex(VECTORS["network"]["network_id"])
ROSTER = verify_genesis(decode_cert(bytes.fromhex(VECTORS["network"]["genesis_cert"])))
RESOLVE = Keyring(ROSTER).resolve


def test_file_is_exactly_what_the_code_generates() -> None:
    assert PATH.read_text() == render(), "run: python -m tests.vectors.generate"


def test_network_id_is_the_genesis_roster_id() -> None:
    genesis = bytes.fromhex(VECTORS["network"]["genesis_roster"])
    assert roster_id(genesis) == NET
    assert hashlib.sha256(pae(b"rrn/roster-id/v1", genesis)).digest() == NET


def test_member_keys_match_their_seeds() -> None:
    for m in VECTORS["network"]["members"]:
        k = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(m["seed"]))
        assert k.public_key().public_bytes_raw().hex() == m["public"]
        assert ROSTER.member(m["org"]) is not None


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: c["name"])
def test_valid_vector(case: dict[str, Any]) -> None:
    event = verify_event(bytes.fromhex(case["envelope"]), net=NET, resolve=RESOLVE)
    header = bytes.fromhex(case["header"])
    assert event.id.hex() == case["id"]
    assert event.header_bytes == header
    assert event.sig.hex() == case["signature"]
    assert pae(DOMAIN_EVENT, header).hex() == case["signing_input"]
    assert hashlib.sha256(pae(DOMAIN_EVENT_ID, header)).hexdigest() == case["id"]
    assert (event.payload.hex() if event.payload is not None else None) == case["payload"]
    d = case["decoded"]
    assert (event.header.origin, event.header.seq, event.header.kind) == (
        d["origin"],
        d["seq"],
        d["kind"],
    )
    if case["payload"] is not None:
        assert hashlib.sha256(bytes.fromhex(case["payload"])).hexdigest() == d["payload_hash"]


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["name"])
def test_invalid_vector(case: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        verify_event(bytes.fromhex(case["envelope"]), net=NET, resolve=RESOLVE)
    assert info.value.reason == case["reason"]


def test_oversize_vector() -> None:
    o = VECTORS["oversize"]
    with pytest.raises(ProtocolError) as info:
        verify_event(bytes.fromhex(o["byte"]) * o["length"], net=NET, resolve=RESOLVE)
    assert info.value.reason == o["reason"]


def test_key_rotation_vector() -> None:
    r = VECTORS["key_rotation"]
    rotation = verify_event(bytes.fromhex(r["rotation"]["envelope"]), net=NET, resolve=RESOLVE)
    payload = decode_payload(rotation.header.kind, rotation.payload or b"")
    assert isinstance(payload, KeyRotated)
    assert (
        payload.sign_pub.hex() == r["new_public"] and payload.enc_pub.hex() == r["new_enc_public"]
    )
    statement = bytes.fromhex(r["statement"])
    Ed25519PrivateKey.from_private_bytes(bytes.fromhex(r["new_seed"])).public_key().verify(
        payload.proof, statement
    )
    ring = Keyring(ROSTER).learn(Rotation.of(rotation.header, payload))
    nxt = verify_event(bytes.fromhex(r["next"]["envelope"]), net=NET, resolve=ring.resolve)
    assert (nxt.header.epoch, nxt.header.seq, nxt.id.hex()) == (2, 1, r["next"]["id"])
    with pytest.raises(ProtocolError) as info:
        verify_event(
            bytes.fromhex(r["old_key_after_rotation"]["envelope"]), net=NET, resolve=ring.resolve
        )
    assert info.value.reason == r["old_key_after_rotation"]["reason"]
    with pytest.raises(ProtocolError) as unknown:
        verify_event(bytes.fromhex(r["next"]["envelope"]), net=NET, resolve=RESOLVE)
    assert unknown.value.reason == "unknown_epoch", "epoch 2 is unknown without the rotation"


def test_topology_file_is_exactly_what_the_code_computes() -> None:
    assert TOPOLOGY_PATH.read_text() == render_topology(), "run: python -m tests.vectors.topology"
    cases = json.loads(TOPOLOGY_PATH.read_text())["cases"]
    full = next(c for c in cases if c["links"] is None)
    assert all(len(c["edges"]) < len(full["edges"]) for c in cases if c["links"])
