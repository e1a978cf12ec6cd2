"""The ingest queue keeps room for events pushed live while a catch-up pulls."""

from __future__ import annotations

import asyncio

from rrn.node.pipeline.batch import Item
from rrn.node.pipeline.queue import PULL, PULLED_MAX, QUEUE_MAX, IngestQueue, Pending


def _pulled(n: int) -> Item:
    return Item(float(n), raw=n.to_bytes(4, "big"), source=PULL)


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


def test_a_slow_consumer_holds_each_changed_alert_once_oldest_first() -> None:
    async def go() -> None:
        pending = Pending()
        waiting = asyncio.ensure_future(pending.next())
        await asyncio.sleep(0)
        assert not waiting.done(), "nothing changed yet"
        for alert in (b"a", b"b", b"a", b"c", b"b"):  # a catch-up changes alerts again
            pending.add(alert)
        assert await asyncio.wait_for(waiting, 5) == b"a"
        assert [await pending.next(), await pending.next()] == [b"b", b"c"]
        late = asyncio.ensure_future(pending.next())
        await asyncio.sleep(0)
        assert not late.done(), "each alert once, however often it changed"
        late.cancel()

    asyncio.run(go())
