"""Structure-aware fuzzing of every decoder that reads bytes a member or a local client
chose: each either returns a value or raises its own error (counted as a rejection),
never anything else, and what it accepts re-encodes to the bytes it was given.

The inputs start from valid messages and change one field at a time (another type,
an edge value, a field dropped or added) and are then signed with the real key, so
the decoding behind each signature check is reached, not only the check. `make
test` runs a bounded number of examples; `make fuzz` runs many more
(RRN_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrn.federation.chain import check_fork_proof, decode_fork_proof, fork_proof
from rrn.federation.roster import verify_genesis
from rrn.node.control.channel import Verifier, decode_args
from rrn.node.ops import types as op_types
from rrn.node.ops.members import ProposeArgs
from rrn.protocol.alerts import AlertClaimed
from rrn.protocol.encoding import DOMAIN_CONTROL, DOMAIN_EVENT, encode, pae
from rrn.protocol.envelope import Event, verify_event
from rrn.protocol.errors import ControlError, FederationError, ProtocolError
from rrn.protocol.kinds import _TYPES, decode_payload
from rrn.protocol.messages import (
    MESSAGE_VERSION,
    Alive,
    HeadEntry,
    Heartbeat,
    RangeRequest,
    RangeResponse,
    Software,
    decode_response,
    open_alive,
    open_heartbeat,
    open_request,
    open_software,
    sign_alive,
    sign_heartbeat,
    sign_request,
    sign_software,
)
from rrn.protocol.roster import decode_cert, decode_roster, encode_cert, open_card
from rrn.protocol.sealing import Details, Position, decode_details, decode_sealed, encode_sealed
from tests.support import Chain, network, raised

EXAMPLES = int(os.environ.get("RRN_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TN = network("lima-hr", "nairobi-dl")
KEYRING = TN.keyring
LIMA = TN.keys["lima-hr"]

EDGES: st.SearchStrategy[Any] = st.sampled_from(
    [
        0,
        1,
        -1,
        2**31,
        2**32,
        2**53 - 1,
        2**53,
        2**63,
        2**64 - 1,
        -(2**63),
        1.5,
        float("nan"),
        "",
        "a" * 300,
        "lima.hr",
        "é",
        "\x00",
        b"",
        b"\x00" * 16,
        b"\x00" * 32,
        b"\xff" * 64,
        None,
        True,
        False,
        [],
        {},
        [[]],
        {"": None},
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(),
    st.text(max_size=24),
    st.binary(max_size=70),
)
VALUES = st.recursive(
    st.one_of(SCALARS, EDGES),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers(0, 9)), inner, max_size=5),
    ),
    max_leaves=16,
)


@st.composite
def mutated(draw: st.DrawFn, fields: list[Any]) -> list[Any]:
    """`fields` with one change: a field replaced, dropped, repeated, or one added."""
    out = list(fields)
    op = draw(st.sampled_from(["replace", "replace", "replace", "drop", "add", "dup"]))
    i = draw(st.integers(0, max(len(out) - 1, 0)))
    if op == "replace" and out:
        out[i] = draw(VALUES)
    elif op == "drop" and out:
        del out[i]
    elif op == "dup" and out:
        out.insert(i, out[i])
    else:
        out.append(draw(VALUES))
    return out


@st.composite
def mutated_map(draw: st.DrawFn, names: tuple[str, ...], base: dict[str, Any]) -> dict[Any, Any]:
    """A map keyed by the struct's own field names (so typed decoding is reached)."""
    out: dict[Any, Any] = dict(base)
    for _ in range(draw(st.integers(1, 4))):
        out[draw(st.sampled_from(names))] = draw(VALUES)
    if draw(st.booleans()) and out:
        del out[draw(st.sampled_from(sorted(out, key=str)))]
    return out


def _pack(value: Any) -> bytes:
    return msgspec.msgpack.encode(value)


def _fields(data: bytes) -> list[Any]:
    decoded: list[Any] = msgspec.msgpack.decode(data)
    return decoded


BASE = Chain(TN, "lima-hr").next(raised(0))
HEADER = _fields(BASE.header_bytes)


@FUZZ
@given(header=mutated(HEADER), keep_payload=st.booleans())
def test_signed_headers_of_any_shape(header: list[Any], keep_payload: bool) -> None:
    """A member signs whatever header it likes: verification names a reason or accepts
    an event whose bytes are exactly what was signed."""
    try:
        hb = _pack(header)
    except (OverflowError, TypeError):
        return
    payload = BASE.payload if keep_payload else b""
    raw = encode((hb, LIMA.sign(pae(DOMAIN_EVENT, hb)), payload))
    try:
        event = verify_event(raw, net=TN.net, resolve=KEYRING.resolve)
    except ProtocolError:
        return
    assert event.envelope() == raw


KINDS = sorted(str(k) for k in _TYPES)


