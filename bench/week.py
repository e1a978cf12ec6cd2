"""A simulated week of coverage on a virtual clock (issue 'Real networks').

Seven members in seven zones for nine days from Saturday 28 March 2026 00:00
UTC (bench/week_world.py: Berlin's clocks go forward on 29 March, Sydney's and
Santiago's go back on 5 April; both are Sundays more than seven days apart, so
no seven-day window holds them both). Alerts arrive as a Poisson stream, members
go down for hours at random, and every alert is raised, escalated and claimed
as signed events folded by the rules every node runs: shifts, `ladder`,
`next_escalation`, `fact`/`join`/`view`, `authorise`. The node's part follows
node/alerting/escalator.py with its own constants: it looks when a step falls
due (then gathers), at its next tick when liveness changes, and live members
publish in the order of `_rank`, a stagger apart, so one down unnoticed delays
the step. Network delay is not modelled (the WAN soak's job).

    python bench/week.py [--seed 1] [--out docs/week]
        [--alerts-per-h 1.2] [--outages-per-member-day 0.15]
"""

from __future__ import annotations

import argparse
import functools
import heapq
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.week_report import Escalated, Outcome, Result, write
from bench.week_world import (
    HOUR_MS,
    MEMBERS,
    MIN_MS,
    People,
    Scenario,
    Spec,
    arrivals,
    check_members,
    compare_gaps,
    dst_changes,
    outages,
)
from rrn.federation.alert_view import AlertView, claim_expiries, view
from rrn.federation.alerts import AlertState, fact, join
from rrn.federation.authority import Authority, authorise
from rrn.federation.coverage import shifts
from rrn.federation.escalation import Escalation, Ladder, Policy, ladder, next_escalation

# The escalator's own timing and publishing order, so the simulation cannot drift from them.
from rrn.node.alerting.escalator import _GATHER_S, _TICK_S, _rank
from rrn.node.alerting.notices import pool_pages
from rrn.node.home.config import FederationConfig, NotifyConfig
from rrn.protocol.alerts import AlertClaimed, AlertEscalated, AlertRaised, Ask
from rrn.protocol.encoding import encode
from rrn.protocol.kinds import AlertPayload, decode_payload, kind_of
from rrn.protocol.vocabulary import EscalationCause, IncidentType, Severity, SupporterRole, Urgency
from tests.support import Chain, network

HEARTBEAT_MS: Final = int(FederationConfig().heartbeat_s * 1000)
DOWN_AFTER_MS: Final = max(3000, 5 * HEARTBEAT_MS)  # Peers.down_after_s
STAGGER_MS: Final = 2 * HEARTBEAT_MS  # Escalator._stagger_s
GATHER_MS: Final = int(_GATHER_S * 1000)
TICK_MS: Final = int(_TICK_S * 1000)
POOL_REPEAT_S: Final = NotifyConfig().pool_repeat_s
#: Mean seconds a person takes to answer a page at work, by urgency (six times as long
#: off duty), and how often a page goes unanswered (at work, off duty).
ANSWER_S: Final = {Urgency.IMMEDIATE: 240, Urgency.DAYS: 1800, Urgency.WEEKS: 4 * 3600}
UNANSWERED: Final = (0.25, 0.5)


@dataclass
class Tracked:
    """One alert in flight: its signed facts folded, its ladder, and what the node keeps."""

    id: bytes
    spec: Spec
    state: AlertState
    steps: Ladder
    looks: set[int] = field(default_factory=set)
    due: tuple[int, int] | None = None  # (level, first seen due), as Escalator._Due
    pool_from: int | None = None
    claim: tuple[str, int, int, bool] | None = None  # (org, at, level, from the pool)
    waited: str = ""  # why the due step is not out yet: "stagger", "nobody_up"

    @property
    def raised_ms(self) -> int:
        assert self.state.raised is not None
        return self.state.raised.pos.wall_ms


