"""Sealed details: recipients read them, nobody else does, and no change goes unnoticed."""

from __future__ import annotations

import json

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from rrn.protocol.encoding import pae
from rrn.protocol.errors import Reason
from rrn.protocol.sealing import (
    DOMAIN_SEAL_WRAP,
    DOMAIN_SEALED,
    MAX_SEALED_BYTES,
    Position,
    Sealed,
    SealError,
    Wrap,
    decode_details,
    decode_sealed,
    encode_sealed,
    key_commitment,
    open_sealed,
    reseal,
    seal,
)
from tests.vectors.sealing import PATH

ORGS = ("jakarta-pb", "lima-hr", "nairobi-dl", "quito-dh")
KEYS = {o: X25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32) for i, o in enumerate(ORGS)}
PUB = {o: k.public_key() for o, k in KEYS.items()}
POS = Position(net=bytes(32), origin="lima-hr", epoch=1, seq=3)
SECRET = b"CANARY-7f3a name, exact place, phone"


def _to(*orgs: str) -> dict[str, X25519PublicKey]:
    return {o: PUB[o] for o in orgs}


@settings(max_examples=40, deadline=None)
@given(
    plaintext=st.binary(max_size=2048),
    chosen=st.sets(st.sampled_from(ORGS), min_size=1),
    seq=st.integers(min_value=1, max_value=2**40),
)
def test_every_recipient_reads_it_and_nobody_else(
    plaintext: bytes, chosen: set[str], seq: int
) -> None:
    pos = Position(net=bytes(32), origin="lima-hr", epoch=2, seq=seq)
    sealed = decode_sealed(encode_sealed(seal(plaintext, _to(*chosen), pos)))
    assert sealed.recipients() == sorted(chosen)
    for org in ORGS:
        if org in chosen:
            assert open_sealed(sealed, org, KEYS[org], pos) == plaintext
        else:
            with pytest.raises(SealError) as err:
                open_sealed(sealed, org, KEYS[org], pos)
            assert err.value.reason is Reason.NOT_AUTHORISED


def test_the_plaintext_is_nowhere_in_the_bytes() -> None:
    data = encode_sealed(seal(SECRET, _to("nairobi-dl"), POS))
    assert b"CANARY" not in data and SECRET not in data


def test_a_fresh_key_each_time() -> None:
    one, two = seal(SECRET, _to("nairobi-dl"), POS), seal(SECRET, _to("nairobi-dl"), POS)
    assert one.commit != two.commit and one.ct != two.ct


@pytest.mark.parametrize("part", ["ct", "wrap", "commit"])
def test_any_flipped_byte_is_detected(part: str) -> None:
    sealed = seal(SECRET, _to("nairobi-dl", "jakarta-pb"), POS)
    if part == "ct":
        size = len(sealed.ct)
    elif part == "wrap":
        size = len(sealed.wraps[1].key)
    else:
        size = len(sealed.commit)
    for i in range(size):
        if part == "ct":
            bad = msgspec.structs.replace(sealed, ct=_flip(sealed.ct, i))
        elif part == "wrap":
            wrap = Wrap(to="nairobi-dl", key=_flip(sealed.wraps[1].key, i))
            bad = msgspec.structs.replace(sealed, wraps=[sealed.wraps[0], wrap])
        else:
            bad = msgspec.structs.replace(sealed, commit=_flip(sealed.commit, i))
        with pytest.raises(SealError):
            open_sealed(bad, "nairobi-dl", KEYS["nairobi-dl"], POS)


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


@pytest.mark.parametrize(
    "moved",
    [
        Position(net=bytes(32), origin="lima-hr", epoch=1, seq=4),
        Position(net=bytes(32), origin="lima-hr", epoch=2, seq=3),
        Position(net=bytes(32), origin="quito-dh", epoch=1, seq=3),
        Position(net=bytes([1]) * 32, origin="lima-hr", epoch=1, seq=3),
    ],
)
def test_a_blob_copied_into_another_event_does_not_open(moved: Position) -> None:
    sealed = seal(SECRET, _to("nairobi-dl"), POS)
    with pytest.raises(SealError):
        open_sealed(sealed, "nairobi-dl", KEYS["nairobi-dl"], moved)


def test_a_wrap_handed_to_another_member_does_not_open() -> None:
    sealed = seal(SECRET, _to("nairobi-dl"), POS)
    stolen = msgspec.structs.replace(sealed, wraps=[Wrap(to="jakarta-pb", key=sealed.wraps[0].key)])
    with pytest.raises(SealError):
        open_sealed(stolen, "jakarta-pb", KEYS["jakarta-pb"], POS)


