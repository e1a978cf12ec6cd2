"""Reading the alert projection: the `alerts` rows, one per alert (and per plan).

Owns every read of the `alerts` table but the plans' (node/store/plans.py); the
store (node/store/db.py) takes these as its own methods. Each query that runs per
request or per sweep finds its rows through an index (migration 6), checked by
tests/node/store/test_query_plans.py: a list of the newest alerts reads only the rows it
returns, and retention reads only the closed alerts that are due.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Final

import aiosqlite

from rrn.federation.alert_view import AlertView, view
from rrn.federation.alerts import OPEN_STATUSES, AlertState, decode_state
from rrn.federation.authority import Authority
from rrn.node.store.rows import fetch

__all__ = ["CLOSED_SQL", "OPEN_SQL", "AlertReads"]


#: SQL list of the open statuses (fixed strings from federation.alerts, not input).
OPEN_SQL: Final = "(" + ", ".join(f"'{st}'" for st in sorted(OPEN_STATUSES)) + ")"
#: The closed statuses as the partial index `alerts_closed` names them: a query must
#: say it in these very words for sqlite to use that index.
CLOSED_SQL: Final = "('resolved', 'cancelled')"
#: Ids per `IN (...)` when rows are read by id.
_CHUNK: Final = 500
#: Alert ids per page of `alert_id_pages` (a few ms of the loop's time to take in).
_ID_PAGE: Final = 10_000


class AlertReads:
    """The store's reads of alert states and views (a part of `Store`)."""

    _db: aiosqlite.Connection

    async def alert_states(self, ids: Iterable[bytes]) -> dict[bytes, AlertState]:
        """Stored states of the given alerts (missing ones are absent)."""
        wanted = list(ids)
        found: dict[bytes, AlertState] = {}
        for start in range(0, len(wanted), _CHUNK):
            raw = await self._raw_states(wanted[start : start + _CHUNK])
            found.update((a, decode_state(b)) for a, b in raw.items())
        return found

    async def alert_ids_present(self, ids: Iterable[bytes]) -> set[bytes]:
        """Which of these alerts have a row in the projection."""
        wanted, found = list(ids), set[bytes]()
        for start in range(0, len(wanted), _CHUNK):
            part = wanted[start : start + _CHUNK]
            sql = f"SELECT id FROM alerts WHERE id IN ({','.join('?' * len(part))})"
            found.update(bytes(r[0]) for r in await fetch(self._db, sql, part))
        return found

    async def alert_ids(self) -> list[bytes]:
        """Ids of every alert with a row in the projection."""
        return [bytes(r[0]) for r in await fetch(self._db, "SELECT id FROM alerts")]

    async def alert_id_pages(self, page: int = _ID_PAGE) -> AsyncIterator[list[bytes]]:
        """`alert_ids` a page at a time, in id order, for work on the event loop: years
        of history hold hundreds of thousands, and one list of them took the loop
        ~85 ms to build. An alert added meanwhile may or may not be in a later page."""
        after = b""
        while True:
            sql = "SELECT id FROM alerts WHERE id > ? ORDER BY id LIMIT ?"
            ids = [bytes(r[0]) for r in await fetch(self._db, sql, (after, page))]
            if ids:
                yield ids
            if len(ids) < page:
                return
            after = ids[-1]

    async def alerts(
        self, *, statuses: Iterable[str] | None, limit: int, authority: Authority
    ) -> list[AlertView]:
        """Alerts as users see them (under the rules of `authority`), newest first.

        The newest ids come from the index `alerts_by_time` (covering: raised_ms,
        id, status), then only their states are read: sqlite never sorts every
        matching row with its state, whatever `limit` is (bound as a parameter,
        sqlite 3.40 cannot know it is small, and would otherwise sort them all).
        """
        where, args = "status IS NOT NULL", []
        if statuses is not None:
            args = list(statuses)
            where = f"status IN ({','.join('?' * len(args))})"
        ids = [
            bytes(r[0])
            for r in await fetch(
                self._db,
                f"SELECT id FROM alerts INDEXED BY alerts_by_time WHERE {where} "
                "ORDER BY raised_ms DESC, id LIMIT ?",
                (*args, limit),
            )
        ]
        found: list[AlertView] = []
        for start in range(0, len(ids), _CHUNK):
            # A chunk's states at a time: each is dropped once viewed (thousands held
            # at once keep the garbage collector busy for nothing).
            part = ids[start : start + _CHUNK]
            raw = await self._raw_states(part)
            views = (view(decode_state(raw[a]), authority) for a in part if a in raw)
            found += [v for v in views if v is not None]
        return found

    async def _raw_states(self, ids: list[bytes]) -> dict[bytes, bytes]:
        """The stored state of each of these alerts (at most `_CHUNK`), undecoded."""
        return {
            bytes(r[0]): bytes(r[1])
            for r in await fetch(
                self._db,
                f"SELECT id, state FROM alerts WHERE id IN ({','.join('?' * len(ids))})",
                ids,
            )
        }

    async def closed_before(
        self, origin: str, before_ms: int, *, after: tuple[int, bytes] = (0, b""), limit: int
    ) -> list[tuple[int, AlertState]]:
        """`origin`'s resolved or cancelled alerts last changed before a time, each with
        that time and its state: at most `limit`, oldest first, from just past `after`
        (the time and id of the last one a previous call returned)."""
        rows = await self.closed_ids_before(origin, before_ms, after=after, limit=limit)
        states = await self.alert_states(a for _, a in rows)
        return [(t, states[a]) for t, a in rows if a in states]

    async def closed_ids_before(
        self, origin: str, before_ms: int, *, after: tuple[int, bytes] = (0, b""), limit: int
    ) -> list[tuple[int, bytes]]:
        """As `closed_before`, the time and id of each alert only (no state is read)."""
        return [
            (int(r[0]), bytes(r[1]))
            for r in await fetch(
                self._db,
                "SELECT updated_ms, id FROM alerts "
                f"WHERE origin = ? AND status IN {CLOSED_SQL} AND updated_ms < ? "
                "AND (updated_ms, id) > (?, ?) ORDER BY updated_ms, id LIMIT ?",
                (origin, before_ms, *after, limit),
            )
        ]

    async def first_closed_ms(self, origin: str) -> int | None:
        """When the longest-closed of `origin`'s resolved or cancelled alerts last
        changed (what retention deletes next), or None if none is."""
        rows = await fetch(
            self._db,
            f"SELECT MIN(updated_ms) FROM alerts WHERE origin = ? AND status IN {CLOSED_SQL}",
            (origin,),
        )
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    async def open_alert_states(self) -> list[AlertState]:
        """States of every alert not yet resolved or cancelled."""
        rows = await fetch(self._db, f"SELECT state FROM alerts WHERE status IN {OPEN_SQL}")
        return [decode_state(bytes(r[0])) for r in rows]

    async def open_alert_id_pages(self) -> AsyncIterator[list[bytes]]:
        """`open_alert_ids` as one page, for a walk that takes `alert_id_pages` too (as
        many as the members' limits on what each holds open allow)."""
        yield await self.open_alert_ids()

    async def open_alert_ids(self) -> list[bytes]:
        """Ids of every alert not yet resolved or cancelled (from the status index alone:
        no state is read; the escalator reads a state when the alert is due)."""
        rows = await fetch(self._db, f"SELECT id FROM alerts WHERE status IN {OPEN_SQL}")
        return [bytes(r[0]) for r in rows]

    async def alert_ids_with_prefix(self, prefix: bytes, *, hidden: bool = False) -> list[bytes]:
        """Ids of known alerts starting with `prefix` (for short ids typed by users).

        With `hidden`, also alerts without a view (raise not yet here, or deleted).
        """
        upper = _prefix_upper_bound(prefix)
        sql = "SELECT id FROM alerts WHERE id >= ?" + ("" if hidden else " AND status IS NOT NULL")
        args: list[bytes] = [prefix]
        if upper is not None:
            sql += " AND id < ?"
            args.append(upper)
        rows = await fetch(self._db, sql + " LIMIT 10", args)
        return [bytes(r[0]) for r in rows]

    async def open_alert_counts(self) -> list[tuple[str, str, bool, int]]:
        """(severity, urgency, exercise, count) of open and claimed alerts."""
        rows = await fetch(
            self._db,
            "SELECT severity, urgency, exercise, COUNT(*) FROM alerts "
            f"WHERE status IN {OPEN_SQL} GROUP BY severity, urgency, exercise",
        )
        return [(str(r[0]), str(r[1]), bool(r[2]), int(r[3])) for r in rows]


def _prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix`."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
