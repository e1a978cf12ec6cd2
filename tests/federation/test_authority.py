"""Who may change an alert: unauthorised facts stay as evidence and change no view,
on every node alike, whatever order they arrive in."""

from __future__ import annotations

import random

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from rrn.federation.alert_view import view
from rrn.federation.alerts import AlertState, AlertStatus, fact, join
from rrn.federation.authority import Authority, authorise
from rrn.protocol.alerts import (
    AlertActed,
    AlertClaimed,
    AlertEscalated,
    AlertFeedback,
    AlertPledged,
    AlertRaised,
    AlertReleased,
    AlertResolved,
    AlertUpdated,
    Ask,
)
from rrn.protocol.envelope import Event
from rrn.protocol.kinds import AlertPayload, decode_payload
from rrn.protocol.roster import Role
from rrn.protocol.vocabulary import (
    ActionType,
    EscalationCause,
    FeedbackType,
    Outcome,
    Severity,
    SupporterRole,
)
from tests.support import Chain, network, raised

ORGS = ("lima-hr", "nairobi-dl", "jakarta-pb", "acme-co", "obs-un")
TN = network(*ORGS)
ROLES = {
    "lima-hr": {Role.RESPONDER},
    "nairobi-dl": {Role.RESPONDER},
    "jakarta-pb": {Role.RESPONDER},
    "acme-co": {Role.COMPANY},
    "obs-un": {Role.OBSERVER},
}
AUTH = Authority({o: frozenset(r) for o, r in ROLES.items()}, max_direct=2)
POOL = ["jakarta-pb", "lima-hr", "nairobi-dl"]  # the responders
DL = EscalationCause.DEADLINE
STEP_MS = 600_000


def _state(events: list[Event]) -> AlertState:
    state: AlertState | None = None
    for e in events:
        assert e.payload is not None
        p = decode_payload(e.header.kind, e.payload)
        assert isinstance(p, AlertPayload)
        single = fact(e.header, e.id, p)
        state = single if state is None else join(state, single)
    assert state is not None
    return state


def _raise(asks: list[Ask] | None = None, exclude: list[str] | None = None) -> AlertRaised:
    return msgspec.structs.replace(raised(), asks=asks or [], exclude=exclude or [])


def _chains() -> dict[str, Chain]:
    return {o: Chain(TN, o) for o in ORGS}


def test_an_outsider_cannot_claim_resolve_or_escalate_an_alert() -> None:
    """The attack: a company signs a claim, a resolution and an escalation to level 10000
    naming itself. None of it counts: the alert stays open, asks the ladder."""
    c = _chains()
    r = c["lima-hr"].next(_raise())
    attack = [
        c["acme-co"].next(AlertClaimed(alert=r.id)),
        c["acme-co"].next(AlertResolved(alert=r.id, outcome=Outcome.SAFE)),
        c["acme-co"].next(AlertEscalated(alert=r.id, level=10_000, targets=["acme-co"], cause=DL)),
    ]
    v = view(_state([r, *attack]), AUTH)
    assert v is not None and v.status is AlertStatus.OPEN
    assert v.claimants == () and v.ended_by is None and v.level == 0 and v.targets == ()
    _, refused = authorise(_state([r, *attack]), AUTH)
    assert sorted((x.kind, x.reason) for x in refused) == [
        ("claimed", "not_a_responder"),
        ("ended", "not_origin"),
        ("escalated", "level"),
    ]


def test_a_member_excluded_from_the_audience_changes_nothing() -> None:
    c = _chains()
    r = c["lima-hr"].next(_raise(exclude=["jakarta-pb"]))
    state = _state([r])
    # The audience is what the raise was sealed to (federation/consent.py decides it).
    audience = ("lima-hr", "nairobi-dl", "acme-co")
    assert state.raised is not None
    state = msgspec.structs.replace(
        state, raised=msgspec.structs.replace(state.raised, audience=audience)
    )
    claim = c["jakarta-pb"].next(AlertClaimed(alert=r.id))
    act = c["jakarta-pb"].next(AlertActed(alert=r.id, action=ActionType.LEGAL_AID))
    state = join(join(state, _state([claim])), _state([act]))
    v = view(state, AUTH)
    assert v is not None and v.claimants == () and v.actions == ()
    assert {(x.kind, x.reason) for x in authorise(state, AUTH)[1]} == {
        ("claimed", "outside_audience"),
        ("acted", "outside_audience"),
    }


