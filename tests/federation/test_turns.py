"""Asks offered in turns (PROTOCOL 4.3c): every node derives the same offers from the
signed facts in any order of arrival; a decline passes the turn at once; an answer
stops the turns; a company outside the alert's audience is never offered an ask."""

from __future__ import annotations

import random

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from rrn.federation.alerts import AlertState, fact, join
from rrn.federation.authority import Authority
from rrn.federation.turns import ANSWER_WINDOW_FACTOR, AskTurns, responses, turns_of
from rrn.protocol.alerts import AlertActed, AlertPledged, AlertResolved, Ask
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event
from rrn.protocol.kinds import AlertPayload, decode_payload, kind_of
from rrn.protocol.roster import Role
from rrn.protocol.vocabulary import ActionType, ActResult, Outcome, SupporterRole, Urgency
from tests.support import Chain, network, raised

ROLES = {
    "lima-hr": {Role.RESPONDER},
    "nairobi-dl": {Role.RESPONDER},
    "acme-co": {Role.COMPANY},
    "beta-co": {Role.COMPANY},
    "gamma-co": {Role.COMPANY},
    "delta-co": {Role.COMPANY},
}
COMPANIES = sorted(o for o, r in ROLES.items() if Role.COMPANY in r)
TN = network(*ROLES)
STEP_S = 60
AUTH = Authority({o: frozenset(r) for o, r in ROLES.items()}, step_s=dict.fromkeys(Urgency, STEP_S))
W = ANSWER_WINDOW_FACTOR * STEP_S * 1000
ENGAGE = ActionType.BUSINESS_PARTNER_ENGAGEMENT
T0 = 1_767_300_000_000


def _raise(audience: tuple[str, ...] = ()) -> tuple[Event, tuple[str, ...]]:
    body = msgspec.structs.replace(
        raised(0),
        asks=[
            Ask(action=ENGAGE, to=SupporterRole.COMPANY),
            Ask(action=ActionType.LEGAL_AID, to=SupporterRole.NGO),
        ],
    )
    return Chain(TN, "lima-hr").raw("alert.raised", encode(body), wall_ms=T0), audience


def _signed(org: str, payload: AlertPayload, at_ms: int) -> Event:
    return Chain(TN, org).raw(str(kind_of(payload)), encode(payload), wall_ms=at_ms)


def _state(raise_: tuple[Event, tuple[str, ...]], facts: list[Event]) -> AlertState:
    r, audience = raise_
    state: AlertState | None = None
    for e in [r, *facts]:
        p = decode_payload(e.header.kind, e.payload or b"")
        assert isinstance(p, AlertPayload)
        one = fact(e.header, e.id, p, audience if e is r else ())
        state = one if state is None else join(state, one)
    assert state is not None
    return state


def _turns(raise_: tuple[Event, tuple[str, ...]], facts: list[Event]) -> list[AskTurns]:
    found = turns_of(_state(raise_, facts), AUTH)
    assert found is not None
    return found.asks


def _decline(org: str, alert: bytes, at_ms: int) -> Event:
    return _signed(org, AlertActed(alert=alert, action=ENGAGE, result=ActResult.DECLINED), at_ms)


def test_unanswered_ask_goes_to_every_company_in_turn_from_the_raise() -> None:
    raise_ = _raise()
    company, ngo = _turns(raise_, [])
    assert sorted(company.order) == COMPANIES, "every company but none of the others"
    assert ngo.order == ["nairobi-dl"], "the origin is never offered its own ask"
    assert [t.start_ms for t in company.turns] == [T0 + 2 * W * k for k in range(4)]
    assert [t.org for t in company.turns] == company.order
    first = company.turns[0]
    assert (first.reply_by_ms, first.end_ms) == (T0 + W, T0 + 2 * W)
    assert company.reask_ms(first) == T0 + W
    assert [t.org for t in company.offered(T0 + 2 * W)] == company.order[:2], "offers accumulate"
    assert company.next_offer_ms(T0 + 2 * W) == T0 + 4 * W
    assert company.next_offer_ms(T0 + 6 * W) is None, "offered to everyone: turns stop"


