"""The ask-turns vector (tests/vectors/events.json `turns`, PROTOCOL 4.3c) holds for the
reference rules, whatever order its events arrive in."""

from __future__ import annotations

import itertools

from rrn.federation.alerts import AlertState, fact, join
from rrn.federation.authority import Authority
from rrn.federation.keyring import Keyring
from rrn.federation.roster import verify_genesis
from rrn.federation.turns import turns_of
from rrn.protocol.envelope import Event, verify_event
from rrn.protocol.kinds import AlertPayload, decode_payload
from rrn.protocol.roster import decode_cert
from tests.protocol.test_vectors import VECTORS


def _fact(e: Event, audience: tuple[str, ...]) -> AlertState:
    payload = decode_payload(e.header.kind, e.payload or b"")
    assert isinstance(payload, AlertPayload)
    return fact(e.header, e.id, payload, audience)


def test_the_turns_vector_in_any_order() -> None:
    section = VECTORS["turns"]
    roster = verify_genesis(decode_cert(bytes.fromhex(section["genesis_cert"])))
    net, resolve = bytes.fromhex(section["network_id"]), Keyring(roster).resolve
    alert = verify_event(bytes.fromhex(section["alert"]), net=net, resolve=resolve)
    facts = [verify_event(bytes.fromhex(f), net=net, resolve=resolve) for f in section["facts"]]
    raised = _fact(alert, tuple(section["audience"]))
    for order in itertools.permutations([raised, *(_fact(e, ()) for e in facts)]):
        state = order[0]
        for one in order[1:]:
            state = join(state, one)
        found = turns_of(state, Authority.of(roster))
        assert found is not None
        (ask,) = found.asks
        assert ask.window_ms == section["window_ms"] and ask.order == section["order"]
        assert [
            {"org": t.org, "start_ms": t.start_ms, "reply_by_ms": t.reply_by_ms,
             "end_ms": t.end_ms, "declined": t.declined}
            for t in ask.turns
        ] == section["turns"]  # fmt: skip
        assert ask.answered_ms == section["answered_ms"]