def test_a_different_key_for_one_recipient_breaks_the_commitment() -> None:
    """An origin cannot show one member other details than the rest under one blob."""
    honest = seal(SECRET, _to("nairobi-dl"), POS)
    other = seal(b"something else", _to("jakarta-pb"), POS)
    mixed = Sealed(v=1, commit=honest.commit, wraps=[other.wraps[0], honest.wraps[0]], ct=honest.ct)
    assert open_sealed(mixed, "nairobi-dl", KEYS["nairobi-dl"], POS) == SECRET
    with pytest.raises(SealError, match="commitment"):
        open_sealed(mixed, "jakarta-pb", KEYS["jakarta-pb"], POS)


def test_after_a_key_rotation_a_member_opens_with_its_new_key_and_its_old_ones() -> None:
    rotated = X25519PrivateKey.from_private_bytes(bytes([99]) * 32)
    before = seal(SECRET, _to("quito-dh"), POS)  # sealed before the rotation was known
    after = seal(SECRET, {"quito-dh": rotated.public_key()}, POS)
    held = [rotated, KEYS["quito-dh"]]  # newest first, as a node keeps them
    assert open_sealed(before, "quito-dh", held, POS) == SECRET
    assert open_sealed(after, "quito-dh", held, POS) == SECRET
    with pytest.raises(SealError, match="does not open"):
        open_sealed(after, "quito-dh", KEYS["quito-dh"], POS)  # the old key alone: no
    with pytest.raises(SealError, match="does not open"):
        open_sealed(after, "quito-dh", [KEYS["lima-hr"], KEYS["quito-dh"]], POS)


def test_reseal_gives_the_claimant_the_details_and_nothing_that_opens_the_original() -> None:
    original = seal(SECRET, _to("lima-hr", "nairobi-dl"), POS)
    later = Position(net=bytes(32), origin="nairobi-dl", epoch=1, seq=9)
    handed = reseal(original, "nairobi-dl", KEYS["nairobi-dl"], POS, to=_to("jakarta-pb"), at=later)
    assert open_sealed(handed, "jakarta-pb", KEYS["jakarta-pb"], later) == SECRET
    assert handed.commit != original.commit
    with pytest.raises(SealError):
        open_sealed(original, "jakarta-pb", KEYS["jakarta-pb"], POS)


def test_malformed_blobs_are_refused_with_a_reason() -> None:
    good = seal(SECRET, _to("nairobi-dl", "jakarta-pb"), POS)
    unsorted = msgspec.structs.replace(good, wraps=list(reversed(good.wraps)))
    for bad in (
        msgspec.msgpack.encode(unsorted),
        msgspec.msgpack.encode(msgspec.structs.replace(good, v=2)),
        b"\x94\x01",
        b"",
    ):
        with pytest.raises(SealError):
            decode_sealed(bad)
    with pytest.raises(SealError):
        seal(b"x" * (MAX_SEALED_BYTES + 1), _to("nairobi-dl"), POS)
    with pytest.raises(SealError):
        seal(SECRET, {}, POS)


def test_published_vector_opens_and_its_deterministic_parts_match_the_code() -> None:
    v = json.loads(PATH.read_text())
    p = v["position"]
    pos = Position(bytes.fromhex(p["net"]), p["origin"], p["epoch"], p["seq"])
    assert pos.bytes().hex() == p["bytes"]
    key = bytes.fromhex(v["content_key"])
    assert key_commitment(key).hex() == v["commit"]
    aad = pae(DOMAIN_SEALED, pos.bytes() + key_commitment(key))
    assert aad.hex() == v["aad"]
    ct = ChaCha20Poly1305(key).encrypt(bytes(12), bytes.fromhex(v["plaintext"]), aad)
    assert ct.hex() == v["ct"]
    sealed = decode_sealed(bytes.fromhex(v["sealed"]))
    for org, r in v["recipients"].items():
        private = X25519PrivateKey.from_private_bytes(bytes.fromhex(r["x25519_private"]))
        assert private.public_key().public_bytes_raw().hex() == r["x25519_public"]
        assert pae(DOMAIN_SEAL_WRAP, pos.bytes() + org.encode()).hex() == r["info"]
        opened = open_sealed(sealed, org, private, pos)
        assert opened.hex() == v["plaintext"]
        assert decode_details(opened).fields() == v["details"]
    assert [w.to for w in sealed.wraps] == sorted(v["recipients"])