@FUZZ
@given(st.data())
def test_payloads_of_every_kind(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(KINDS))
    names = tuple(
        f.encode_name
        for f in msgspec.structs.fields(_TYPES[kind])  # type: ignore[index]
    )
    base = msgspec.to_builtins(raised(0)) if kind == "alert.raised" else {}
    body = data.draw(mutated_map(names, base))
    try:
        payload = _pack(body)
    except (OverflowError, TypeError):
        return
    with contextlib.suppress(ProtocolError):
        decode_payload(kind, payload)
    with contextlib.suppress(ProtocolError):
        decode_payload(kind, data.draw(st.binary(max_size=200)))


HEARTBEAT = _fields(
    encode(
        Heartbeat(
            v=MESSAGE_VERSION,
            net=TN.net,
            org="lima-hr",
            epoch=1,
            boot=b"\x01" * 16,
            counter=1,
            wall_ms=1,
            roster_ver=0,
            heads=[HeadEntry(origin="nairobi-dl", epoch=1, seq=3, id=b"\x02" * 32)],
        )
    )
)
SOFTWARE = _fields(
    encode(
        Software(
            v=MESSAGE_VERSION,
            net=TN.net,
            org="lima-hr",
            epoch=1,
            wall_ms=1,
            rrn="0.1.0",
            protocol=1,
            nats_server="v2.15.1",
            tz_database="2026f",
            lock="ab" * 32,
        )
    )
)
ALIVE = _fields(
    encode(
        Alive(
            v=MESSAGE_VERSION,
            net=TN.net,
            org="lima-hr",
            epoch=1,
            boot=b"\x01" * 16,
            counter=1,
            wall_ms=1,
            roster_ver=1,
            hears=b"\xe0",
        )
    )
)
REQUEST = _fields(
    encode(
        RangeRequest(
            v=MESSAGE_VERSION,
            net=TN.net,
            requester="lima-hr",
            responder="nairobi-dl",
            epoch_of_requester=1,
            nonce=b"\x03" * 16,
            wall_ms=1,
            origin="nairobi-dl",
            epoch=1,
            from_seq=1,
            limit=10,
        )
    )
)


def _signed(domain_sign: Any, fields: list[Any]) -> bytes | None:
    """`fields` signed by lima-hr as a heartbeat or request would be (None: not msgpack)."""
    try:
        body = _pack(fields)
    except (OverflowError, TypeError):
        return None
    signed: bytes = domain_sign(body)
    return signed


@FUZZ
@given(fields=mutated(HEARTBEAT), heads=mutated(_fields(encode(HEARTBEAT[-1][0]))))
def test_signed_heartbeats_of_any_shape(fields: list[Any], heads: list[Any]) -> None:
    for hb in (fields, [*HEARTBEAT[:-1], [heads]]):
        data = _signed(lambda b: _pack([b, LIMA.sign(pae(b"rrn/heartbeat/v1", b))]), hb)
        if data is None:
            continue
        try:
            opened = open_heartbeat(data, net=TN.net, key_for=KEYRING.current)
        except ProtocolError:
            continue
        assert sign_heartbeat(LIMA, opened) == data


@FUZZ
@given(fields=mutated(SOFTWARE))
def test_signed_software_announcements_of_any_shape(fields: list[Any]) -> None:
    data = _signed(lambda b: _pack([b, LIMA.sign(pae(b"rrn/software/v1", b))]), fields)
    if data is None:
        return
    try:
        opened = open_software(data, net=TN.net, key_for=KEYRING.current)
    except ProtocolError:
        return
    assert sign_software(LIMA, opened) == data
    assert len(opened.tz_database) <= 64 and opened.tz_database.isascii()


@FUZZ
@given(fields=mutated(ALIVE))
def test_signs_of_life_of_any_shape(fields: list[Any]) -> None:
    data = _signed(lambda b: _pack([b, LIMA.sign(pae(b"rrn/alive/v1", b))]), fields)
    if data is None:
        return
    try:
        opened = open_alive(data, net=TN.net, key_for=KEYRING.current)
    except ProtocolError:
        return
    assert sign_alive(LIMA, opened) == data


@FUZZ
@given(fields=mutated(REQUEST))
def test_signed_range_requests_of_any_shape(fields: list[Any]) -> None:
    data = _signed(lambda b: _pack([b, LIMA.sign(pae(b"rrn/request/v1", b))]), fields)
    if data is None:
        return
    try:
        opened = open_request(data, net=TN.net, key_for=KEYRING.current)
    except ProtocolError:
        return
    assert sign_request(LIMA, opened) == data


RESPONSE = _fields(
    encode(
        RangeResponse(
            nonce=b"\x03" * 16, origin="lima-hr", epoch=1, events=[BASE.envelope()], more=False
        )
    )
)


