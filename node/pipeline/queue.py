"""The ingest pipeline's queue: everything waiting to be verified, placed and stored.

Owns its bounds. It holds at most `QUEUE_MAX` items; of those, at most `PULLED_MAX`
pulled by sync, so a catch-up keeps a few batches ready (and memory flat) and
leaves the rest of the room to events pushed live, which are refused (counted by
the caller) rather than waited for when there is none.

Also owns `Pending`, how a consumer of committed alert changes slower than the
pipeline (the integrators' bucket, the collective watch) keeps up: it holds only the
ids of the alerts that changed, oldest first, and reads each as it is when its turn
comes, so a catch-up cannot make it hold a state per change.
"""

from __future__ import annotations

import asyncio
from typing import Final

from rrn.node.pipeline.batch import Item

__all__ = ["PULL", "PULLED_MAX", "QUEUE_MAX", "IngestQueue", "Pending"]

QUEUE_MAX: Final = 20_000
PULLED_MAX: Final = 4_000
#: The source of an item pulled by sync (`Item.source`).
PULL: Final = "pull"


class IngestQueue:
    """A FIFO of items with room kept for those not pulled."""

    def __init__(self) -> None:
        self._items: asyncio.Queue[Item] = asyncio.Queue(QUEUE_MAX)
        self._pull_room = asyncio.Semaphore(PULLED_MAX)
        #: Items queued and not yet handled (taken or not).
        self.unfinished = 0

    async def put(self, item: Item) -> None:
        """Queue an item, waiting for room (a pulled one: for room among the pulled)."""
        if item.source == PULL:
            await self._pull_room.acquire()
        await self._items.put(item)
        self.unfinished += 1

    def put_nowait(self, item: Item) -> None:
        """Queue an item not pulled now; raises asyncio.QueueFull if there is no room."""
        self._items.put_nowait(item)
        self.unfinished += 1

    async def take(self, most: int) -> list[Item]:
        """Wait for an item; it and those queued behind it, up to `most`."""
        first = self._took(await self._items.get())
        return [first, *self.take_now(most - 1)]

    def take_now(self, most: int) -> list[Item]:
        """Up to `most` items queued now (maybe none)."""
        items: list[Item] = []
        while len(items) < most and not self._items.empty():
            items.append(self._took(self._items.get_nowait()))
        return items

    def empty(self) -> bool:
        return self._items.empty()

    def done(self, count: int) -> None:
        """`count` items taken are handled (stored or refused)."""
        for _ in range(count):
            self._items.task_done()
        self.unfinished -= count

    async def join(self) -> None:
        """Wait until every item queued is handled."""
        await self._items.join()

    def _took(self, item: Item) -> Item:
        if item.source == PULL:
            self._pull_room.release()
        return item


class Pending:
    """Alert ids to look at again, oldest first, each once however often it changed."""

    def __init__(self) -> None:
        self._ids: dict[bytes, None] = {}
        self._wake = asyncio.Event()

    def add(self, alert: bytes) -> None:
        self._ids[alert] = None
        self._wake.set()

    def poke(self) -> None:
        """Wake the consumer with no id (it has something else to do)."""
        self._wake.set()

    async def next(self) -> bytes | None:
        """The oldest id, waiting for one; None when poked with none."""
        if not self._ids:
            self._wake.clear()
            await self._wake.wait()
        if not self._ids:
            return None
        alert = next(iter(self._ids))
        del self._ids[alert]
        return alert
