"""Signed envelopes: round trips, tampering, canonical form, limits."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrn.protocol.encoding import DOMAIN_EVENT, encode, pae
from rrn.protocol.envelope import (
    MAX_ENVELOPE_BYTES,
    MAX_HEADER_BYTES,
    MAX_PAYLOAD_BYTES,
    Header,
    open_envelope,
    sign_event,
    verify_event,
)
from rrn.protocol.errors import (
    DecodeError,
    OversizeError,
    PayloadError,
    ProtocolError,
    Reason,
    SignatureError,
    ValidationError,
)
from tests.support import Chain, network, raised

TN = network("lima-hr", "nairobi-dl")


def _event(payload: bytes = b"\x81\xa1a\x01", **kw: object) -> bytes:
    fields: dict[str, object] = {
        "net": TN.net,
        "origin": "lima-hr",
        "epoch": 1,
        "seq": 1,
        "prev": None,
        "kind": "alert.raised",
        "wall_ms": 1_767_225_600_000,
        "roster_ver": 0,
        "payload": payload,
    }
    fields.update(kw)
    return sign_event(TN.keys["lima-hr"], **fields).envelope()  # type: ignore[arg-type]


def _verify(raw: bytes) -> None:
    verify_event(raw, net=TN.net, resolve=TN.keyring.resolve)


def test_round_trip_keeps_every_field_and_id() -> None:
    chain = Chain(TN, "lima-hr")
    first = chain.next(raised())
    second = chain.next(raised(1))
    got = verify_event(second.envelope(), net=TN.net, resolve=TN.keyring.resolve)
    assert got.id == second.id
    assert got.header == second.header
    assert got.header.prev == first.id
    assert got.payload == second.payload


def test_event_without_payload_still_verifies() -> None:
    chain = Chain(TN, "lima-hr")
    event = chain.next(raised())
    got = verify_event(event.without_payload().envelope(), net=TN.net, resolve=TN.keyring.resolve)
    assert got.id == event.id and got.payload is None


def test_every_flipped_byte_is_rejected() -> None:
    raw = _event()
    for i in range(len(raw)):
        tampered = bytearray(raw)
        tampered[i] ^= 0x01
        with pytest.raises(ProtocolError):
            _verify(bytes(tampered))


@pytest.mark.parametrize("part", ["header", "sig", "payload"])
def test_flipped_bit_in_each_part_names_a_reason(part: str) -> None:
    event = Chain(TN, "lima-hr").next(raised())
    header, sig, payload = (
        bytearray(event.header_bytes),
        bytearray(event.sig),
        bytearray(event.payload or b""),
    )
    target = {"header": header, "sig": sig, "payload": payload}[part]
    target[len(target) // 2] ^= 0x80
    raw = encode((bytes(header), bytes(sig), bytes(payload)))
    with pytest.raises(ProtocolError) as info:
        _verify(raw)
    expected = {
        "header": {Reason.BAD_SIGNATURE, Reason.MALFORMED_HEADER, Reason.NON_CANONICAL},
        "sig": {Reason.BAD_SIGNATURE},
        "payload": {Reason.PAYLOAD_HASH_MISMATCH},
    }[part]
    assert info.value.reason in expected


def test_signature_by_another_member_is_rejected() -> None:
    event = Chain(TN, "lima-hr").next(raised())
    forged_sig = TN.keys["nairobi-dl"].sign(pae(DOMAIN_EVENT, event.header_bytes))
    with pytest.raises(SignatureError):
        _verify(encode((event.header_bytes, forged_sig, event.payload)))


def test_signature_over_other_domain_is_rejected() -> None:
    event = Chain(TN, "lima-hr").next(raised())
    sig = TN.keys["lima-hr"].sign(pae(b"rrn/roster/v1", event.header_bytes))
    with pytest.raises(SignatureError):
        _verify(encode((event.header_bytes, sig, event.payload)))


def test_event_from_another_network_is_rejected() -> None:
    other = network("lima-hr", "nairobi-dl", "jakarta-pb")
    raw = Chain(other, "lima-hr").next(raised()).envelope()
    with pytest.raises(ValidationError) as info:
        _verify(raw)
    assert info.value.reason is Reason.WRONG_NETWORK


def test_unknown_origin_is_rejected() -> None:
    other = network("lima-hr", "quito-x")
    event = Chain(other, "quito-x").next(raised())
    header = msgspec.msgpack.decode(event.header_bytes, type=Header)
    fixed = msgspec.structs.replace(header, net=TN.net)
    hb = encode(fixed)
    raw = encode((hb, other.keys["quito-x"].sign(pae(DOMAIN_EVENT, hb)), event.payload))
    with pytest.raises(ValidationError) as info:
        _verify(raw)
    assert info.value.reason is Reason.UNKNOWN_ORIGIN


def test_unknown_epoch_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        _verify(_event(epoch=2))
    assert info.value.reason is Reason.UNKNOWN_EPOCH


def test_non_canonical_header_is_rejected_even_if_signed() -> None:
    event = Chain(TN, "lima-hr").next(raised())
    fields = msgspec.msgpack.decode(event.header_bytes)
    # Same values, but epoch spelled as a 64-bit integer instead of a fixint.
    head = b"\x9c" + b"".join(encode(f) for f in fields[:3])
    spelled = head + b"\xcf" + (1).to_bytes(8, "big") + b"".join(encode(f) for f in fields[4:])
    assert msgspec.msgpack.decode(spelled) == fields
    sig = TN.keys["lima-hr"].sign(pae(DOMAIN_EVENT, spelled))
    with pytest.raises(DecodeError) as info:
        _verify(encode((spelled, sig, event.payload)))
    assert info.value.reason is Reason.NON_CANONICAL


def test_non_canonical_envelope_is_rejected() -> None:
    event = Chain(TN, "lima-hr").next(raised())
    # bin8 for the 64-byte signature spelled as bin16
    raw = b"\x93" + encode(event.header_bytes) + b"\xc5\x00\x40" + event.sig + encode(event.payload)
    with pytest.raises(DecodeError) as info:
        _verify(raw)
    assert info.value.reason is Reason.NON_CANONICAL


def test_extra_header_field_is_rejected() -> None:
    event = Chain(TN, "lima-hr").next(raised())
    fields = msgspec.msgpack.decode(event.header_bytes)
    hb = encode([*fields, 0])
    sig = TN.keys["lima-hr"].sign(pae(DOMAIN_EVENT, hb))
    with pytest.raises(DecodeError) as info:
        _verify(encode((hb, sig, event.payload)))
    assert info.value.reason is Reason.MALFORMED_HEADER


def test_future_version_is_named() -> None:
    event = Chain(TN, "lima-hr").next(raised())
    fields = msgspec.msgpack.decode(event.header_bytes)
    hb = encode([2, *fields[1:], "new-field"])
    with pytest.raises(DecodeError) as info:
        _verify(encode((hb, event.sig, event.payload)))
    assert info.value.reason is Reason.UNSUPPORTED_VERSION


def test_prev_must_be_nil_exactly_at_seq_one() -> None:
    with pytest.raises(DecodeError):
        _event(seq=1, prev=b"\x00" * 32)
    with pytest.raises(DecodeError):
        _event(seq=2, prev=None)


def test_oversize_envelope_is_rejected_before_parsing() -> None:
    # Not msgpack at all: only a size check can refuse it without a decode error.
    with pytest.raises(OversizeError) as info:
        _verify(b"\xff" * (MAX_ENVELOPE_BYTES + 1))
    assert info.value.reason is Reason.OVERSIZE_ENVELOPE


def test_oversize_header_is_rejected_before_parsing_it() -> None:
    junk_header = b"\xff" * (MAX_HEADER_BYTES + 1)  # would not decode either
    with pytest.raises(OversizeError) as info:
        _verify(encode((junk_header, b"\x00" * 64, None)))
    assert info.value.reason is Reason.OVERSIZE_HEADER


def test_oversize_payload_is_rejected() -> None:
    event = Chain(TN, "lima-hr").next(raised())
    raw = encode((event.header_bytes, event.sig, b"\x00" * (MAX_PAYLOAD_BYTES + 1)))
    with pytest.raises(OversizeError) as info:
        _verify(raw)
    assert info.value.reason is Reason.OVERSIZE_PAYLOAD
    with pytest.raises(OversizeError):
        _event(payload=b"\x00" * (MAX_PAYLOAD_BYTES + 1))


def test_payload_length_and_hash_are_checked() -> None:
    event = Chain(TN, "lima-hr").next(raised())
    assert event.payload is not None
    with pytest.raises(PayloadError) as info:
        _verify(encode((event.header_bytes, event.sig, event.payload + b"\x00")))
    assert info.value.reason is Reason.PAYLOAD_LENGTH_MISMATCH
    swapped = bytes(reversed(event.payload))
    assert hashlib.sha256(swapped).digest() != event.header.payload_hash
    with pytest.raises(PayloadError) as info:
        _verify(encode((event.header_bytes, event.sig, swapped)))
    assert info.value.reason is Reason.PAYLOAD_HASH_MISMATCH


def test_open_envelope_does_not_need_keys() -> None:
    event = Chain(TN, "lima-hr").next(raised())
    assert open_envelope(event.envelope()).id == event.id


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(min_value=1, max_value=2**53 - 1),
    wall_ms=st.integers(min_value=0, max_value=2**53 - 1),
    refs=st.lists(st.binary(min_size=32, max_size=32), max_size=16),
    payload=st.binary(max_size=2048),
    kind=st.sampled_from(["alert.raised", "alert.claimed", "some.future_kind"]),
)
def test_any_valid_event_round_trips(
    seq: int, wall_ms: int, refs: list[bytes], payload: bytes, kind: str
) -> None:
    prev = None if seq == 1 else hashlib.sha256(seq.to_bytes(8, "big")).digest()
    event = sign_event(
        TN.keys["lima-hr"],
        net=TN.net,
        origin="lima-hr",
        epoch=1,
        seq=seq,
        prev=prev,
        kind=kind,
        wall_ms=wall_ms,
        roster_ver=0,
        payload=payload,
        refs=refs,
    )
    got = verify_event(event.envelope(), net=TN.net, resolve=TN.keyring.resolve)
    assert got == event
    assert encode(got.header) == event.header_bytes


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=512))
def test_arbitrary_bytes_never_crash_verification(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        _verify(data)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_single_bit_flip_is_rejected(position: int, bit: int) -> None:
    raw = bytearray(_event())
    raw[position % len(raw)] ^= 1 << bit
    with pytest.raises(ProtocolError):
        _verify(bytes(raw))