class Sim:
    """The network over the scenario: one event heap, one virtual clock."""

    def __init__(self, sc: Scenario) -> None:
        self.sc, self.rng, self.people = sc, random.Random(sc.seed), People()
        self.tn = network(*MEMBERS)
        self.auth, self.policy = Authority.of(self.tn.roster), Policy.of(self.tn.roster)
        self.chains = {o: Chain(self.tn, o, start_ms=sc.start_ms) for o in MEMBERS}
        self.now = sc.start_ms
        self.heap: list[tuple[int, int, Callable[[], None]]] = []
        self.seq = 0
        self.alive, self.known_down = set(MEMBERS), dict[str, int]()
        self.alerts: dict[bytes, Tracked] = {}
        self.escalations: list[Escalated] = []
        self.off_duty_routes = 0
        self.raised_late: set[Spec] = set()  # nobody's node was up to take the call
        self.outages = outages(sc, self.rng)
        for spec in arrivals(sc, self.rng):
            self._at(spec.at_ms, functools.partial(self._raise, spec))
        for org, s, e in self.outages:
            self._at(s, functools.partial(self._down, org))
            self._at(e, functools.partial(self._up, org))

    def run(self) -> None:
        stop = self.sc.end_ms + int(self.sc.drain_h * HOUR_MS)
        while self.heap and self.heap[0][0] <= stop:
            self.now, _, act = heapq.heappop(self.heap)
            act()
        self.now = max(self.now, stop)

    def _at(self, ms: int, act: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (ms, self.seq, act))

    def _sign(self, org: str, payload: AlertPayload, at_ms: int) -> tuple[bytes, AlertState]:
        """The fact of a signed event, read back from its bytes as a receiving node does."""
        event = self.chains[org].raw(str(kind_of(payload)), encode(payload), wall_ms=at_ms)
        assert event.payload is not None
        read = decode_payload(event.header.kind, event.payload)
        assert isinstance(read, AlertPayload)
        return event.id, fact(event.header, event.id, read)

    def view(self, a: Tracked) -> AlertView:
        v = view(a.state, self.auth)
        assert v is not None
        return v

    def _raise(self, spec: Spec) -> None:
        alive = sorted(self.alive)
        if not alive:
            self.raised_late.add(spec)
            self._at(self.now + MIN_MS, functools.partial(self._raise, spec))
            return
        local = [o for o in alive if self.people.covers(o, self.now, spec.country)]
        origin = self.rng.choice(local or alive)
        body = AlertRaised(
            country=spec.country,
            incident_types=[self.rng.choice(list(IncidentType))],
            severity=self.rng.choice(list(Severity)),
            urgency=spec.urgency,
            languages=list(spec.languages),
            pseudonym="hrd-" + "".join(self.rng.choices("abcdefghijklmnopqrstuvwxyz234567", k=8)),
            asks=[Ask(action=spec.ask, to=SupporterRole.NGO)] if spec.ask else [],
        )
        aid, state = self._sign(origin, body, self.now)
        v = view(state, self.auth)
        assert v is not None
        running = [s for o, d in MEMBERS.items() for s in shifts(o, d, self.now, self.now + 1)]
        a = self.alerts[aid] = Tracked(
            aid, spec, state, ladder(v, self.tn.roster, running, self.policy)
        )
        if a.steps.direct:
            first = a.steps.direct[0].targets[0]
            self.off_duty_routes += not self.people.covers(first, self.now, spec.country)
        self._page(a, v)
        self._examine(a)

    def _page(self, a: Tracked, v: AlertView, only: str | None = None) -> None:
        """The targets' people are paged, as notices.py does (the pool: on entry, then
        about hourly in whole rounds: notices.pool_pages); `only`: just that member's
        (its node is back)."""
        step = a.steps.step(v.level)
        if step.pool:
            a.pool_from = v.level if a.pool_from is None else a.pool_from
            step_ms = self.policy.step_ms(v.urgency)
            if not pool_pages(v.level - a.pool_from, step_ms, POOL_REPEAT_S):
                return
        for org in step.targets:
            if org in self.alive and only in (None, org):
                self._ask(a, org)

    def _ask(self, a: Tracked, org: str) -> None:
        at_work = bool(self.people.cover(org, self.now))
        if self.rng.random() < UNANSWERED[0 if at_work else 1]:
            return  # this page goes unanswered
        mean_s = ANSWER_S[a.spec.urgency] * (1 if at_work else 6)
        answer = self.now + int(self.rng.expovariate(1 / mean_s) * 1000)
        self._at(answer, lambda: self._claim(a, org))

    def _claim(self, a: Tracked, org: str) -> None:
        v = self.view(a)
        if org not in self.alive or v.claimants or not v.status.is_open:
            return
        _, claimed = self._sign(org, AlertClaimed(alert=a.id), self.now)
        a.state = join(a.state, claimed)
        a.claim = (org, self.now, v.level, a.steps.step(v.level).pool)

    def _look(self, a: Tracked, at: int) -> None:
        """Look at the alert at `at`: the escalator's queue, then its gather (never sooner)."""
        at = max(at, self.now + GATHER_MS)
        if at not in a.looks:
            a.looks.add(at)
            self._at(at, lambda: self._looked(a, at))

    def _looked(self, a: Tracked, at: int) -> None:
        a.looks.discard(at)
        if a.claim is None:
            self._examine(a)

    def _examine(self, a: Tracked) -> None:
        """Escalator._examine: is a step due, and is it this member's turn to publish it?"""
        v = self.view(a)
        expiries = claim_expiries(a.state)
        down = set(self.known_down)
        due = next_escalation(
            v, a.steps, self.policy, now_ms=self.now, down=down, claims_until=expiries
        )
        if due is None:
            a.due = None
            if not v.claimants:
                self._look(a, v.level_since_ms + self.policy.step_ms(v.urgency) + GATHER_MS)
            return
        if a.due is None or a.due[0] != due.level:
            a.due = (due.level, self.now)
        live = sorted(set(MEMBERS) - set(self.known_down))
        turns = sorted((_rank(a.id, due.level, live, o), o) for o in live if o in self.alive)
        if not turns:  # nobody who could publish is up
            a.waited = "nobody_up"
            self._look(a, self.now + TICK_MS + GATHER_MS)
            return
        publish_at = a.due[1] + turns[0][0] * STAGGER_MS
        if publish_at > self.now:  # the first in line is down and nobody noticed yet
            a.waited = a.waited or "stagger"
            self._look(a, publish_at + 1 + GATHER_MS)
            return
        self._publish(a, v, due, turns[0][1])

    def _publish(self, a: Tracked, v: AlertView, due: Escalation, org: str) -> None:
        at = self.now + self.rng.randint(1, 50)  # the append's durable commit
        if due.cause is EscalationCause.DEADLINE:
            due_ms = v.level_since_ms + self.policy.step_ms(v.urgency)
        else:  # due once the step's members were known down
            targets = a.steps.step(v.level).targets
            due_ms = max([v.level_since_ms, *(self.known_down.get(t, 0) for t in targets)])
        body = AlertEscalated(
            alert=a.id, level=due.level, targets=list(due.targets), cause=due.cause
        )
        _, escalated = self._sign(org, body, at)
        self.escalations.append(
            Escalated(
                a.id.hex()[:12], due.level, str(due.cause), at, due_ms, at - due_ms, org, a.waited
            )
        )
        a.state, a.due, a.waited = join(a.state, escalated), None, ""
        after = self.view(a)
        assert after.level == due.level, "the rules refused an escalation the ladder asked for"
        self._page(a, after)
        self._examine(a)

    def _liveness_changed(self) -> None:
        tick = self.now + self.rng.randint(0, TICK_MS + GATHER_MS)  # the escalator's next tick
        for a in self.alerts.values():
            if a.claim is None:
                self._look(a, tick)

    def _down(self, org: str) -> None:
        self.alive.discard(org)
        self._at(self.now + DOWN_AFTER_MS, lambda: self._noticed(org))

    def _noticed(self, org: str) -> None:
        if org not in self.alive:
            self.known_down[org] = self.now
            self._liveness_changed()

    def _up(self, org: str) -> None:
        self.alive.add(org)
        self._at(self.now + HEARTBEAT_MS, lambda: self._heard(org))

    def _heard(self, org: str) -> None:
        self.known_down.pop(org, None)
        self._liveness_changed()
        for a in self.alerts.values():  # back up, its node pages for what asks it now
            if a.claim is None:
                self._page(a, self.view(a), only=org)