def test_a_decline_starts_the_next_turn_at_its_signed_time() -> None:
    raise_ = _raise()
    order = _turns(raise_, [])[0].order
    declined = _decline(order[0], raise_[0].id, T0 + 5_000)
    before_turn = _decline(order[2], raise_[0].id, T0 + 6_000)  # passed over when it comes
    company = _turns(raise_, [declined, before_turn])[0]
    assert [(t.org, t.start_ms) for t in company.turns] == [
        (order[0], T0),
        (order[1], T0 + 5_000),
        (order[3], T0 + 5_000 + 2 * W),
    ]
    assert company.turns[0].declined and company.reask_ms(company.turns[0]) is None


def test_an_answer_stops_the_turns_and_is_measured_from_the_offer() -> None:
    raise_ = _raise()
    a = raise_[0].id
    order = _turns(raise_, [])[0].order
    pledge = _signed(order[1], AlertPledged(alert=a, action=ENGAGE), T0 + 2 * W + 7_000)
    acted = _signed(order[1], AlertActed(alert=a, action=ENGAGE), T0 + 2 * W + 9_000)
    state = _state(raise_, [pledge, acted])
    found = turns_of(state, AUTH)
    assert found is not None
    company = found.asks[0]
    assert [t.org for t in company.turns] == order[:2], "nobody is offered it after the pledge"
    assert company.answered_ms == T0 + 2 * W + 7_000
    assert company.reask_ms(company.turns[1]) is None, "answered before its reply-by"
    assert company.reask_ms(company.turns[0]) == T0 + W, "the first was re-asked, unanswered"
    second = next(r for r in responses(state, company) if r.org == order[1])
    assert (second.responded_ms, second.pledged_ms, second.acted_ms) == (
        T0 + 2 * W + 7_000,
        T0 + 2 * W + 7_000,
        T0 + 2 * W + 9_000,
    )
    assert second.offered_ms == T0 + 2 * W
    ended = _signed("lima-hr", AlertResolved(alert=a, outcome=Outcome.SAFE), T0 + 1_000)
    assert _turns(raise_, [ended])[0].turns == _turns(raise_, [])[0].turns[:1]


def test_a_company_outside_the_audience_is_never_offered() -> None:
    audience = tuple(o for o in ROLES if o != "beta-co")
    raise_ = _raise(audience)
    declines = [_decline(o, raise_[0].id, T0 + 1_000 * i) for i, o in enumerate(COMPANIES, 1)]
    company = _turns(raise_, declines)[0]
    assert "beta-co" not in company.order and len(company.order) == 3
    assert all(t.org != "beta-co" for t in company.turns)


_FACTS = st.lists(
    st.tuples(
        st.sampled_from([*COMPANIES, "nairobi-dl"]),
        st.sampled_from(["pledge", "decline", "act"]),
        st.integers(min_value=-W, max_value=10 * W),
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(facts=_FACTS, seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_every_order_of_arrival_gives_the_same_turns(
    facts: list[tuple[str, str, int]], seed: int
) -> None:
    raise_ = _raise(tuple(o for o in ROLES if o != "delta-co"))
    a = raise_[0].id
    made: dict[str, AlertPayload] = {
        "pledge": AlertPledged(alert=a, action=ENGAGE),
        "decline": AlertActed(alert=a, action=ENGAGE, result=ActResult.DECLINED),
        "act": AlertActed(alert=a, action=ENGAGE),
    }
    events = [_signed(org, made[what], T0 + dt) for org, what, dt in facts]
    expected = _turns(raise_, events)
    shuffled = events[:]
    random.Random(seed).shuffle(shuffled)
    assert _turns(raise_, shuffled) == expected
    company = expected[0]
    assert all(t.org != "delta-co" for t in company.turns), "outside the audience"
    if company.answered_ms is not None:
        assert all(t.start_ms < company.answered_ms for t in company.turns)
    for before, after in zip(company.turns, company.turns[1:], strict=False):
        assert after.start_ms == before.end_ms <= before.start_ms + 2 * W
