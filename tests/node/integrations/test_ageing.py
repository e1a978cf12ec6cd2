"""Which records leave the integrators' alert bucket, and when: the alerts closed for
longer than the feeds keep events, every origin's, each once (the erasing itself, on
a real server: test_feeds_ageing.py)."""

from __future__ import annotations

from pathlib import Path

from rrn.federation.alert_view import view
from rrn.node.integrations.ageing import Ageing
from rrn.protocol.alerts import AlertResolved
from rrn.protocol.vocabulary import Outcome
from tests.node.conftest import running_pipeline
from tests.support import Chain, Net, raised

DAY = 86_400_000


async def test_a_sweep_erases_the_records_of_the_alerts_closed_too_long_ago_once(
    tmp_path: Path, tn: Net
) -> None:
    async with running_pipeline(tmp_path / "store.db", tn) as p:
        start = p.clock.now_ms()
        still_open = (await p.ingestor.append(raised(0))).id
        early = (await p.ingestor.append(raised(1))).id
        await p.ingestor.append(AlertResolved(alert=early, outcome=Outcome.SAFE))
        events = list(Chain(tn, "nairobi-dl").lifecycle(2))  # raised and resolved at the start
        theirs = [e.id for e in events[::3]]  # raise, claim, resolve each
        for event in events:
            await (await p.ingestor.submit(event.envelope()))
        p.clock.advance(300 * DAY)
        later = (await p.ingestor.append(raised(2))).id
        await p.ingestor.append(AlertResolved(alert=later, outcome=Outcome.SAFE))
        await p.ingestor.flush()

        ageing = Ageing(keep_days=365, clock=p.clock)
        dropped: list[str] = []

        async def drop(alert: str) -> int:
            dropped.append(alert)
            return 1

        p.clock.set(start + 400 * DAY)  # closed at the start: aged; 300 days in: not
        assert await ageing.sweep(p.store, drop) == 3
        assert sorted(dropped) == sorted(a.hex() for a in [early, *theirs])
        assert await ageing.sweep(p.store, drop) == 0  # each alert once
        p.clock.advance(300 * DAY)
        dropped.clear()
        assert await ageing.sweep(p.store, drop) == 1
        assert dropped == [later.hex()]  # the open one never, however old

        # The clock goes back 200 days (a record of `later` may be written meanwhile,
        # as it is not aged then), then on: the next sweep looks at it again.
        p.clock.set(p.clock.now_ms() - 200 * DAY)
        assert await ageing.sweep(p.store, drop) == 0
        p.clock.advance(200 * DAY)
        dropped.clear()
        assert await ageing.sweep(p.store, drop) == 1 and dropped == [later.hex()]

        states = await p.store.alert_states([still_open, early, later])
        aged = {}
        for alert, state in states.items():
            v = view(state, p.ingestor.network.authority)
            assert v is not None
            aged[alert] = ageing.aged(v)
        assert aged == {still_open: False, early: True, later: True}