def _outcome(sim: Sim, a: Tracked) -> Outcome:
    """How the alert ended, read from its signed facts."""
    step = sim.policy.step_ms(a.spec.urgency)
    reached: dict[int, int] = {}
    for e in a.state.escalations:
        reached[e.body.level] = min(reached.get(e.body.level, e.pos.wall_ms), e.pos.wall_ms)
    times = [a.raised_ms, *(reached[level] for level in sorted(reached))]
    claimed = min((c.pos.wall_ms for c in a.state.claims), default=None)
    ends = [*times[1:], sim.now if claimed is None else claimed]
    overdue = max(end - (since + step) for since, end in zip(times, ends, strict=True))
    if a.claim is not None:
        _, _, level, pool = a.claim
        how = "pool" if pool else ("first" if level == 0 else "escalated")
    elif overdue > 1000:
        how = "dropped"
    else:
        how = "in_pool" if a.steps.step(sim.view(a).level).pool else "waiting"
    return Outcome(
        a.id.hex()[:12], a.raised_ms, a.spec.country, str(a.spec.urgency), how, claimed, overdue
    )


def _quantiles(values: list[float]) -> list[float]:
    """Median, 90th percentile and maximum, to a tenth."""
    ranked = sorted(values)
    picks = [statistics.median(ranked), ranked[int(0.9 * (len(ranked) - 1))], ranked[-1]]
    return [round(x, 1) for x in picks]


