"""The escalator's timing on a manual clock, over a real pipeline and store: an alert is
looked at when it changed or its moment came, never otherwise, and escalated once per
step, across restarts too. NATS and the peers are fakes at our own seams (what was
published, who is down): delivery is tested on real networks (test_escalation.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import msgspec
from nats.aio.client import Client as NatsClient

from rrn.federation.alert_view import AlertView, view
from rrn.federation.alerts import AlertState
from rrn.node.alerting.escalator import Escalator
from rrn.node.alerting.notices import Notice
from rrn.node.home.config import FederationConfig, NotifyConfig
from rrn.node.peering.peering import Peering
from rrn.node.store.db import Store
from rrn.protocol.alerts import AlertClaimed, AlertReleased, AlertResolved
from rrn.protocol.vocabulary import Outcome
from tests.node.conftest import Pipeline, running_pipeline
from tests.support import Net, raised

STEP_MS = 10 * 60_000  # the default policy's step for an immediate alert


class _Nats:
    """What the node published on its own server."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    async def publish(self, subject: str, data: bytes, headers: object = None) -> None:
        self.notices.append(msgspec.json.decode(data, type=Notice))


@dataclass
class _Peers:
    down_: set[str] = field(default_factory=set)

    def settled(self) -> bool:
        return True

    def down(self) -> set[str]:
        return self.down_


class _Peering:
    """Liveness as the escalator asks it: everyone else's node is down."""

    def __init__(self) -> None:
        self.peers = _Peers({"nairobi-dl", "jakarta-pb"})
        self.config = FederationConfig()

    def down(self) -> set[str]:
        return self.peers.down()

    def monotonic(self) -> float:
        return 0.0


class _Reads:
    """The ids of the alerts whose states the escalator read from the store."""

    def __init__(self, store: Store) -> None:
        self.ids: list[bytes] = []
        self._read = store.alert_states

        async def alert_states(ids: Iterable[bytes]) -> dict[bytes, AlertState]:
            wanted = list(ids)
            self.ids += wanted
            return await self._read(wanted)

        store.alert_states = alert_states  # type: ignore[method-assign]


@dataclass
class _Node:
    p: Pipeline
    esc: Escalator
    nats: _Nats

    async def view(self, alert: bytes) -> AlertView:
        state = (await self.p.store.alert_states([alert]))[alert]
        found = view(state, self.p.ingestor.network.authority)
        assert found is not None
        return found

    async def escalations(self, alert: bytes) -> list[int]:
        state = (await self.p.store.alert_states([alert]))[alert]
        return sorted(e.body.level for e in state.escalations)

    def sent(self, kind: str, alert: bytes) -> list[int]:
        return [n.level for n in self.nats.notices if n.type == kind and n.alert == alert.hex()]


def _escalator(p: Pipeline, nats: _Nats) -> Escalator:
    esc = Escalator(
        nc=cast(NatsClient, nats),
        ingestor=p.ingestor,
        store=p.store,
        peering=cast(Peering, _Peering()),
        metrics=p.metrics.alerting,
        clock=p.clock,
        notify=NotifyConfig(),
    )
    p.ingestor.on_alerts = esc.alerts_changed
    return esc


@contextlib.asynccontextmanager
async def _node(db: Path, tn: Net, *, now_ms: int | None = None) -> AsyncIterator[_Node]:
    async with running_pipeline(db, tn) as p:
        if now_ms is not None:
            p.clock.set(now_ms)
        nats = _Nats()
        esc = _escalator(p, nats)
        await esc.notifier.load()
        yield _Node(p, esc, nats)


async def test_an_alert_whose_deadline_passes_is_escalated_once_per_step(
    tmp_path: Path, tn: Net
) -> None:
    async with _node(tmp_path / "s.db", tn) as n:
        alert = (await n.p.ingestor.append(raised(0))).id
        await n.esc.tick()
        assert n.sent("pool", alert) == [0], "nobody covers Peru: the pool is asked at once"
        n.p.clock.advance(STEP_MS - 1)
        await n.esc.tick()
        assert await n.escalations(alert) == []
        n.p.clock.advance(1)
        for _ in range(3):  # the step ran out: one escalation, then its change comes back
            await n.esc.tick()
        assert await n.escalations(alert) == [1]
        assert (await n.view(alert)).level == 1
        assert n.sent("escalated", alert) == [1]
        assert n.sent("unclaimed", alert) == [0]
        n.p.clock.advance(STEP_MS - 1)
        await n.esc.tick()
        assert await n.escalations(alert) == [1]
        n.p.clock.advance(1)
        await n.esc.tick()
        await n.esc.tick()
        assert await n.escalations(alert) == [1, 2]
        assert (
            n.p.metrics.registry.get_sample_value(
                "rrn_alerts_unclaimed_past_deadline", {"urgency": "immediate"}
            )
            == 1
        )


