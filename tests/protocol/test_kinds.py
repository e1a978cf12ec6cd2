"""Alert payloads: valid ones round trip; invalid ones are refused without echoing input."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrn.protocol.alerts import AlertClaimed, AlertRaised, AlertUpdated, Ask
from rrn.protocol.countries import COUNTRIES
from rrn.protocol.errors import PayloadError, Reason
from rrn.protocol.kinds import Kind, decode_payload, encode_payload
from rrn.protocol.vocabulary import (
    ActionType,
    Channel,
    IncidentType,
    Severity,
    SupporterRole,
    Urgency,
)
from tests.support import raised


def _raw(**fields: object) -> bytes:
    base: dict[str, object] = {
        "country": "PE",
        "incident_types": ["death_threat"],
        "severity": "severe",
        "urgency": "immediate",
        "pseudonym": "hrd-abcdefg2",
    }
    base.update(fields)
    return msgspec.msgpack.encode(base)


def test_raised_round_trips() -> None:
    payload = raised()
    assert decode_payload("alert.raised", encode_payload(payload)) == payload


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"country": "XX"}, "country"),
        ({"country": "pe"}, "country"),
        ({"subdivision": "KE-30"}, "subdivision"),
        ({"incident_types": []}, "incident_types"),
        ({"incident_types": ["death_threat", "death_threat"]}, "twice"),
        ({"incident_types": ["Maria Lopez was threatened"]}, "incident_types"),
        ({"severity": "catastrophic"}, "severity"),
        ({"urgency": "now"}, "urgency"),
        ({"pseudonym": "Maria Lopez"}, "pseudonym"),
        ({"languages": ["Spanish"]}, "languages"),
        ({"sealed": b"identity in the clear?"}, "sealed"),
    ],
)
def test_invalid_raised_payloads_are_refused(fields: dict[str, object], why: str) -> None:
    with pytest.raises(PayloadError) as info:
        decode_payload("alert.raised", _raw(**fields))
    assert info.value.reason is Reason.MALFORMED_PAYLOAD
    assert why in str(info.value)
    for value in fields.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in str(info.value), "error messages must not echo input"


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    got = decode_payload("alert.raised", _raw(added_in_a_later_version=1))
    assert isinstance(got, AlertRaised)


def test_unknown_kind_is_named() -> None:
    with pytest.raises(PayloadError) as info:
        decode_payload("sealed.granted", b"\x80")
    assert info.value.reason is Reason.UNKNOWN_KIND


def test_invalid_utf8_is_refused_not_crashing() -> None:
    with pytest.raises(PayloadError):
        decode_payload("alert.raised", b"\x81\xa7country\xa2\xff\xfe")


def test_encode_refuses_what_receivers_refuse() -> None:
    bad = AlertRaised(
        country="ZZ",
        incident_types=[IncidentType.RAID],
        severity=Severity.MINOR,
        urgency=Urgency.WEEKS,
        pseudonym="hrd-abcdefg2",
    )
    with pytest.raises(PayloadError):
        encode_payload(bad)


def test_every_kind_has_a_payload_type() -> None:
    for kind in Kind:
        with pytest.raises(PayloadError) as info:
            decode_payload(str(kind), b"\xc0")
        assert info.value.reason is Reason.MALFORMED_PAYLOAD


def test_country_list_is_iso_3166_alpha_2_plus_kosovo() -> None:
    assert len(COUNTRIES) == 250
    assert {"PE", "KE", "ID", "XK", "PS", "SS"} <= COUNTRIES
    assert all(len(c) == 2 and c.isupper() for c in COUNTRIES)


@settings(max_examples=150, deadline=None)
@given(
    country=st.sampled_from(sorted(COUNTRIES)),
    types=st.lists(st.sampled_from(list(IncidentType)), min_size=1, max_size=8, unique=True),
    severity=st.sampled_from(list(Severity)),
    urgency=st.sampled_from(list(Urgency)),
    asks=st.lists(
        st.builds(
            Ask,
            action=st.sampled_from(list(ActionType)),
            to=st.sampled_from(list(SupporterRole)),
            channel=st.sampled_from(list(Channel)),
            deadline_ms=st.none() | st.integers(min_value=0, max_value=2**53 - 1),
        ),
        max_size=16,
    ),
    exercise=st.booleans(),
)
def test_any_valid_alert_round_trips(
    country: str,
    types: list[IncidentType],
    severity: Severity,
    urgency: Urgency,
    asks: list[Ask],
    exercise: bool,
) -> None:
    payload = AlertRaised(
        country=country,
        incident_types=types,
        severity=severity,
        urgency=urgency,
        asks=asks,
        pseudonym="hrd-zzzz2222",
        exercise=exercise,
    )
    assert decode_payload("alert.raised", encode_payload(payload)) == payload


def test_update_with_nothing_set_is_valid() -> None:
    upd = AlertUpdated(alert=b"\x01" * 32)
    assert decode_payload("alert.updated", encode_payload(upd)) == upd


def _map(*pairs: tuple[bytes, bytes]) -> bytes:
    """A msgpack map spelled by hand, so a key can appear twice."""
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


def _s(text: str) -> bytes:
    return bytes([0xA0 | len(text)]) + text.encode()


def test_a_payload_that_names_a_key_twice_is_refused() -> None:
    """Implementations that keep the first or the last value would derive different
    states from the same signed bytes: such a claim is malformed everywhere."""
    alert = b"\xc4\x20" + bytes(32)
    other = b"\xc4\x20" + bytes([1] * 32)
    once = _map((_s("alert"), alert))
    assert decode_payload("alert.claimed", once)
    twice = _map((_s("alert"), alert), (_s("alert"), other))
    with pytest.raises(PayloadError) as err:
        decode_payload("alert.claimed", twice)
    assert err.value.reason is Reason.MALFORMED_PAYLOAD
    assert "same key twice" in str(err.value)
    # The same key spelled two ways (fixstr and str8) is still the same key.
    str8 = b"\xd9\x05alert"
    with pytest.raises(PayloadError):
        decode_payload("alert.claimed", _map((_s("alert"), alert), (str8, other)))


def test_a_repeated_key_deep_inside_a_payload_is_refused() -> None:
    ask = _map((_s("action"), _s("legal_aid")), (_s("to"), _s("ngo")), (_s("to"), _s("un")))
    data = msgspec.msgpack.encode(
        {
            "country": "PE",
            "incident_types": ["raid"],
            "severity": "minor",
            "urgency": "days",
            "pseudonym": "hrd-abcdefg2",
        }
    )
    data = bytes([data[0] + 1]) + data[1:] + _s("asks") + b"\x91" + ask
    with pytest.raises(PayloadError, match="same key twice"):
        decode_payload("alert.raised", data)


@given(st.sampled_from(["country", "severity", "urgency", "pseudonym"]))
def test_any_top_level_key_given_twice_is_refused(key: str) -> None:
    good = msgspec.msgpack.decode(encode_payload(raised()))
    assert isinstance(good, dict)
    data = msgspec.msgpack.encode(good)
    data = bytes([data[0] + 1]) + data[1:] + msgspec.msgpack.encode(key) + b"\xc0"
    with pytest.raises(PayloadError, match="same key twice"):
        decode_payload("alert.raised", data)


def test_keys_spelled_other_than_canonically_are_still_accepted() -> None:
    """Payloads need not be canonical (the header pins the bytes): str8 for a short key is fine."""
    alert = b"\xc4\x20" + bytes(32)
    claim = decode_payload("alert.claimed", _map((b"\xd9\x05alert", alert)))
    assert isinstance(claim, AlertClaimed) and claim.alert == bytes(32)
