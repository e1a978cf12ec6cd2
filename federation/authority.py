"""Who may change an alert, and how: the rules every node applies to an alert's facts.

Owns the authorisation of every transition of an alert (docs/PROTOCOL.md 4.3b).
A fact that breaks them stays in its signer's chain as evidence and changes no
view. The rules read the alert's own facts and the current roster, nothing a
node sees alone, so every node that holds the same facts and roster authorises
the same ones:

- the origin alone updates, cancels, tells the defender (feedback) and deletes;
- a responder of the roster within the alert's audience may claim; only a
  claimant releases its claim or hands the alert over (to such a responder);
- the origin or a claimant resolves, and shares the sealed details;
- members within the audience record actions; a member pledges only an action
  an ask addresses to one of its roles;
- an escalation is signed by a member within the audience; its level follows
  the level reached (one up, or a skip over the direct steps the policy
  allows); a direct step names one member of the pool, a pool step the whole
  pool (the responders within the audience); a pool step past the direct steps
  comes no sooner than the step time after the level before it, unless every
  claim lapsed.

Pure; imports protocol and federation.alerts only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, NamedTuple, TypeVar

import msgspec

from rrn.federation.alerts import (
    Acted,
    AlertState,
    AlertStatus,
    Claimed,
    CollectiveFact,
    Ended,
    Escalated,
    Pledged,
    Pos,
    Released,
    Shared,
    Updated,
)
from rrn.federation.collective import by_proposal, judge, outcome
from rrn.protocol.alerts import Ask
from rrn.protocol.checkins import commitment
from rrn.protocol.policy import NetworkPolicy
from rrn.protocol.roster import Role, Roster
from rrn.protocol.vocabulary import EscalationCause, SupporterRole, Urgency

__all__ = [
    "CHECKED_IN",
    "PLAN_SPAN_MS",
    "Authority",
    "Refused",
    "addressed_to",
    "answers",
    "authorise",
]

#: The kinds of supporter each roster role answers for.
_ANSWERS: Final = {
    Role.RESPONDER: {SupporterRole.NGO, SupporterRole.UN},
    Role.OBSERVER: {SupporterRole.NGO, SupporterRole.UN},
    Role.EMBASSY: {SupporterRole.EMBASSY},
    Role.COMPANY: {SupporterRole.COMPANY},
    Role.INVESTOR: {SupporterRole.INVESTOR},
}
#: How far after its plan a slot's deadline may lie and still raise an alert.
PLAN_SPAN_MS: Final = 366 * 86_400_000
#: How a check-in ends the alert of its missed slot (never a cancel reason anyone signs).
CHECKED_IN: Final = "checked_in"
_DEFAULT_STEPS: Final = {Urgency.IMMEDIATE: 600, Urgency.DAYS: 7200, Urgency.WEEKS: 43200}


def answers(roles: Iterable[Role]) -> set[SupporterRole]:
    """The kinds of supporter a member with these roles answers for (and `any`)."""
    found = {SupporterRole.ANY}
    for role in roles:
        found |= _ANSWERS[role]
    return found


def addressed_to(ask: Ask, roles: Iterable[Role]) -> bool:
    """Whether a member with these roles is asked."""
    return ask.to in answers(roles)


@dataclass(frozen=True)
class Authority:
    """What the rules need of the roster: its current members' roles, and the policy."""

    roles: Mapping[str, frozenset[Role]]
    max_direct: int = 3
    step_s: Mapping[Urgency, int] = field(default_factory=lambda: dict(_DEFAULT_STEPS))

    @classmethod
    def of(cls, roster: Roster) -> Authority:
        """The authority a roster gives."""
        roles = {m.org: frozenset(m.roles) for m in roster.members}
        policy: NetworkPolicy | None = roster.policy
        if policy is None:
            return cls(roles)
        steps = {
            Urgency.IMMEDIATE: policy.immediate_s,
            Urgency.DAYS: policy.days_s,
            Urgency.WEEKS: policy.weeks_s,
        }
        return cls(roles, policy.max_direct, steps)

    @classmethod
    def anyone(cls, orgs: Iterable[str]) -> Authority:
        """Every org a responder (tests and tools that have no roster at hand)."""
        return cls({o: frozenset({Role.RESPONDER}) for o in orgs})


class Refused(NamedTuple):
    """A fact the rules do not allow: where it came from, what it is, and why."""

    pos: Pos
    kind: str
    reason: str


F = TypeVar("F", Updated, Claimed, Ended, Escalated, Released, Acted, Shared, Pledged)