def test_honest_escalations_are_allowed() -> None:
    c = _chains()
    r = c["lima-hr"].next(_raise())
    t0 = r.header.wall_ms
    nai = c["nairobi-dl"]
    steps = [
        nai.raw("alert.escalated", _esc(r.id, 1, ["jakarta-pb"]), wall_ms=t0 + STEP_MS),
        nai.raw("alert.escalated", _esc(r.id, 2, POOL), wall_ms=t0 + 2 * STEP_MS),
        nai.raw("alert.escalated", _esc(r.id, 3, POOL), wall_ms=t0 + 3 * STEP_MS),
    ]
    v = view(_state([r, *steps]), AUTH)
    assert v is not None and v.level == 3 and v.targets == tuple(POOL)
    assert authorise(_state([r, *steps]), AUTH)[1] == []


def test_escalations_that_skip_or_narrow_or_hurry_the_pool_are_refused() -> None:
    c = _chains()
    r = c["lima-hr"].next(_raise())
    t0 = r.header.wall_ms
    nai = c["nairobi-dl"]
    ok = [
        nai.raw("alert.escalated", _esc(r.id, 2, POOL), wall_ms=t0 + STEP_MS),  # skip to max_direct
    ]
    bad = [
        nai.raw(
            "alert.escalated", _esc(r.id, 4, POOL), wall_ms=t0 + 9 * STEP_MS
        ),  # skips a pool step
        nai.raw("alert.escalated", _esc(r.id, 3, ["nairobi-dl"]), wall_ms=t0 + 9 * STEP_MS),
        nai.raw("alert.escalated", _esc(r.id, 3, POOL), wall_ms=t0 + STEP_MS + 1000),  # too soon
    ]
    state = _state([r, *ok, *bad])
    v = view(state, AUTH)
    assert v is not None and v.level == 2
    assert sorted(x.reason for x in authorise(state, AUTH)[1]) == ["level", "targets", "too_soon"]


def test_a_pool_step_may_come_early_when_every_claim_lapsed() -> None:
    c = _chains()
    r = c["lima-hr"].next(_raise())
    t0 = r.header.wall_ms
    claim = c["jakarta-pb"].next(AlertClaimed(alert=r.id, until_ms=t0 + 1000))
    esc = [
        c["nairobi-dl"].raw("alert.escalated", _esc(r.id, 2, POOL), wall_ms=t0 + STEP_MS),
        c["nairobi-dl"].raw(
            "alert.escalated",
            _esc(r.id, 3, POOL, EscalationCause.CLAIM_LAPSED),
            wall_ms=t0 + STEP_MS + 5000,
        ),
    ]
    v = view(_state([r, claim, *esc]), AUTH)
    assert v is not None and v.level == 3 and v.claimants == ()


def test_only_claimants_release_and_hand_over_to_responders() -> None:
    c = _chains()
    r = c["lima-hr"].next(_raise())
    claim = c["nairobi-dl"].next(AlertClaimed(alert=r.id))
    stranger = c["jakarta-pb"].next(AlertReleased(alert=r.id, handover_to="jakarta-pb"))
    v = view(_state([r, claim, stranger]), AUTH)
    assert v is not None and v.claimants == ("nairobi-dl",) and v.handover_to is None
    to_company = c["nairobi-dl"].next(AlertReleased(alert=r.id, handover_to="acme-co"))
    state = _state([r, claim, stranger, to_company])
    v = view(state, AUTH)
    assert v is not None and v.claimants == ("nairobi-dl",) and v.handover_to is None
    assert {x.reason for x in authorise(state, AUTH)[1]} == {"not_claimant", "bad_handover"}
    proper = c["nairobi-dl"].next(AlertReleased(alert=r.id, handover_to="jakarta-pb"))
    v = view(join(state, _state([proper])), AUTH)
    assert v is not None and v.claimants == () and v.handover_to == "jakarta-pb"


