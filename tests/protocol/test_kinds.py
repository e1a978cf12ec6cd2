"""Alert payloads: valid ones round trip; invalid ones are refused without echoing input."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrn.protocol.alerts import AlertRaised, AlertUpdated, Ask
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