class _Check:
    """The rules applied to one alert's state."""

    def __init__(self, state: AlertState, authority: Authority) -> None:
        assert state.raised is not None
        self.state = state
        self.authority = authority
        self.origin = state.raised.pos.org
        self.audience = set(state.raised.audience)
        self.refused: list[Refused] = []

    def member(self, org: str) -> bool:
        return org in self.authority.roles

    def within(self, org: str) -> bool:
        return self.member(org) and (not self.audience or org in self.audience)

    def responder(self, org: str) -> bool:
        return self.within(org) and Role.RESPONDER in self.authority.roles[org]

    def pool(self) -> set[str]:
        """Who the fallback pool asks: every responder within the audience (as
        federation/escalation.py's ladder computes it)."""
        return {org for org in self.authority.roles if self.responder(org)}

    def keep(
        self, facts: tuple[F, ...], kind: str, rule: Callable[[F], str | None]
    ) -> tuple[F, ...]:
        if not facts:
            return facts
        kept = []
        for f in facts:
            why = rule(f)
            if why is None:
                kept.append(f)
            else:
                self.refused.append(Refused(f.pos, kind, why))
        return tuple(kept)


def authorise(state: AlertState, authority: Authority) -> tuple[AlertState, list[Refused]]:
    """The state with only the facts the rules allow, and those they refuse (and why).

    A state whose raise has not arrived is returned as it is: nothing can be
    judged before the origin and the audience are known.
    """
    if state.raised is None or state.erased is not None:
        return state, []
    c = _Check(state, authority)
    if state.raised.slot is not None:
        state = c.state = _slot_rules(c, state)
        if state.raised is None:  # no miss stands: there is no alert (yet)
            return state, c.refused
    assert state.raised is not None
    origin_only = lambda f: None if f.pos.org == c.origin else "not_origin"  # noqa: E731
    updates = c.keep(state.updates, "updated", origin_only)
    claims = c.keep(state.claims, "claimed", lambda f: _claim_rule(c, f.pos.org))
    claimed = {f.pos.org for f in claims}
    releases = c.keep(state.releases, "released", lambda f: _release_rule(c, claims, f))
    shares = c.keep(
        state.shares,
        "shared",
        lambda f: None if f.pos.org == c.origin or f.pos.org in claimed else "not_claimant",
    )
    ends = c.keep(state.ends, "ended", lambda f: _end_rule(c, claimed, f))
    actions = c.keep(state.actions, "acted", lambda f: None if c.within(f.pos.org) else _out(c, f))
    asks = [*state.raised.body.asks, *(a for u in updates for a in u.body.asks or ())]
    pledges = c.keep(state.pledges, "pledged", lambda f: _pledge_rule(c, asks, f))
    feedback = tuple(f for f in state.feedback if f.pos.org == c.origin)
    c.refused += [
        Refused(f.pos, "feedback", "not_origin") for f in state.feedback if f.pos.org != c.origin
    ]
    urgency = next(
        (u.body.urgency for u in reversed(updates) if u.body.urgency is not None),
        state.raised.body.urgency,
    )
    escalations = _escalations(c, state.escalations, urgency, claims)
    collective = _collective(c, state.collective)
    if not c.refused:  # everything allowed: the state as it is (or as _slot_rules left
        # it), the joins of collective actions with their members' roles
        return (msgspec.structs.replace(state, collective=collective) if collective else state), []
    allowed = msgspec.structs.replace(
        state,
        updates=updates,
        claims=claims,
        releases=releases,
        shares=shares,
        ends=ends,
        actions=actions,
        pledges=pledges,
        feedback=feedback,
        escalations=escalations,
        collective=collective,
    )
    return allowed, c.refused


def _slot_rules(c: _Check, state: AlertState) -> AlertState:
    """The alert of a missed check-in (docs/PROTOCOL.md 4.7): a miss counts when it
    is signed within the plan's audience at or after the slot's deadline, and the
    origin had not ended the plan before it; an allowed check-in for the slot ends
    the alert. The duress alert's miss is the origin's alone, at any time, and the
    alert is raised at its earliest; no check-in ends it. With no miss standing the
    state has no raise, so no view."""
    raised = state.raised
    assert raised is not None and raised.slot is not None
    slot = raised.slot
    ended = any(p.org == c.origin and p.wall_ms < slot.deadline_ms for p in state.plan_ends)

    def miss_rule(p: Pos) -> str | None:
        if slot.duress and p.org != c.origin:
            return "not_origin"
        if not c.within(p.org):
            return "outside_audience" if c.member(p.org) else "not_a_member"
        if p.wall_ms < slot.deadline_ms and not slot.duress:
            return "too_soon"
        if not slot.planned_ms < slot.deadline_ms <= slot.planned_ms + PLAN_SPAN_MS:
            return "slot_out_of_plan"
        return "plan_ended" if ended else None

    misses = [p for p in state.misses if _judge(c, p, "missed", miss_rule(p))]
    ends = state.ends
    if not slot.duress:
        checked = [
            p
            for p, code in state.checkins
            if _judge(c, p, "checkin", _code_rule(c, slot.codes, p, code))
        ]
        ends += tuple(Ended(p, AlertStatus.CANCELLED, CHECKED_IN) for p in checked)
    if not misses:
        return msgspec.structs.replace(state, raised=None)
    if slot.duress:  # raised when the origin saw the code, not at the deadline
        at = msgspec.structs.replace(raised.pos, wall_ms=min(p.wall_ms for p in misses))
        raised = msgspec.structs.replace(raised, pos=at)
    return msgspec.structs.replace(
        state, raised=raised, misses=tuple(misses), checkins=(), ends=ends
    )


