"""Alert state: order of arrival never matters; the view applies the rules."""

from __future__ import annotations

import functools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from federation.alerts import AlertState, AlertStatus, fact, join, view
from protocol.alerts import (
    AlertCancelled,
    AlertClaimed,
    AlertResolved,
    AlertUpdated,
    CancelReason,
    Outcome,
    Severity,
    Urgency,
)
from protocol.envelope import Event
from protocol.kinds import AlertPayload, decode_payload
from tests.support import Chain, network, raised

TN = network("lima-hr", "nairobi-dl", "jakarta-pb")


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
    v = view(_state(_story()))
    assert v is not None
    assert v.status is AlertStatus.RESOLVED
    assert v.severity is Severity.EXTREME, "only the origin's updates apply"
    assert v.urgency is Urgency.DAYS, "later updates keep earlier changes to other fields"
    assert v.claimants == ["jakarta-pb", "nairobi-dl"]
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
    assert view(claim_only) is None
    v = view(join(claim_only, _state([events[0]])))
    assert v is not None and v.claimants == ["nairobi-dl"]


def test_only_origin_cancels_and_non_claimants_cannot_resolve() -> None:
    lima, nairobi = Chain(TN, "lima-hr"), Chain(TN, "nairobi-dl")
    r = lima.next(raised())
    stranger_cancel = nairobi.next(AlertCancelled(alert=r.id, reason=CancelReason.DUPLICATE))
    stranger_resolve = nairobi.next(AlertResolved(alert=r.id, outcome=Outcome.SAFE))
    v = view(_state([r, stranger_cancel, stranger_resolve]))
    assert v is not None and v.status is AlertStatus.OPEN
    own_cancel = lima.next(AlertCancelled(alert=r.id, reason=CancelReason.RAISED_IN_ERROR))
    v = view(_state([r, stranger_cancel, own_cancel]))
    assert v is not None and v.status is AlertStatus.CANCELLED and v.ended_by == "lima-hr"


def test_subdivision_outside_the_country_is_not_applied() -> None:
    lima = Chain(TN, "lima-hr")
    r = lima.next(raised(country="PE"))
    bad = lima.next(AlertUpdated(alert=r.id, subdivision="KE-30"))
    good = lima.next(AlertUpdated(alert=r.id, subdivision="PE-LOR"))
    assert view(_state([r, bad])).subdivision is None  # type: ignore[union-attr]
    assert view(_state([r, bad, good])).subdivision == "PE-LOR"  # type: ignore[union-attr]