async def test_an_alert_is_looked_at_only_when_it_changed_or_its_moment_came(
    tmp_path: Path, tn: Net
) -> None:
    async with _node(tmp_path / "s.db", tn) as n:
        early = (await n.p.ingestor.append(raised(0))).id
        n.p.clock.advance(60_000)
        late = (await n.p.ingestor.append(raised(1))).id
        await n.esc.tick()
        reads = _Reads(n.p.store)
        await n.esc.tick()
        assert reads.ids == [], "nothing changed and nothing is due: no alert is read"

        await n.p.ingestor.append(AlertClaimed(alert=early))
        await n.esc.tick()
        assert reads.ids == [], "a change brings its own state"
        n.p.clock.advance(STEP_MS)  # both first steps ran out; only `late` still waits
        await n.esc.tick()
        assert reads.ids == [late]
        assert await n.escalations(early) == [], "claimed: its deadline does not count"
        assert await n.escalations(late) == [1]

        await n.p.ingestor.append(AlertReleased(alert=early))
        await n.esc.tick()
        await n.esc.tick()
        assert await n.escalations(early) == [1], "released past its deadline: it climbs"


async def test_nothing_is_skipped_or_sent_twice_across_a_restart(tmp_path: Path, tn: Net) -> None:
    db = tmp_path / "s.db"
    async with _node(db, tn) as n:
        kept = (await n.p.ingestor.append(raised(0))).id
        ended = (await n.p.ingestor.append(raised(1))).id
        await n.esc.tick()
        assert n.sent("pool", kept) == [0]
        n.p.ingestor.on_alerts = None  # the escalator stops; the node goes on a moment
        await n.p.ingestor.append(AlertResolved(alert=ended, outcome=Outcome.SAFE))
        raised_meanwhile = (await n.p.ingestor.append(raised(2))).id
        now = n.p.clock.now_ms()
    async with _node(db, tn, now_ms=now + STEP_MS) as n:
        for _ in range(3):
            await n.esc.tick()
        assert n.sent("pool", kept) == [], "told before the restart: not again"
        assert n.sent("pool", raised_meanwhile) == [0]
        assert await n.escalations(kept) == [1]
        assert await n.escalations(raised_meanwhile) == [1]
        assert await n.escalations(ended) == []
        assert n.esc.notifier.marks.step(ended) == -1, "an ended alert's marks are dropped"


async def test_a_look_at_every_alert_goes_in_slices_and_misses_none(
    tmp_path: Path, tn: Net
) -> None:
    async with _node(tmp_path / "s.db", tn) as n:
        alerts = await asyncio.gather(*(n.p.ingestor.append(raised(i)) for i in range(300)))
        await n.esc.tick()
        reads = _Reads(n.p.store)
        n.esc.coverage_changed()  # a declaration came: every ladder may differ
        await n.esc.tick()
        assert sorted(reads.ids) == sorted(a.id for a in alerts), "each read once"
        n.p.clock.advance(STEP_MS)
        for _ in range(3):
            await n.esc.tick()
        assert [await n.escalations(a.id) for a in alerts] == [[1]] * len(alerts)


async def test_liveness_concerns_only_alerts_whose_direct_step_it_touches(
    tmp_path: Path, tn: Net
) -> None:
    async with _node(tmp_path / "s.db", tn) as n:
        for i in range(3):  # nobody declared cover: each alert is in the pool
            await n.p.ingestor.append(raised(i))
        await n.esc.tick()
        reads = _Reads(n.p.store)
        cast(_Peering, n.esc.peering).peers.down_ = {"jakarta-pb"}  # Nairobi is back
        await n.esc.tick()
        assert reads.ids == [], "the pool's members are asked whoever is down"


async def test_marks_kept_by_an_earlier_version_are_honoured(tmp_path: Path, tn: Net) -> None:
    db = tmp_path / "s.db"
    async with _node(db, tn) as n:
        alert = (await n.p.ingestor.append(raised(0))).id
        await n.p.store.set_meta("escalator.notified", msgspec.msgpack.encode({alert: 0}))
        await n.p.store.set_meta("notices.sent", msgspec.msgpack.encode([(alert, "unclaimed", 0)]))
    async with _node(db, tn, now_ms=n.p.clock.now_ms() + STEP_MS) as n:
        await n.esc.tick()
        assert n.sent("pool", alert) == [] and n.sent("unclaimed", alert) == []
    async with _node(db, tn) as n:  # written anew in the new form, the old emptied
        assert n.esc.notifier.marks.step(alert) >= 0
        assert not n.esc.notifier.marks.first("unclaimed", alert, 0)
        assert await n.p.store.get_meta("escalator.notified") == b""
