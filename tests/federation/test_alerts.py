"""Alert state: order of arrival never matters; the view applies the rules."""

from __future__ import annotations

import functools
import random

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from rrn.federation.alert_view import claim_expiries, view
from rrn.federation.alerts import AlertState, AlertStatus, fact, join
from rrn.federation.authority import Authority
from rrn.protocol.alerts import (
    AlertActed,
    AlertCancelled,
    AlertClaimed,
    AlertEscalated,
    AlertPledged,
    AlertReleased,
    AlertResolved,
    AlertTombstoned,
    AlertUpdated,
    Ask,
)
from rrn.protocol.envelope import Event
from rrn.protocol.kinds import AlertPayload, decode_payload
from rrn.protocol.vocabulary import (
    ActionType,
    CancelReason,
    EscalationCause,
    Outcome,
    Severity,
    SupporterRole,
    TombstoneReason,
    Urgency,
)
from tests.support import Chain, network, raised

TN = network("lima-hr", "nairobi-dl", "jakarta-pb")
AUTH = Authority.of(TN.roster)
DEADLINE = EscalationCause.DEADLINE
LAPSED = EscalationCause.CLAIM_LAPSED
CONSENT = TombstoneReason.CONSENT_WITHDRAWN


def _state(events: list[Event]) -> AlertState:
    facts = [fact(e.header, e.id, _payload(e)) for e in events]
    return functools.reduce(join, facts)


def _payload(e: Event) -> AlertPayload:
    assert e.payload is not None
    payload = decode_payload(e.header.kind, e.payload)
    assert isinstance(payload, AlertPayload)
    return payload


def _story() -> list[Event]:
    lima, nairobi, jakarta = (Chain(TN, o) for o in ("lima-hr", "nairobi-dl", "jakarta-pb"))
    r = lima.next(raised())
    return [
        r,
        lima.next(AlertUpdated(alert=r.id, severity=Severity.EXTREME)),
        nairobi.next(AlertClaimed(alert=r.id)),
        jakarta.next(AlertClaimed(alert=r.id)),
        lima.next(AlertUpdated(alert=r.id, urgency=Urgency.DAYS)),
        nairobi.next(AlertUpdated(alert=r.id, severity=Severity.MINOR)),  # not the origin
        nairobi.next(AlertResolved(alert=r.id, outcome=Outcome.RELEASED)),
    ]


def test_story_view() -> None:
    v = view(_state(_story()), AUTH)
    assert v is not None
    assert v.status is AlertStatus.RESOLVED
    assert v.severity is Severity.EXTREME, "only the origin's updates apply"
    assert v.urgency is Urgency.DAYS, "later updates keep earlier changes to other fields"
    assert v.claimants == ("jakarta-pb", "nairobi-dl")
    assert (v.ended_by, v.end_code) == ("nairobi-dl", "released")


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), dup=st.integers(min_value=0, max_value=6))
def test_any_arrival_order_gives_the_same_state(seed: int, dup: int) -> None:
    events = _story()
    expected = _state(events)
    shuffled = [*events, events[dup]]  # a duplicate delivery too
    random.Random(seed).shuffle(shuffled)
    assert _state(shuffled) == expected


@settings(max_examples=100, deadline=None)
@given(split=st.integers(min_value=1, max_value=6), seed=st.integers(min_value=0, max_value=999))
def test_join_of_partial_states_is_the_whole(split: int, seed: int) -> None:
    events = _story()
    random.Random(seed).shuffle(events)
    left, right = _state(events[:split]), _state(events[split:])
    assert join(left, right) == join(right, left) == _state(events)
    assert join(left, left) == left


def test_claim_before_raise_is_kept_and_hidden_until_the_raise() -> None:
    events = _story()
    claim_only = _state([events[2]])
    assert view(claim_only, AUTH) is None
    v = view(join(claim_only, _state([events[0]])), AUTH)
    assert v is not None and v.claimants == ("nairobi-dl",)


def test_only_origin_cancels_and_non_claimants_cannot_resolve() -> None:
    lima, nairobi = Chain(TN, "lima-hr"), Chain(TN, "nairobi-dl")
    r = lima.next(raised())
    stranger_cancel = nairobi.next(AlertCancelled(alert=r.id, reason=CancelReason.DUPLICATE))
    stranger_resolve = nairobi.next(AlertResolved(alert=r.id, outcome=Outcome.SAFE))
    v = view(_state([r, stranger_cancel, stranger_resolve]), AUTH)
    assert v is not None and v.status is AlertStatus.OPEN
    own_cancel = lima.next(AlertCancelled(alert=r.id, reason=CancelReason.RAISED_IN_ERROR))
    v = view(_state([r, stranger_cancel, own_cancel]), AUTH)
    assert v is not None and v.status is AlertStatus.CANCELLED and v.ended_by == "lima-hr"


def test_subdivision_outside_the_country_is_not_applied() -> None:
    lima = Chain(TN, "lima-hr")
    r = lima.next(raised(country="PE"))
    bad = lima.next(AlertUpdated(alert=r.id, subdivision="KE-30"))
    good = lima.next(AlertUpdated(alert=r.id, subdivision="PE-LOR"))
    assert view(_state([r, bad]), AUTH).subdivision is None  # type: ignore[union-attr]
    assert view(_state([r, bad, good]), AUTH).subdivision == "PE-LOR"  # type: ignore[union-attr]


