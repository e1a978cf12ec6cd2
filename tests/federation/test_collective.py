"""Collective actions (an assurance contract): every node derives the same outcome from
the signed joins, withdrawals and signatures in any order of arrival; the threshold is
met at the first signed time enough members stand; a withdrawal before it undoes a
join, one after it is recorded; an ineligible or late join counts for nothing."""

from __future__ import annotations

import hashlib
import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from rrn.federation.alert_view import AlertView, view
from rrn.federation.alerts import AlertState, fact, join
from rrn.federation.authority import Authority, authorise
from rrn.federation.keyring import Keyring
from rrn.federation.roster import verify_genesis
from rrn.protocol.collective import (
    CollectiveJoined,
    CollectiveProposed,
    CollectiveSigned,
    CollectiveWithdrawn,
    Quota,
)
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event, verify_event
from rrn.protocol.kinds import AlertPayload, decode_payload, kind_of
from rrn.protocol.roster import Role, decode_cert
from rrn.protocol.vocabulary import ActionType
from tests.protocol.test_vectors import VECTORS
from tests.support import Chain, network, raised

ROLES = {
    "lima-hr": {Role.RESPONDER},
    "acme-co": {Role.COMPANY},
    "beta-co": {Role.COMPANY},
    "gamma-co": {Role.COMPANY},
    "uk-emb": {Role.EMBASSY},
    "obs-un": {Role.OBSERVER},
}
TN = network(*ROLES)
AUTH = Authority({o: frozenset(r) for o, r in ROLES.items()})
TEXT = bytes(range(32))


def _state(events: list[Event]) -> AlertState:
    state: AlertState | None = None
    for e in events:
        p = decode_payload(e.header.kind, e.payload or b"")
        assert isinstance(p, AlertPayload)
        one = fact(e.header, e.id, p)
        state = one if state is None else join(state, one)
    assert state is not None
    return state


def _view(events: list[Event]) -> AlertView:
    v = view(_state(events), AUTH)
    assert v is not None
    return v


def _story() -> tuple[list[Event], dict[str, list[str]]]:
    c = {o: Chain(TN, o) for o in ROLES}
    t0 = c["lima-hr"].wall_ms + 10_000
    r = c["lima-hr"].raw("alert.raised", encode(raised(0)), wall_ms=t0)
    deadline = t0 + 60_000
    proposal = CollectiveProposed(
        alert=r.id,
        action=ActionType.PRIVATE_DIPLOMACY,
        threshold=[Quota(role=Role.COMPANY, count=2), Quota(role=Role.EMBASSY, count=1)],
        deadline_ms=deadline,
    )
    p = c["lima-hr"].raw("collective.proposed", encode(proposal), wall_ms=t0 + 1000)
    steps: list[tuple[str, object]] = [
        ("acme-co", CollectiveJoined(alert=r.id, proposal=p.id)),
        ("beta-co", CollectiveJoined(alert=r.id, proposal=p.id)),
        ("beta-co", CollectiveWithdrawn(alert=r.id, proposal=p.id)),  # before: undone
        ("obs-un", CollectiveJoined(alert=r.id, proposal=p.id)),  # not a role it names
        ("uk-emb", CollectiveJoined(alert=r.id, proposal=p.id)),
        ("gamma-co", CollectiveJoined(alert=r.id, proposal=p.id)),  # met here
        ("acme-co", CollectiveSigned(alert=r.id, proposal=p.id, text=TEXT)),
        ("uk-emb", CollectiveWithdrawn(alert=r.id, proposal=p.id)),  # after: recorded
        ("beta-co", CollectiveSigned(alert=r.id, proposal=p.id, text=TEXT)),  # not bound
    ]
    events = [r, p]
    for i, (org, payload) in enumerate(steps):
        kind = str(kind_of(payload))  # type: ignore[arg-type]
        events.append(c[org].raw(kind, encode(payload), wall_ms=t0 + 2000 + i * 1000))
    late = CollectiveJoined(alert=r.id, proposal=p.id)
    events.append(c["beta-co"].raw("collective.joined", encode(late), wall_ms=deadline + 1))
    expected = {
        "committed": ["acme-co", "uk-emb", "gamma-co"],
        "withdrew_after": ["uk-emb"],
        "signed": ["acme-co"],
    }
    return events, expected


def test_the_threshold_commits_the_members_standing_when_it_is_met() -> None:
    events, expected = _story()
    v = _view(events)
    (c,) = v.collectives
    assert c.committed == expected["committed"] and c.met_ms is not None
    assert c.withdrew_after == expected["withdrew_after"]
    assert c.signatures == {TEXT.hex(): expected["signed"]}
    reasons = sorted({(r.pos.org, r.reason) for r in authorise(_state(events), AUTH)[1]})
    assert reasons == [
        ("beta-co", "not_committed"),
        ("beta-co", "too_late"),
        ("obs-un", "not_eligible"),
    ]


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_every_order_of_arrival_gives_the_same_outcome(rng: random.Random) -> None:
    events, _ = _story()
    first = _view(events).collectives
    shuffled = events[:]
    rng.shuffle(shuffled)
    assert _view(shuffled).collectives == first


def test_unmet_commits_nobody() -> None:
    events, _ = _story()
    kept = [e for e in events if e.header.origin != "gamma-co"]
    (c,) = _view(kept).collectives
    assert c.met_ms is None and c.committed == [] and c.joined == ["acme-co"]
    for order in itertools.islice(itertools.permutations(kept[2:7]), 24):
        assert _view([*kept[:2], *order, *kept[7:]]).collectives[0].committed == []


def test_the_collective_vector_in_any_order() -> None:
    section = VECTORS["collective"]
    roster = verify_genesis(decode_cert(bytes.fromhex(section["genesis_cert"])))
    net, resolve = bytes.fromhex(section["network_id"]), Keyring(roster).resolve

    def verified(hexed: str) -> Event:
        return verify_event(bytes.fromhex(hexed), net=net, resolve=resolve)

    alert, proposal = verified(section["alert"]), verified(section["proposal"])
    facts = [verified(f["envelope"]) for f in section["facts"]]
    assert hashlib.sha256(section["text"].encode()).hexdigest() == section["text_sha256"]
    expected_refusals = sorted(
        (e.id.hex(), f["reason"])
        for e, f in zip(facts, section["facts"], strict=True)
        if f["reason"] is not None
    )
    auth = Authority.of(roster)
    rng = random.Random(11)
    for _ in range(12):
        allowed, refused = authorise(
            _state([alert, proposal, *rng.sample(facts, len(facts))]), auth
        )
        assert sorted((r.pos.id.hex(), r.reason) for r in refused if r.kind == "collective") == (
            expected_refusals
        )
        v = view(allowed, auth)
        assert v is not None and len(v.collectives) == section["collectives"]
        (c,) = (c for c in v.collectives if c.proposal.hex() == section["outcome"]["proposal"])
        got = {
            "proposal": c.proposal.hex(),
            "met_ms": c.met_ms,
            "joined": c.joined,
            "committed": c.committed,
            "withdrew_after": c.withdrew_after,
            "signatures": c.signatures,
        }
        assert got == section["outcome"]
