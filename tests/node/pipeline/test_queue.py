"""The ingest queue keeps room for events pushed live while a catch-up pulls."""

from __future__ import annotations

import asyncio

from rrn.node.pipeline.batch import Item
from rrn.node.pipeline.queue import PULLED_MAX, QUEUE_MAX, IngestQueue


def _pulled(n: int) -> Item:
    return Item(float(n), raw=n.to_bytes(4, "big"), source="pull", pulled=True)


def test_a_catch_up_fills_only_its_share_and_live_events_still_get_in() -> None:
    async def go() -> None:
        q = IngestQueue()
        for n in range(PULLED_MAX):
            await q.put(_pulled(n))
        blocked = asyncio.ensure_future(q.put(_pulled(PULLED_MAX)))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not blocked.done(), "one pull past its share waits"
        q.put_nowait(Item(0.0, raw=b"live", source="live"))  # room for a live event
        taken = await q.take(10)
        assert [i.received for i in taken] == [float(n) for n in range(10)], "in order"
        await asyncio.wait_for(blocked, 5)  # a place freed: the pull gets in
        rest = q.take_now(QUEUE_MAX)
        assert len(rest) == PULLED_MAX - 10 + 2 and rest[-2].raw == b"live"
        q.done(len(taken) + len(rest))
        await asyncio.wait_for(q.join(), 5)

    asyncio.run(go())