def _escalation_story() -> list[Event]:
    """Claims with expiry, a lapse, duplicate escalations from two nodes, a hand-over."""
    lima, nairobi, jakarta = (Chain(TN, o) for o in ("lima-hr", "nairobi-dl", "jakarta-pb"))
    r = lima.next(raised())
    t0 = r.header.wall_ms
    return [
        r,
        nairobi.next(AlertEscalated(alert=r.id, level=1, targets=["jakarta-pb"], cause=DEADLINE)),
        jakarta.next(AlertEscalated(alert=r.id, level=1, targets=["nairobi-dl"], cause=DEADLINE)),
        jakarta.next(AlertClaimed(alert=r.id, until_ms=t0 + 500)),  # lapses before 2nd
        nairobi.next(AlertEscalated(alert=r.id, level=2, targets=["lima-hr"], cause=LAPSED)),
        nairobi.next(AlertClaimed(alert=r.id)),
        nairobi.next(AlertReleased(alert=r.id, handover_to="lima-hr")),
        jakarta.next(AlertActed(alert=r.id, action=ActionType.LEGAL_AID)),
    ]


def test_escalations_merge_claims_lapse_and_hand_overs_show() -> None:
    events = _escalation_story()
    v = view(_state(events[:3]), AUTH)
    assert v is not None and v.status is AlertStatus.ESCALATED
    assert (v.level, v.targets) == (1, ("jakarta-pb", "nairobi-dl")), "both nodes' targets shown"
    assert v.level_since_ms == events[1].header.wall_ms
    claimed = view(_state(events[:4]), AUTH)
    assert claimed is not None and claimed.status is AlertStatus.CLAIMED
    lapsed = view(_state(events[:5]), AUTH)
    assert lapsed is not None and lapsed.claimants == () and lapsed.status is AlertStatus.ESCALATED
    assert lapsed.claimed_by == ("jakarta-pb",), "a lapsed claimant still shows, and may resolve"
    assert lapsed.level_cause is LAPSED
    assert claim_expiries(_state(events[:4])) == {"jakarta-pb": events[0].header.wall_ms + 500}
    assert claim_expiries(_state(events[:5])) == {}
    both = view(_state(events[:6]), AUTH)
    assert both is not None and both.claimants == ("nairobi-dl",)
    assert claim_expiries(_state(events[:6])) == {"nairobi-dl": None}
    handed = view(_state(events[:7]), AUTH)
    assert handed is not None and handed.claimants == () and handed.handover_to == "lima-hr"
    assert handed.first_claim_ms == events[3].header.wall_ms
    acted = view(_state(events), AUTH)
    assert acted is not None and acted.actions == (("jakarta-pb", "legal_aid", "private"),)
    assert acted.first_action_ms == events[-1].header.wall_ms


def test_concurrent_claims_are_all_visible() -> None:
    lima, nairobi, jakarta = (Chain(TN, o) for o in ("lima-hr", "nairobi-dl", "jakarta-pb"))
    r = lima.next(raised())
    events = [r, nairobi.next(AlertClaimed(alert=r.id)), jakarta.next(AlertClaimed(alert=r.id))]
    for order in (events, events[::-1]):
        v = view(_state(order), AUTH)
        assert v is not None and v.claimants == ("jakarta-pb", "nairobi-dl")


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), dup=st.integers(min_value=0, max_value=7))
def test_escalation_state_is_the_same_in_any_arrival_order(seed: int, dup: int) -> None:
    events = _escalation_story()
    expected = _state(events)
    shuffled = [*events, events[dup]]
    random.Random(seed).shuffle(shuffled)
    assert _state(shuffled) == expected
    assert view(_state(shuffled), AUTH) == view(expected, AUTH)


def _tombstone_story() -> tuple[list[Event], Event]:
    lima, nairobi = Chain(TN, "lima-hr"), Chain(TN, "nairobi-dl")
    asks = [Ask(action=ActionType.LEGAL_AID, to=SupporterRole.NGO)]
    r = lima.next(msgspec.structs.replace(raised(), asks=asks))
    events = [
        r,
        nairobi.next(AlertClaimed(alert=r.id)),
        nairobi.next(AlertPledged(alert=r.id, action=ActionType.LEGAL_AID)),
        nairobi.next(AlertTombstoned(alert=r.id, reason=CONSENT, events=[r.id])),  # not origin
    ]
    tomb = lima.next(AlertTombstoned(alert=r.id, reason=CONSENT, events=[e.id for e in events]))
    return [*events, tomb], tomb


@given(seed=st.integers(min_value=0, max_value=2**32), dup=st.integers(min_value=0, max_value=4))
def test_the_origins_tombstone_erases_the_alert_in_any_arrival_order(seed: int, dup: int) -> None:
    events, tomb = _tombstone_story()
    shuffled = [*events, events[dup]]
    random.Random(seed).shuffle(shuffled)
    state = _state(shuffled)
    assert state == _state(events)
    assert state.erased == "lima-hr" and view(state, AUTH) is None
    assert state.raised is None and not state.claims and not state.pledges, "nothing else kept"
    assert tomb.id in {t.pos.id for t in state.tombstones}


def test_a_tombstone_by_anyone_but_the_origin_changes_nothing() -> None:
    events, _ = _tombstone_story()
    state = _state(events[:-1])
    assert state.erased is None
    v = view(state, AUTH)
    assert (
        v is not None
        and v.claimants == ("nairobi-dl",)
        and v.pledges[0][:2]
        == (
            "nairobi-dl",
            "legal_aid",
        )
    )