def _judge(c: _Check, pos: Pos, kind: str, why: str | None) -> bool:
    if why is not None:
        c.refused.append(Refused(pos, kind, why))
    return why is None


def _code_rule(c: _Check, codes: tuple[bytes, ...], p: Pos, code: str) -> str | None:
    """A check-in counts from the origin, or from within the audience with one of the
    slot's codes (either: nobody but the origin may tell the duress code apart)."""
    if not c.within(p.org):
        return "outside_audience" if c.member(p.org) else "not_a_member"
    if not code:
        return None if p.org == c.origin else "no_code"
    return None if commitment(code) in codes else "bad_code"


def _collective(c: _Check, facts: tuple[CollectiveFact, ...]) -> tuple[CollectiveFact, ...]:
    """The collective facts the rules allow (federation/collective.py), signatures by
    members not committed struck out; the rest counted as refused."""
    if not facts:
        return facts
    roles = {o: frozenset(str(r) for r in rs) for o, rs in c.authority.roles.items()}
    allowed, refused = judge(facts, within=c.within, roles=roles)
    groups = by_proposal(allowed)
    for p in (f for f in allowed if f.kind == "proposed"):
        refused += outcome(p, groups[p.proposal])[1]
    struck = {f.pos for f, _ in refused}
    c.refused += [Refused(f.pos, "collective", why) for f, why in refused]
    return tuple(f for f in allowed if f.pos not in struck)


def _out(c: _Check, f: Acted | Pledged) -> str:
    return "not_a_member" if not c.member(f.pos.org) else "outside_audience"


def _claim_rule(c: _Check, org: str) -> str | None:
    if not c.member(org):
        return "not_a_member"
    if not c.within(org):
        return "outside_audience"
    return None if c.responder(org) else "not_a_responder"


def _release_rule(c: _Check, claims: tuple[Claimed, ...], f: Released) -> str | None:
    mine = (f.pos.epoch, f.pos.seq)
    if not any(k.pos.org == f.pos.org and (k.pos.epoch, k.pos.seq) < mine for k in claims):
        return "not_claimant"
    to = f.body.handover_to
    return None if to is None or c.responder(to) else "bad_handover"


def _end_rule(c: _Check, claimed: set[str], f: Ended) -> str | None:
    if f.pos.org == c.origin or f.code == CHECKED_IN:  # the latter made by _slot_rules only
        return None
    if f.status is AlertStatus.RESOLVED and f.pos.org in claimed:
        return None
    return "not_origin"


def _pledge_rule(c: _Check, asks: list[Ask], f: Pledged) -> str | None:
    if not c.within(f.pos.org):
        return _out(c, f)
    roles = c.authority.roles[f.pos.org]
    if any(a.action is f.body.action and addressed_to(a, roles) for a in asks):
        return None
    return "not_asked"


def _escalations(
    c: _Check, facts: tuple[Escalated, ...], urgency: Urgency, claims: tuple[Claimed, ...]
) -> tuple[Escalated, ...]:
    """The escalations that follow one another as the rules allow, level by level."""
    assert c.state.raised is not None
    if not facts:
        return ()
    pool = c.pool()
    step_ms = c.authority.step_s[urgency] * 1000
    reached, since = 0, c.state.raised.pos.wall_ms
    kept: list[Escalated] = []
    for level in sorted({e.body.level for e in facts}):
        ok = []
        for e in (e for e in facts if e.body.level == level):
            why = _escalation_rule(c, e, pool, reached, due_ms=since + step_ms, claims=claims)
            if why is None:
                ok.append(e)
            else:
                c.refused.append(Refused(e.pos, "escalated", why))
        if ok:
            kept += ok
            reached, since = level, min(e.pos.wall_ms for e in ok)
    return tuple(sorted(kept, key=lambda e: e.pos))


def _escalation_rule(
    c: _Check,
    e: Escalated,
    pool: set[str],
    reached: int,
    *,
    due_ms: int,
    claims: tuple[Claimed, ...],
) -> str | None:
    level, targets = e.body.level, set(e.body.targets)
    if not c.within(e.pos.org):
        return "outside_audience" if c.member(e.pos.org) else "not_a_member"
    if level > max(reached + 1, c.authority.max_direct):
        return "level"
    direct = len(targets) == 1 and targets <= pool
    if not (targets == pool or (direct and level < c.authority.max_direct)):
        return "targets"
    if level > c.authority.max_direct and e.pos.wall_ms < due_ms:
        lapsed = e.body.cause is EscalationCause.CLAIM_LAPSED and any(
            k.body.until_ms is not None and k.body.until_ms <= e.pos.wall_ms for k in claims
        )
        if not lapsed:
            return "too_soon"
    return None