def test_pledges_answer_asks_addressed_to_the_members_roles() -> None:
    c = _chains()
    asks = [Ask(action=ActionType.BUSINESS_PARTNER_ENGAGEMENT, to=SupporterRole.COMPANY)]
    r = c["lima-hr"].next(_raise(asks))
    good = c["acme-co"].next(
        AlertPledged(alert=r.id, action=ActionType.BUSINESS_PARTNER_ENGAGEMENT)
    )
    unasked = c["acme-co"].next(AlertPledged(alert=r.id, action=ActionType.PUBLIC_STATEMENT))
    not_role = c["nairobi-dl"].next(
        AlertPledged(alert=r.id, action=ActionType.BUSINESS_PARTNER_ENGAGEMENT)
    )
    v = view(_state([r, good, unasked, not_role]), AUTH)
    assert v is not None and [p[:2] for p in v.pledges] == [
        ("acme-co", "business_partner_engagement")
    ]


def test_only_the_origin_updates_and_gives_feedback_and_claimants_resolve() -> None:
    c = _chains()
    r = c["lima-hr"].next(_raise())
    events = [
        r,
        c["nairobi-dl"].next(AlertUpdated(alert=r.id, severity=Severity.MINOR)),
        c["nairobi-dl"].next(AlertFeedback(alert=r.id, feedback=FeedbackType.OUTCOME)),
        c["jakarta-pb"].next(AlertResolved(alert=r.id, outcome=Outcome.SAFE)),
    ]
    v = view(_state(events), AUTH)
    assert v is not None and v.severity is Severity.SEVERE and v.feedback == ()
    assert v.status is AlertStatus.OPEN
    claim = c["jakarta-pb"].next(AlertClaimed(alert=r.id))
    resolved = c["jakarta-pb"].next(AlertResolved(alert=r.id, outcome=Outcome.SAFE))
    v = view(_state([*events, claim, resolved]), AUTH)
    assert v is not None and v.status is AlertStatus.RESOLVED and v.ended_by == "jakarta-pb"


def test_a_member_removed_from_the_roster_no_longer_holds_its_claim() -> None:
    c = _chains()
    r = c["lima-hr"].next(_raise())
    claim = c["nairobi-dl"].next(AlertClaimed(alert=r.id))
    state = _state([r, claim])
    assert view(state, AUTH).claimants == ("nairobi-dl",)  # type: ignore[union-attr]
    without = Authority({o: v for o, v in AUTH.roles.items() if o != "nairobi-dl"}, max_direct=2)
    assert view(state, without).claimants == ()  # type: ignore[union-attr]


@given(st.integers(min_value=0, max_value=2**32))
def test_every_arrival_order_gives_the_same_view(seed: int) -> None:
    c = _chains()
    r = c["lima-hr"].next(_raise())
    t0 = r.header.wall_ms
    events = [
        r,
        c["acme-co"].next(AlertClaimed(alert=r.id)),
        c["nairobi-dl"].raw("alert.escalated", _esc(r.id, 1, ["jakarta-pb"]), wall_ms=t0 + STEP_MS),
        c["acme-co"].raw("alert.escalated", _esc(r.id, 2, ["acme-co"]), wall_ms=t0 + STEP_MS),
        c["jakarta-pb"].next(AlertClaimed(alert=r.id)),
        c["jakarta-pb"].next(AlertReleased(alert=r.id, handover_to="lima-hr")),
        c["nairobi-dl"].raw("alert.escalated", _esc(r.id, 2, POOL), wall_ms=t0 + 2 * STEP_MS),
    ]
    shuffled = events[:]
    random.Random(seed).shuffle(shuffled)
    assert view(_state(shuffled), AUTH) == view(_state(events), AUTH)


def _esc(alert: bytes, level: int, targets: list[str], cause: EscalationCause = DL) -> bytes:
    return msgspec.msgpack.encode(
        AlertEscalated(alert=alert, level=level, targets=targets, cause=cause)
    )