@FUZZ
@given(fields=mutated(RESPONSE))
def test_range_responses_of_any_shape(fields: list[Any]) -> None:
    try:
        data = _pack(fields)
    except (OverflowError, TypeError):
        return
    try:
        response = decode_response(data)
    except ProtocolError:
        return
    for envelope in response.events:  # each is verified on its own, as the node does
        with contextlib.suppress(ProtocolError):
            verify_event(envelope, net=TN.net, resolve=KEYRING.resolve)


CERT = _fields(encode_cert(TN.cert))
ROSTER = _fields(TN.roster_bytes)
CARD = ROSTER[4][0]


@FUZZ
@given(roster=mutated(ROSTER), card=mutated(CARD), cert=mutated(CERT))
def test_rosters_cards_and_certificates_of_any_shape(
    roster: list[Any], card: list[Any], cert: list[Any]
) -> None:
    for fields, decode in ((roster, decode_roster), (card, open_card), (cert, decode_cert)):
        try:
            data = _pack(fields)
        except (OverflowError, TypeError):
            continue
        try:
            decoded = decode(data)
        except ProtocolError:
            continue
        if decode is decode_cert:
            with contextlib.suppress(ProtocolError, FederationError):
                verify_genesis(decoded)  # type: ignore[arg-type]


@FUZZ
@given(data=st.data())
def test_sealed_blobs_details_and_fork_proofs_of_any_shape(data: st.DataObject) -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from rrn.protocol.sealing import seal

    k = X25519PrivateKey.from_private_bytes(b"\x07" * 32)
    pos = Position(TN.net, "lima-hr", 1, 1)
    sealed = _fields(encode_sealed(seal(b"\x81\xa1a\xa1b", {"lima-hr": k.public_key()}, pos)))
    other = Chain(TN, "lima-hr").next(AlertClaimed(alert=BASE.id))
    proof = _fields(encode(fork_proof(BASE, other)))
    names = tuple(Details.__struct_fields__)
    cases: list[tuple[Any, Any]] = [
        (data.draw(mutated(sealed)), decode_sealed),
        (data.draw(mutated_map(names, {"identity": "x"})), decode_details),
        (data.draw(mutated(proof)), decode_fork_proof),
    ]
    for fields, decode in cases:
        try:
            raw = _pack(fields)
        except (OverflowError, TypeError):
            continue
        try:
            decoded = decode(raw)
        except ProtocolError:
            continue
        if decode is decode_fork_proof:
            with contextlib.suppress(ProtocolError):
                check_fork_proof(decoded, net=TN.net, resolve=KEYRING.resolve)


CONTROL_KEY = b"\x05" * 32
REQUEST_BODY = ["status", _pack({}), 1_000, b"\x06" * 16, "_INBOX.x"]
#: Every operation's arguments.
ARG_TYPES: list[type[Any]] = [
    ProposeArgs,
    *(
        t
        for name, t in sorted(vars(op_types).items())
        if name.endswith("Args") and isinstance(t, type) and issubclass(t, msgspec.Struct)
    ),
]


@FUZZ
@given(body=mutated(REQUEST_BODY), data=st.data())
def test_control_requests_and_arguments_of_any_shape(body: list[Any], data: st.DataObject) -> None:
    """A local client holding the control key (an operator's mistake, a buggy script)
    gets an error back, never a daemon crash."""
    import hashlib
    import hmac

    try:
        raw = _pack(body)
    except (OverflowError, TypeError):
        return
    mac = hmac.new(CONTROL_KEY, pae(DOMAIN_CONTROL, raw), hashlib.sha256).digest()
    with contextlib.suppress(ProtocolError):
        Verifier(CONTROL_KEY).check(_pack([raw, mac]), 1_000, reply="_INBOX.x")
    arg_type = data.draw(st.sampled_from(ARG_TYPES))
    names = tuple(f.encode_name for f in msgspec.structs.fields(arg_type))
    try:
        args = _pack(data.draw(mutated_map(names, {})))
    except (OverflowError, TypeError):
        return
    with contextlib.suppress(ControlError):
        decode_args(args, arg_type)


def test_a_valid_event_survives_the_fuzzer_own_round_trip() -> None:
    """The harness itself: unchanged fields give back the valid event (so a mutation
    that is refused is refused for its change, not for the harness)."""
    hb = _pack(HEADER)
    assert hb == BASE.header_bytes
    raw = encode((hb, LIMA.sign(pae(DOMAIN_EVENT, hb)), BASE.payload))
    event: Event = verify_event(raw, net=TN.net, resolve=KEYRING.resolve)
    assert event.id == BASE.id
    assert (
        open_heartbeat(
            _pack([(b := _pack(HEARTBEAT)), LIMA.sign(pae(b"rrn/heartbeat/v1", b))]),
            net=TN.net,
            key_for=KEYRING.current,
        )
        .heads[0]
        .seq
        == 3
    )
