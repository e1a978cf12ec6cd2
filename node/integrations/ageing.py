"""Closed alerts leave the integrators' alert bucket RRN_ALERTS once they have been
closed for longer than [nats] bucket_closed_days (90 by default): the bucket holds
what is current, every alert not closed and those closed within that time. Their
events stay in the integrators' stream RRN_EVENTS ([nats] stream_max_age_days, a
year).

nats-server keeps about a quarter of a kilobyte of memory for each key of a bucket,
twice (the bucket and the integrators' mirror of it). A bucket of every alert ever
seen grew with the years of history a node holds: at 266,667 alerts, most closed
years ago, it took more of the server's memory than everything else.

An aged record is erased (its bytes overwritten, node/integrations/feeds.py), with no
delete marker: watchers saw the alert close (a record still saying otherwise, as
after a long absence, is first written as the alert now is), and ageing is not a
deletion (the alert stays in the store, `rrn alert show` shows it; its deletion
later still leaves a marker, which nats-server drops after the same time). Records
age in the background: at each start and every hour, the alerts that aged since the
last sweep are looked up through the store's index of closed alerts (only those, not
every alert), and a change to an alert closed that long ago (a node catching up on
old history) writes no record.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import OPEN_STATUSES
from rrn.node.home.clock import Clock, Slicer
from rrn.node.store.db import Store

__all__ = ["SWEEP_EVERY_S", "Ageing"]

logger = logging.getLogger(__name__)

_DAY_MS: Final = 86_400_000
#: How often records are checked for age.
SWEEP_EVERY_S: Final = 3600.0
#: In the store's meta: every alert closed before this time (ms) has no record.
_AGED_KEY: Final = "feeds.aged_before"
#: Closed alerts looked up at a time.
_PAGE: Final = 500


class Ageing:
    """When a closed alert's record leaves the bucket, and the sweep that erases it."""

    def __init__(self, *, keep_days: int, clock: Clock) -> None:
        self.keep_ms = keep_days * _DAY_MS
        self.clock = clock

    def cutoff_ms(self) -> int:
        """Alerts closed (last changed) before this time have no record."""
        return self.clock.now_ms() - self.keep_ms

    def aged(self, v: AlertView, cutoff_ms: int | None = None) -> bool:
        """Whether this alert is closed and has been for longer than records are kept."""
        cutoff = self.cutoff_ms() if cutoff_ms is None else cutoff_ms
        return v.status not in OPEN_STATUSES and v.updated_ms < cutoff

    async def mark(self, store: Store, cutoff_ms: int) -> None:
        """No alert closed before `cutoff_ms` has a record (a full fill skipped them)."""
        await store.set_meta(_AGED_KEY, str(cutoff_ms).encode())

    async def sweep(self, store: Store, drop: Callable[[str], Awaitable[int]]) -> int:
        """Erase (with `drop`, given an alert id in hex) the record of each alert that
        aged since the last sweep; how many records were erased."""
        raw = await store.get_meta(_AGED_KEY)
        since = int(raw) if raw else 0
        cutoff = self.cutoff_ms()
        if cutoff <= since:
            if cutoff < since:  # the clock went back: records written meanwhile count
                await self.mark(store, cutoff)
            return 0
        origins = sorted({key[0] for key in await store.heads()})
        slicer, seen, erased = Slicer(), 0, 0
        for origin in origins:
            after = (since, b"")
            while page := await store.closed_ids_before(origin, cutoff, after=after, limit=_PAGE):
                for _, alert in page:
                    erased += await drop(alert.hex())
                    await slicer.step()
                seen += len(page)
                after = page[-1]
        await self.mark(store, cutoff)
        if erased:
            logger.info(
                "integrators' alert bucket: %d records of %d alerts closed over %d days erased",
                erased,
                seen,
                self.keep_ms // _DAY_MS,
            )
        return erased