def simulate(sc: Scenario) -> Result:
    """Run the scenario and gather what happened."""
    check_members()
    began = time.perf_counter()
    sim = Sim(sc)
    sim.run()
    outcomes = [_outcome(sim, a) for a in sim.alerts.values()]
    count = Counter(o.how for o in outcomes)
    minutes: dict[str, list[float]] = {}
    for a in sim.alerts.values():
        if a.claim is not None:
            minutes.setdefault(str(a.spec.urgency), []).append((a.claim[1] - a.raised_ms) / MIN_MS)
    return Result(
        seed=sc.seed,
        start=sc.start.isoformat(),
        days=sc.days,
        members={o: d.tz for o, d in MEMBERS.items()},
        dst=dst_changes(sc),
        outages=sim.outages,
        alerts=outcomes,
        claimed=count["first"] + count["escalated"] + count["pool"],
        in_pool=count["in_pool"],
        waiting=count["waiting"],
        dropped=count["dropped"],
        stalled=sum(o.overdue_ms > 1000 for o in outcomes),
        started_in_pool=sum(not a.steps.direct for a in sim.alerts.values()),
        refused=sum(len(authorise(a.state, sim.auth)[1]) for a in sim.alerts.values()),
        off_duty_routes=sim.off_duty_routes,
        raised_late=len(sim.raised_late),
        escalations=sim.escalations,
        claim_minutes={u: _quantiles(m) for u, m in sorted(minutes.items())},
        gaps=compare_gaps(sc, sim.people, sim.outages),
        wall_s=round(time.perf_counter() - began, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("docs/week"))
    parser.add_argument("--alerts-per-h", type=float, default=Scenario.alerts_per_h)
    parser.add_argument(
        "--outages-per-member-day", type=float, default=Scenario.outages_per_member_day
    )
    args = parser.parse_args()
    result = simulate(
        Scenario(
            seed=args.seed,
            alerts_per_h=args.alerts_per_h,
            outages_per_member_day=args.outages_per_member_day,
        )
    )
    write(result, args.out)
    summary = ("seed", "claimed", "in_pool", "waiting", "dropped", "stalled", "refused", "wall_s")
    print(json.dumps({k: v for k, v in asdict(result).items() if k in summary}))


if __name__ == "__main__":
    main()
