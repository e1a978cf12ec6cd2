"""The escalation ladder of an alert, and when it must climb: the same on every node.

Owns routing without a dispatcher. From an alert (country, languages, asks,
urgency, raise time), the members' shifts (federation/coverage.py) and the
roster, every node computes the same ladder:

- direct steps, one member each: the members on duty at the raise time whose
  shifts cover the alert's country, best match first — an exact country before a
  catch-all region, more of the needed capabilities, a shared language — ties
  broken by a hash of (alert id, org) so load spreads evenly and identically;
  members that cover the country but not the alert's languages come after those
  that do;
- then the fallback pool: every responder (supporters pledge and act; they do
  not claim), notified together, again and again, until someone claims the alert. An alert raised in
  a gap (nobody on duty for its country) starts in the pool. Nothing is dropped.

Each step lasts the urgency's step time (policy). `next_escalation` says, for a
view of the alert at a given instant, whether a node should publish the next
step now: the step's time ran out unclaimed, its members stopped sending
heartbeats (skipped at once), or every claim lapsed. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from rrn.federation.alert_view import AlertView
from rrn.federation.coverage import Shift
from rrn.protocol.coverage import capability_for
from rrn.protocol.policy import NetworkPolicy
from rrn.protocol.roster import Role, Roster
from rrn.protocol.vocabulary import EscalationCause, Urgency

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_STEP_S",
    "Escalation",
    "Ladder",
    "Policy",
    "Step",
    "ladder",
    "next_escalation",
]

#: The network policy of a roster that sets none.
DEFAULT_POLICY: Final = NetworkPolicy(
    immediate_s=10 * 60, days_s=2 * 3600, weeks_s=12 * 3600, max_direct=3
)

#: Default time each step of the ladder gets before the alert climbs, by urgency.
DEFAULT_STEP_S: Final = {
    Urgency.IMMEDIATE: DEFAULT_POLICY.immediate_s,
    Urgency.DAYS: DEFAULT_POLICY.days_s,
    Urgency.WEEKS: DEFAULT_POLICY.weeks_s,
}


@dataclass(frozen=True)
class Policy:
    """How fast alerts climb: the roster's network policy, the same on every node."""

    step_s: Mapping[Urgency, float] = field(default_factory=lambda: dict(DEFAULT_STEP_S))
    max_direct: int = DEFAULT_POLICY.max_direct

    @classmethod
    def of(cls, roster: Roster) -> Policy:
        """The policy a roster sets (the defaults when it sets none)."""
        p = roster.policy or DEFAULT_POLICY
        steps = {Urgency.IMMEDIATE: p.immediate_s, Urgency.DAYS: p.days_s, Urgency.WEEKS: p.weeks_s}
        return cls(step_s=steps, max_direct=p.max_direct)

    def step_ms(self, urgency: Urgency) -> int:
        return int(self.step_s[urgency] * 1000)


@dataclass(frozen=True)
class Step:
    """One rung: who is asked to claim, and whether it is the fallback pool."""

    level: int
    targets: tuple[str, ...]
    pool: bool


@dataclass(frozen=True)
class Ladder:
    """The direct steps of one alert, then the pool, repeating forever."""

    direct: tuple[Step, ...]
    pool: tuple[str, ...]

    def step(self, level: int) -> Step:
        if level < len(self.direct):
            return self.direct[level]
        return Step(level, self.pool, pool=True)


def ladder(view: AlertView, roster: Roster, shifts: Iterable[Shift], policy: Policy) -> Ladder:
    """The escalation ladder of an alert, from the shifts running when it was raised.

    An alert with a restricted audience (consent, exclusions) climbs among its
    audience only: nobody else can read it, let alone be asked to claim it.
    """
    responders = {m.org for m in roster.members if Role.RESPONDER in m.roles}
    if view.audience:
        responders &= set(view.audience)
    at = view.raised_ms
    needed = {c for a in view.asks if (c := capability_for(a.action)) is not None}
    best: dict[str, tuple[int, int, int, int, bytes]] = {}
    for s in shifts:
        if s.org not in responders or not s.start_ms <= at < s.end_ms:
            continue
        if not s.covers(view.country):
            continue
        speaks = s.covers(view.country, view.languages)
        key = (
            0 if speaks else 1,
            0 if view.country in s.regions else 1,
            -len(needed & s.capabilities),
            -len(set(view.languages) & s.languages),
            _spread(view.alert, s.org),
        )
        if s.org not in best or key < best[s.org]:
            best[s.org] = key
    order = sorted(best, key=lambda org: best[org])[: policy.max_direct]
    direct = tuple(Step(k, (org,), pool=False) for k, org in enumerate(order))
    return Ladder(direct, tuple(sorted(responders)))


def _spread(alert: bytes, org: str) -> bytes:
    return hashlib.sha256(alert + b"\x00" + org.encode()).digest()


@dataclass(frozen=True)
class Escalation:
    """What a node should publish now: the alert moves to `level`."""

    level: int
    targets: tuple[str, ...]
    cause: EscalationCause


def next_escalation(
    view: AlertView,
    steps: Ladder,
    policy: Policy,
    *,
    now_ms: int,
    down: set[str],
    claims_until: Mapping[str, int | None],
) -> Escalation | None:
    """The escalation due at `now_ms`, or None.

    The current level's time counts from when the alert reached it
    (`view.level_since_ms`); `down` lists the members whose heartbeats stopped; `claims_until` the
    expiry of each standing claim (None: no expiry).
    """
    if not view.status.is_open:
        return None
    if view.claimants:
        expiries = [claims_until.get(org) for org in view.claimants]
        if any(u is None or u > now_ms for u in expiries):
            return None
        cause = EscalationCause.CLAIM_LAPSED
    else:
        current = steps.step(view.level)
        if now_ms >= view.level_since_ms + policy.step_ms(view.urgency):
            cause = EscalationCause.DEADLINE
        elif not current.pool and set(current.targets) <= down:
            cause = EscalationCause.TARGET_DOWN
        else:
            return None
    level = view.level + 1
    while not steps.step(level).pool and set(steps.step(level).targets) <= down:
        level += 1  # skip members known to be down without waiting them out
    return Escalation(level, steps.step(level).targets, cause)
