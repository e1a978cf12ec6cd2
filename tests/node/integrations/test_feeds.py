"""The integrators' feeds on a real network, read with the client library as an
integrator would (its own user, its own password): alert states now and on every
change (a restricted alert opened only where the member may read it, deleted when
its origin deletes it), verified events from where a durable consumer left off,
and notices kept for a consumer that was away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from rrn.node.client import AlertChange, connect
from tests.netkit import TestNetwork

pytestmark = pytest.mark.integration

T = TypeVar("T")


def _feeds(net: TestNetwork, k: int, name: str) -> Any:
    """A connection as integrator `name` of node k, its account made the first time."""
    have = {i["name"] for i in net.cli_json(k, "integrator", "list")}
    path = net.home(k) / f"{name}.test-password"
    if name not in have:
        path.write_text(net.cli_json(k, "integrator", "add", name)["password"])
    status = net.cli_json(k, "status")
    return connect(
        status["nats_url"], user=name, password=path.read_text(), network=status["network"]
    )


async def _until(stream: AsyncIterator[T], done: Callable[[T], bool], within_s: float = 30) -> T:
    async with asyncio.timeout(within_s):
        async for item in stream:
            if done(item):
                return item
    raise AssertionError("the stream ended")


def test_alert_states_events_and_notices_reach_an_integrator(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 3, nat=set())
    try:
        asyncio.run(_scenario(net))
    finally:
        net.close()


async def _scenario(net: TestNetwork) -> None:
    first = net.raise_alert(1)
    hidden = net.raise_alert(1, "--exclude", net.org(3))
    net.wait_holds({first, hidden})
    async with _feeds(net, 2, "case-system") as node:
        states = node.alerts()
        seen: dict[str, AlertChange] = {}

        def both(change: AlertChange) -> bool:
            seen[change.id] = change
            return {first, hidden} <= seen.keys()

        await _until(states, both)
        opened = seen[hidden].alert
        assert opened is not None and opened.country == "PE"
        assert opened.audience and net.org(3) not in opened.audience
        net.cli(2, "alert", "claim", first[:12])
        claimed = await _until(states, lambda c: c.id == first)
        assert claimed.alert is not None and claimed.alert.status == "claimed"
        net.cli(1, "alert", "forget", hidden[:12], "--reason", "consent_withdrawn")
        gone = await _until(states, lambda c: c.id == hidden)
        assert gone.alert is None

        events = node.events()
        raised = await _until(events, lambda e: e.id == first)
        assert (
            raised.kind == "alert.raised" and raised.payload and raised.payload["country"] == "PE"
        )
        await events.aclose()  # the consumer goes away; an alert is raised meanwhile
    later = net.raise_alert(1)
    net.wait_holds({later}, nodes=[2])
    await asyncio.sleep(6)  # longer than one fetch: a quiet stream must not end it
    async with _feeds(net, 2, "case-system") as node:
        events = node.events()
        got = await _until(events, lambda e: e.kind == "alert.raised")
        assert got.id == later, "it resumes where it left off"
        assert node.rejected == 0
    async with _feeds(net, 2, "pager-bridge") as node:
        notices = node.notices()
        # `later`, never claimed: node 2 tells of it whenever its escalator looks (it
        # claimed `first` a moment after it came, which could be before that look).
        notice = await _until(notices, lambda n: n.alert == later)
        assert notice.type in ("targeted", "pool", "escalated", "unclaimed") and notice.id

    async with _feeds(net, 3, "case-system") as outsider:
        ids: set[str] = set()
        states = outsider.alerts()
        await _until(states, lambda c: ids.add(c.id) or later in ids)  # type: ignore[func-returns-value]
        assert hidden not in ids, "excluded: the alert is not in its feed at all"
