"""The view of an alert: what it is now, derived from its state by rules every node
applies alike.

Owns `view` (status, effective fields, claimants, level, hand-over, ending) and
the authorisation rules it applies: only the origin updates or cancels; the
origin or a claimant resolves; claims stand until they lapse or are released.
Pure; imports protocol and federation.alerts only.
"""

from __future__ import annotations

from typing import Final

import msgspec

from rrn.federation.alerts import AlertState, AlertStatus, Claimed, Ended
from rrn.federation.authority import Authority, authorise
from rrn.federation.collective import CollectiveView, by_proposal, outcome
from rrn.protocol.alerts import Ask
from rrn.protocol.vocabulary import EscalationCause, IncidentType, Severity, Urgency

__all__ = ["AlertView", "Fields", "active_claimants", "claim_expiries", "derive", "view"]


class AlertView(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An alert as users see it, derived from its state.

    Immutable and acyclic, so the garbage collector need not track it (`gc=False`),
    and its sequences are tuples, which it stops tracking once it has seen them
    hold only strings and numbers: a node catching up holds a few thousand views at
    a time, and each of its collector's full passes walked every one of them and
    their thirteen lists.
    """

    alert: bytes
    origin: str
    status: AlertStatus
    country: str
    subdivision: str | None
    incident_types: tuple[IncidentType, ...]
    severity: Severity
    urgency: Urgency
    asks: tuple[Ask, ...]
    languages: tuple[str, ...]
    pseudonym: str
    exercise: bool
    raised_ms: int
    updated_ms: int
    claimants: tuple[str, ...]
    ended_by: str | None
    end_code: str | None
    #: Step of the escalation ladder the alert has reached (0: the first target).
    level: int = 0
    #: Members of that step, as published by whoever escalated (empty at level 0:
    #: every node computes the first step itself).
    targets: tuple[str, ...] = ()
    #: When the alert reached that level (the earliest signed escalation to it;
    #: the raise time at level 0): the level's deadline counts from here.
    level_since_ms: int = 0
    #: Why the alert reached that level (the earliest escalation to it), if it did.
    level_cause: EscalationCause | None = None
    #: Member a claimant handed the alert to, while nobody has claimed it since.
    handover_to: str | None = None
    #: Every member that ever claimed it (a claimant may resolve).
    claimed_by: tuple[str, ...] = ()
    #: When the first claim was made (the claimant's signed clock), if any.
    first_claim_ms: int | None = None
    #: Actions recorded on the alert: (member, action, channel), in order.
    actions: tuple[tuple[str, str, str], ...] = ()
    #: When the first action was recorded (the actor's signed clock), if any.
    first_action_ms: int | None = None
    #: Members the sealed details are sealed or resealed to (empty: none sealed).
    sealed_to: tuple[str, ...] = ()
    #: Members that may hold the alert at all (empty: the whole network).
    audience: tuple[str, ...] = ()
    #: Pledges: (member, action, by_ms or None, signed time), in order.
    pledges: tuple[tuple[str, str, int | None, int], ...] = ()
    #: Results recorded for actions: (member, action, result), in order.
    results: tuple[tuple[str, str, str], ...] = ()
    #: Feedback the origin gave the defender: (type, signed time), in order.
    feedback: tuple[tuple[str, int], ...] = ()
    #: Collective proposals on the alert and where each stands (PROTOCOL 4.9).
    collectives: tuple[CollectiveView, ...] = ()


class Fields(msgspec.Struct, frozen=True):
    """The routable fields of an alert that updates may change."""

    subdivision: str | None
    incident_types: list[IncidentType]
    severity: Severity
    urgency: Urgency
    asks: list[Ask]
    languages: list[str]


_UPDATABLE: Final = tuple(Fields.__struct_fields__)


def view(state: AlertState, authority: Authority) -> AlertView | None:
    """What the alert is now, or None while its raise has not arrived.

    Only the facts the rules allow (federation/authority.py) count.
    """
    return derive(authorise(state, authority)[0])


def derive(state: AlertState) -> AlertView | None:
    """The view of a state whose facts were already authorised (see `view`)."""
    if state.raised is None:
        return None
    origin = state.raised.pos.org
    body = state.raised.body
    fields = _fields(state)
    claimed_by = sorted({c.pos.org for c in state.claims})
    claimants = active_claimants(state)
    end = _first_end(state, origin, set(claimed_by))
    level, targets, since, cause = _level(state)
    if end is not None:
        status = end.status
    elif claimants:
        status = AlertStatus.CLAIMED
    else:
        status = AlertStatus.ESCALATED if level else AlertStatus.OPEN
    updated_ms = max(p.wall_ms for p in state.positions())
    return AlertView(
        alert=state.alert,
        origin=origin,
        status=status,
        country=body.country,
        subdivision=fields.subdivision,
        incident_types=tuple(fields.incident_types),
        severity=fields.severity,
        urgency=fields.urgency,
        asks=tuple(fields.asks),
        languages=tuple(fields.languages),
        pseudonym=body.pseudonym,
        exercise=body.exercise,
        raised_ms=state.raised.pos.wall_ms,
        updated_ms=updated_ms,
        claimants=tuple(claimants),
        ended_by=end.pos.org if end is not None else None,
        end_code=end.code if end is not None else None,
        level=level,
        targets=tuple(targets),
        level_since_ms=since if level else state.raised.pos.wall_ms,
        level_cause=cause,
        handover_to=_handover(state, claimants),
        claimed_by=tuple(claimed_by),
        first_claim_ms=min((c.pos.wall_ms for c in state.claims), default=None),
        actions=tuple((a.pos.org, str(a.body.action), str(a.body.channel)) for a in state.actions),
        first_action_ms=min((a.pos.wall_ms for a in state.actions), default=None),
        sealed_to=_sealed_to(state),
        audience=tuple(state.raised.audience),
        pledges=tuple(
            (p.pos.org, str(p.body.action), p.body.by_ms, p.pos.wall_ms) for p in state.pledges
        ),
        results=tuple((a.pos.org, str(a.body.action), str(a.body.result)) for a in state.actions),
        feedback=tuple(
            (str(f.body.feedback), f.pos.wall_ms) for f in state.feedback if f.pos.org == origin
        ),
        collectives=tuple(_collectives(state)),
    )


def _sealed_to(state: AlertState) -> tuple[str, ...]:
    assert state.raised is not None
    return tuple(sorted({*state.raised.sealed_to, *(o for s in state.shares for o in s.to)}))


def _fields(state: AlertState) -> Fields:
    """The routable fields as raised, with the origin's updates applied in chain order."""
    assert state.raised is not None
    origin = state.raised.pos.org
    body = state.raised.body
    fields = Fields(**{name: getattr(body, name) for name in _UPDATABLE})
    for upd in state.updates:  # sorted by position: later updates win per field
        if upd.pos.org != origin:
            continue  # only the origin may change its alert
        changes = {n: v for n in _UPDATABLE if (v := getattr(upd.body, n)) is not None}
        sub = changes.get("subdivision")
        if isinstance(sub, str) and not sub.startswith(body.country + "-"):
            del changes["subdivision"]
        fields = msgspec.structs.replace(fields, **changes)
    return fields


def active_claimants(state: AlertState) -> list[str]:
    """Members whose claim stands: not released since, and not lapsed.

    A claim with `until_ms` lapses once an escalation with cause `claim_lapsed`
    was signed at or after that time (nodes publish one only then), so whether a
    claim stands depends on the facts alone, never on the reader's clock.
    Concurrent claims by several members all stand, and all are shown.
    """
    return sorted({c.pos.org for c in _standing(state)})


def claim_expiries(state: AlertState) -> dict[str, int | None]:
    """When each standing claim runs out (None: it does not), by claimant.

    A member with several standing claims holds the alert until the last ends.
    """
    until: dict[str, int | None] = {}
    for claim in _standing(state):
        org, new = claim.pos.org, claim.body.until_ms
        mine = until.get(org, 0)
        until[org] = None if mine is None or new is None else max(mine, new)
    return until


def _standing(state: AlertState) -> list[Claimed]:
    lapses = [
        e.pos.wall_ms for e in state.escalations if e.body.cause is EscalationCause.CLAIM_LAPSED
    ]
    standing = []
    for claim in state.claims:
        org = claim.pos.org
        released = any(
            r.pos.org == org and (r.pos.epoch, r.pos.seq) > (claim.pos.epoch, claim.pos.seq)
            for r in state.releases
        )
        until = claim.body.until_ms
        lapsed = until is not None and any(at >= until for at in lapses)
        if not released and not lapsed:
            standing.append(claim)
    return standing


def _level(state: AlertState) -> tuple[int, list[str], int, EscalationCause | None]:
    if not state.escalations:
        return 0, [], 0, None
    top = max(e.body.level for e in state.escalations)
    at_top = [e for e in state.escalations if e.body.level == top]
    targets = {t for e in at_top for t in e.body.targets}
    first = min(at_top, key=lambda e: (e.pos.wall_ms, e.pos.id))
    return top, sorted(targets), first.pos.wall_ms, first.body.cause


def _handover(state: AlertState, claimants: list[str]) -> str | None:
    """The member named by the latest hand-over, while nobody holds the alert."""
    if claimants or not state.releases:
        return None
    handed = [r for r in state.releases if r.body.handover_to is not None]
    latest = max(handed, key=lambda r: (r.pos.wall_ms, r.pos.id), default=None)
    return latest.body.handover_to if latest is not None else None


def _first_end(state: AlertState, origin: str, claimants: set[str]) -> Ended | None:
    """The earliest authorised ending: the origin resolves or cancels, a claimant resolves."""
    allowed = [
        e
        for e in state.ends
        if e.pos.org == origin
        or (e.status is AlertStatus.RESOLVED and e.pos.org in claimants)
        or e.code == "checked_in"  # made by authorise from an allowed check-in only
    ]
    return min(allowed, key=lambda e: (e.pos.wall_ms, e.pos.id), default=None)


def _collectives(state: AlertState) -> list[CollectiveView]:
    if not state.collective:
        return []
    groups = by_proposal(state.collective)
    return [outcome(p, groups[p.proposal])[0] for p in state.collective if p.kind == "proposed"]
