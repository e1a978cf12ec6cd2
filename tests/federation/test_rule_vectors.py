"""The rule vectors (tests/vectors/events.json, written by tests/vectors/rules.py) hold
for the reference rules: what a node does with events that verify."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from rrn.federation.alert_view import view
from rrn.federation.alerts import AlertState, fact, join
from rrn.federation.authority import Authority, authorise
from rrn.federation.keyring import Keyring
from rrn.federation.limits import MAX_FUTURE_MS, Usage, charge, limits_of, over_quota
from rrn.federation.roster import verify_genesis, verify_next
from rrn.protocol.envelope import Event, verify_event
from rrn.protocol.errors import PayloadError, ProtocolError
from rrn.protocol.kinds import AlertPayload, decode_payload
from rrn.protocol.roster import Roster, decode_cert
from tests.protocol.test_vectors import NET, RESOLVE, VECTORS


def _genesis(section: dict[str, Any]) -> Roster:
    return verify_genesis(decode_cert(bytes.fromhex(section["genesis_cert"])))


def _walk(events: list[Event], roster: Roster, clock_ms: int) -> list[str]:
    """One chain from empty, as PROTOCOL 3.7 says: each event's outcome."""
    usage, out = Usage(), []
    for e in events:
        if e.header.wall_ms > clock_ms + MAX_FUTURE_MS:
            out.append("held")
            continue
        usage, unapplied = charge(usage, e.header)
        if over_quota(usage, limits_of(roster)) is not None:
            out.append("quota_exceeded")
            break
        out.append(unapplied or "applied")
    return out


@pytest.mark.parametrize("case", VECTORS["chain_rules"]["cases"], ids=lambda c: c["name"])
def test_chain_rule_vector(case: dict[str, Any]) -> None:
    section = VECTORS["chain_rules"]
    roster = _genesis(section)
    assert limits_of(roster).day_events == section["day_events"]
    assert section["max_future_ms"] == MAX_FUTURE_MS
    net = bytes.fromhex(section["network_id"])
    events = [verify_event(bytes.fromhex(e), net=net, resolve=Keyring(roster).resolve)
              for e in case["envelopes"]]  # fmt: skip
    for a, b in itertools.pairwise(events):
        assert b.header.prev == a.id and b.header.seq == a.header.seq + 1, "one chain"
    assert _walk(events, roster, section["clock_ms"]) == case["outcomes"]


@pytest.mark.parametrize("case", VECTORS["payload_rules"], ids=lambda c: c["name"])
def test_payload_rule_vector(case: dict[str, Any]) -> None:
    event = verify_event(bytes.fromhex(case["envelope"]), net=NET, resolve=RESOLVE)
    with pytest.raises(PayloadError) as info:
        decode_payload(event.header.kind, event.payload or b"")
    assert info.value.reason == case["reason"]


def _state(events: list[Event], audience: tuple[str, ...]) -> AlertState:
    state: AlertState | None = None
    for e in events:
        payload = decode_payload(e.header.kind, e.payload or b"")
        assert isinstance(payload, AlertPayload)
        one = fact(e.header, e.id, payload, audience if e is events[0] else ())
        state = one if state is None else join(state, one)
    assert state is not None
    return state


def test_authority_vector_in_either_order() -> None:
    section = VECTORS["authority"]
    roster = _genesis(section)
    net, resolve = bytes.fromhex(section["network_id"]), Keyring(roster).resolve
    raised = verify_event(bytes.fromhex(section["raise"]), net=net, resolve=resolve)
    facts = [verify_event(bytes.fromhex(f["envelope"]), net=net, resolve=resolve)
             for f in section["facts"]]  # fmt: skip
    audience = tuple(section["audience"])
    expected_refused = sorted(
        (e.id, f["refused"], f["reason"])
        for e, f in zip(facts, section["facts"], strict=True)
        if f["reason"] is not None
    )
    authority = Authority.of(roster)
    for order in (facts, facts[::-1]):
        state = join(_state([raised], audience), _state(order, ()))
        _, refused = authorise(state, authority)
        found = sorted((r.pos.id, r.kind, r.reason) for r in refused)
        assert found == expected_refused
        v = view(state, authority)
        assert v is not None
        expected = section["view"]
        assert str(v.status) == expected["status"] and list(v.claimants) == expected["claimants"]
        assert v.ended_by == expected["ended_by"] and v.level == expected["level"]


def test_removal_vector() -> None:
    section = VECTORS["removal"]
    genesis_cert = decode_cert(bytes.fromhex(section["genesis_cert"]))
    genesis = verify_genesis(genesis_cert)
    v1 = verify_next(
        genesis, genesis_cert.roster, decode_cert(bytes.fromhex(section["roster_v1_cert"]))
    )
    net, resolve = bytes.fromhex(section["network_id"]), Keyring(v1).resolve
    verify_event(bytes.fromhex(section["before"]), net=net, resolve=resolve)
    with pytest.raises(ProtocolError) as info:
        verify_event(bytes.fromhex(section["after"]["envelope"]), net=net, resolve=resolve)
    assert info.value.reason == section["after"]["reason"]
    verify_event(
        bytes.fromhex(section["after"]["envelope"]), net=net, resolve=Keyring(genesis).resolve
    )
