"""Missed check-ins as alerts: the facts the check-in events add to alert states.

Owns how a check-in plan (protocol/checkins.py) and the check-ins, misses and end
that refer to it become facts of alert states, so the projection's one rule,
merge by union, gives every node the same alerts in any order of arrival:

- a plan is a fact of a state of its own (keyed by the plan id) that no one views;
- the alert of a missed slot has a derived id (`missed_alert_id`); every
  `checkin.missed` for that slot is a fact of it, whoever signed it, and its raise
  is made from the plan alone (same bytes at every node): the plan's alert, at the
  slot's deadline, from the plan's origin;
- a check-in for a slot is a fact of that slot's alert (it ends it, once allowed);
- the plan's end is a fact of the plan and of each slot alert it reaches.

What the rules allow of these facts is federation/authority.py's. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import msgspec

from rrn.federation.alerts import AlertState, PlanFact, PlanSlot, Pos, Raised, recipients
from rrn.federation.authority import Authority, authorise
from rrn.protocol.checkins import (
    CheckinEnded,
    CheckinMissed,
    CheckinPlanned,
    CheckinRecorded,
    commitment,
    missed_alert_id,
)
from rrn.protocol.envelope import Header
from rrn.protocol.kinds import CheckinPayload

__all__ = [
    "alarm_raised",
    "checked_in",
    "checkin_facts",
    "ended_at",
    "over_at",
    "plan_fact",
    "slot_alerts",
    "slot_raise",
]


def plan_fact(pos: Pos, plan: CheckinPlanned, audience: tuple[str, ...]) -> PlanFact:
    """A plan as a fact: without its sealed blobs (they stay in the event)."""
    body = msgspec.structs.replace(
        plan, alert=msgspec.structs.replace(plan.alert, sealed=None), duress=b"-"
    )
    return PlanFact(pos, body, audience, tuple(recipients(plan.alert.sealed)))


def slot_alerts(plan: bytes, slots: int) -> list[tuple[bytes, int, bool]]:
    """Every alert a plan of `slots` slots can raise: (alert id, slot, duress)."""
    return [(missed_alert_id(plan, k, duress=d), k, d) for k in range(slots) for d in (False, True)]


def slot_raise(plan: PlanFact, slot: int, *, duress: bool) -> Raised:
    """The raise of a slot's alert, from the plan alone: alike at every node."""
    body = plan.body
    deadline = body.slots[slot] + body.grace_ms
    alert = missed_alert_id(plan.pos.id, slot, duress=duress)
    pos = Pos(plan.pos.org, plan.pos.epoch, plan.pos.seq, deadline, alert)
    codes = tuple(body.codes[slot])
    where = PlanSlot(plan.pos.id, slot, deadline, codes, duress, plan.pos.wall_ms)
    audience = (plan.pos.org,) if duress else plan.audience
    return Raised(pos, body.alert, plan.sealed_to, audience, where)


def checkin_facts(
    header: Header,
    eid: bytes,
    payload: CheckinPayload,
    audience: tuple[str, ...],
    *,
    plan: AlertState | None,
    exists: Callable[[bytes], bool],
) -> list[AlertState]:
    """The single-fact states one check-in event gives. `plan` is the state of the
    plan it refers to (None if not held yet: its raise joins later, when the plan
    arrives); `exists` says whether an alert state is held (a plan or its end reaches
    only the slot alerts already held)."""
    pos = Pos(header.origin, header.epoch, header.seq, header.wall_ms, eid)
    match payload:
        case CheckinPlanned():
            fact = plan_fact(pos, payload, audience)
            held = AlertState(eid, plan=fact)
            return [held, *_raises(held, exists)]
        case CheckinEnded():
            if plan is not None and plan.plan is not None and pos.org != plan.plan.pos.org:
                return []  # only the origin ends its plan: another's end is no fact of it
            found = [AlertState(payload.plan, plan_ends=(pos,))]
            if plan is not None and plan.plan is not None:
                for alert, _, _ in slot_alerts(payload.plan, len(plan.plan.body.slots)):
                    if exists(alert):
                        found.append(AlertState(alert, plan_ends=(pos,)))
            return found
        case CheckinMissed():
            alert = missed_alert_id(payload.plan, payload.slot, duress=payload.duress is not None)
            if payload.duress is False:  # the origin's acknowledgement: raises nothing
                single = AlertState(alert, checkins=((pos, ""),))
            else:
                single = AlertState(alert, misses=(pos,))
        case CheckinRecorded():
            alert = missed_alert_id(payload.plan, payload.slot)
            single = AlertState(alert, checkins=((pos, payload.code or ""),))
    return [_with_plan(single, plan, payload.slot, alert)]


def _with_plan(single: AlertState, plan: AlertState | None, slot: int, alert: bytes) -> AlertState:
    """A slot alert's fact with the plan's raise and end, once the plan is held."""
    if plan is None or plan.plan is None or slot >= len(plan.plan.body.slots):
        return single  # a slot the plan does not have is never raised
    duress = alert != missed_alert_id(plan.plan.pos.id, slot)
    raised = slot_raise(plan.plan, slot, duress=duress)
    ends = tuple(p for p in plan.plan_ends if p.org == plan.plan.pos.org)
    return msgspec.structs.replace(single, raised=raised, plan_ends=ends)


def _raises(plan: AlertState, exists: Callable[[bytes], bool]) -> list[AlertState]:
    """The raises of the slot alerts that arrived before their plan."""
    assert plan.plan is not None
    found = []
    for alert, slot, duress in slot_alerts(plan.alert, len(plan.plan.body.slots)):
        if exists(alert):
            found.append(AlertState(alert, raised=slot_raise(plan.plan, slot, duress=duress)))
    return found


def checked_in(
    plan: PlanFact, slot: int, state: AlertState | None, roles: Collection[str]
) -> list[tuple[Pos, str]]:
    """The check-ins for `slot` the rules allow (docs/PROTOCOL.md 4.7), earliest first:
    from the origin, or from a current member (`roles`) within the plan's audience
    with one of the slot's two codes."""
    if state is None:
        return []
    codes = plan.body.codes[slot]
    found = []
    for pos, code in state.checkins:
        within = pos.org in roles and (not plan.audience or pos.org in plan.audience)
        if within and ((not code and pos.org == plan.pos.org) or commitment(code) in codes):
            found.append((pos, code))
    return sorted(found, key=lambda c: (c[0].wall_ms, c[0].id))


def over_at(plan: AlertState) -> int:
    """When a plan is over: its origin's end, or its last slot's deadline if sooner."""
    assert plan.plan is not None
    last = plan.plan.body.slots[-1] + plan.plan.body.grace_ms
    ended = ended_at(plan)
    return last if ended is None else min(last, ended)


def ended_at(plan: AlertState) -> int | None:
    """When the plan's origin ended it (its earliest `checkin.ended`), if it did."""
    assert plan.plan is not None
    return min((p.wall_ms for p in plan.plan_ends if p.org == plan.plan.pos.org), default=None)


def alarm_raised(state: AlertState | None, authority: Authority) -> bool:
    """Whether a slot's alert exists: a miss the rules allow is held (a refused one,
    too early or from outside the audience, raises nothing, and must not stop the
    members from publishing the real one)."""
    if state is None or not state.misses or state.raised is None:
        return False
    return authorise(state, authority)[0].raised is not None
