"""Escalation ladders and deadlines on a manual clock: follow the sun, gaps, skips, lapses."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping

import msgspec

from rrn.federation.alert_view import AlertView, view
from rrn.federation.alerts import AlertStatus, fact, join
from rrn.federation.authority import Authority
from rrn.federation.coverage import Shift, shifts
from rrn.federation.escalation import Escalation, Policy, ladder, next_escalation
from rrn.protocol.alerts import AlertClaimed, Ask
from rrn.protocol.coverage import Capability, CoverageDeclared, Weekday, Window
from rrn.protocol.kinds import AlertPayload, decode_payload
from rrn.protocol.vocabulary import ActionType, EscalationCause, SupporterRole, Urgency
from tests.support import Chain, network, raised

ORGS = ("lima-hr", "nairobi-dl", "jakarta-pb", "berlin-fd")
TN = network(*ORGS)
AUTH = Authority.of(TN.roster)
MIN = 60_000
POLICY = Policy()


def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
    return int(datetime.datetime(y, mo, d, h, mi, tzinfo=datetime.UTC).timestamp() * 1000)


def day_window(
    tz: str, regions: list[str], languages: list[str], caps: list[Capability] | None = None
) -> CoverageDeclared:
    w = Window(
        days=list(Weekday),
        start="08:00",
        end="20:00",
        regions=regions,
        languages=languages,
        capabilities=caps or [],
    )
    return CoverageDeclared(tz=tz, windows=[w])


DECLS = {
    "lima-hr": day_window("America/Lima", ["PE", "CO"], ["es", "en"], [Capability.LEGAL]),
    "nairobi-dl": day_window("Africa/Nairobi", ["KE", "*"], ["en", "sw"], [Capability.LEGAL]),
    "jakarta-pb": day_window("Asia/Jakarta", ["ID", "PE"], ["id", "en"]),
    "berlin-fd": day_window("Europe/Berlin", ["*"], ["en", "de", "es"], [Capability.RELOCATION]),
}


def all_shifts(around: int) -> list[Shift]:
    return [
        s
        for org, d in DECLS.items()
        for s in shifts(org, d, around - 86_400_000, around + 86_400_000)
    ]


def alert_at(when: int, **fields: object) -> AlertView:
    chain = Chain(TN, "lima-hr", start_ms=when - 1000)
    event = chain.next(msgspec.structs.replace(raised(), **fields))
    assert event.payload is not None
    payload = decode_payload(event.header.kind, event.payload)
    assert isinstance(payload, AlertPayload)
    v = view(fact(event.header, event.id, payload), AUTH)
    assert v is not None and v.raised_ms == when
    return v


def test_night_in_lima_goes_to_members_on_duty_elsewhere_best_match_first() -> None:
    # 03:00 in Lima = 08:00 UTC: Nairobi (11:00) and Berlin (09:00) and Jakarta (15:00) on duty.
    when = at(2026, 11, 24, 8)
    v = alert_at(when, country="PE", languages=["es"])
    steps = ladder(v, TN.roster, all_shifts(when), POLICY)
    # Jakarta covers PE by name but speaks no Spanish; Berlin speaks it (catch-all region).
    assert [s.targets for s in steps.direct] == [("berlin-fd",), ("jakarta-pb",), ("nairobi-dl",)]
    assert steps.step(3).pool and set(steps.step(3).targets) == set(ORGS)


def test_exact_country_and_capabilities_rank_before_catch_alls() -> None:
    when = at(2026, 11, 24, 14)  # Lima 09:00, Berlin 15:00, Nairobi 17:00; Jakarta 21:00 off
    legal = [Ask(action=ActionType.LEGAL_AID, to=SupporterRole.NGO)]
    v = alert_at(when, country="PE", languages=["es"], asks=legal)
    steps = ladder(v, TN.roster, all_shifts(when), POLICY)
    assert steps.direct[0].targets == ("lima-hr",)  # PE by name, Spanish, legal
    assert [s.targets[0] for s in steps.direct[1:]] == ["berlin-fd", "nairobi-dl"]


def test_alert_in_a_coverage_gap_starts_in_the_pool() -> None:
    when = at(2026, 11, 24, 2)  # Lima 21:00, Berlin 03:00, Nairobi 05:00, Jakarta 09:00
    v = alert_at(when, country="BR", languages=["pt"])  # only catch-all regions cover BR
    steps = ladder(v, TN.roster, all_shifts(when), POLICY)
    assert steps.direct == ()
    first = steps.step(0)
    assert first.pool and set(first.targets) == set(ORGS)


def _due(
    v: AlertView,
    now: int,
    down: set[str] | None = None,
    until: Mapping[str, int | None] | None = None,
) -> Escalation | None:
    steps = ladder(v, TN.roster, all_shifts(v.raised_ms), POLICY)
    return next_escalation(
        v,
        steps,
        POLICY,
        now_ms=now,
        down=down or set(),
        claims_until=until or {},
    )


def test_deadlines_by_urgency_and_skipping_members_that_are_down() -> None:
    when = at(2026, 11, 24, 8)
    v = alert_at(when, country="PE", languages=["es"], urgency=Urgency.IMMEDIATE)
    assert _due(v, when + 9 * MIN) is None
    step = _due(v, when + 10 * MIN)
    assert step is not None and (step.level, step.targets) == (1, ("jakarta-pb",))
    assert step.cause is EscalationCause.DEADLINE
    # Berlin (step 0) stopped sending heartbeats, and so did Jakarta (step 1):
    skipped = _due(v, when + MIN, down={"berlin-fd", "jakarta-pb"})
    assert skipped is not None and skipped.cause is EscalationCause.TARGET_DOWN
    assert (skipped.level, skipped.targets) == (2, ("nairobi-dl",))
    slow = alert_at(when, country="PE", languages=["es"], urgency=Urgency.WEEKS)
    assert _due(slow, when + 11 * 3600_000) is None
    assert _due(slow, when + 12 * 3600_000) is not None


def test_the_pool_re_escalates_until_claimed_and_nothing_is_dropped() -> None:
    when = at(2026, 11, 24, 2)
    v = alert_at(when, country="BR", languages=["pt"])
    for level in range(1, 6):
        v = msgspec.structs.replace(
            v,
            level=level - 1,
            level_since_ms=when + (level - 1) * 10 * MIN,
            status=AlertStatus.ESCALATED if level > 1 else AlertStatus.OPEN,
        )
        due = _due(v, when + level * 10 * MIN)
        assert due is not None and due.level == level and set(due.targets) == set(ORGS)


def test_claims_hold_the_ladder_until_they_lapse() -> None:
    when = at(2026, 11, 24, 8)
    chain = Chain(TN, "lima-hr", start_ms=when - 1000)
    r = chain.next(raised())
    other = Chain(TN, "berlin-fd", start_ms=when)
    claim = other.next(AlertClaimed(alert=r.id, until_ms=when + 30 * MIN))
    facts = []
    for e in (r, claim):
        assert e.payload is not None
        p = decode_payload(e.header.kind, e.payload)
        assert isinstance(p, AlertPayload)
        facts.append(fact(e.header, e.id, p))
    v = view(functools.reduce(join, facts), AUTH)
    assert v is not None and v.claimants == ("berlin-fd",)
    until = {"berlin-fd": when + 30 * MIN}
    assert _due(v, when + 20 * MIN, until=until) is None, "a standing claim stops the ladder"
    lapsed = _due(v, when + 30 * MIN, until=until)
    assert lapsed is not None and lapsed.cause is EscalationCause.CLAIM_LAPSED
    assert _due(v, when + 600 * MIN, until={"berlin-fd": None}) is None


def test_every_node_computes_the_same_ladder() -> None:
    when = at(2026, 11, 24, 8)
    v = alert_at(when, country="KE", languages=["en"])
    shuffled = list(reversed(all_shifts(when)))
    assert ladder(v, TN.roster, all_shifts(when), POLICY) == ladder(v, TN.roster, shuffled, POLICY)
