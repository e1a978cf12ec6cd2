"""The journal of control requests that change something (node/control/server.py): each
one's nonce before it runs and its answer after, so that a retry never runs it twice,
even across a restart of the daemon.
"""

from __future__ import annotations

import sqlite3

import aiosqlite

from rrn.node.store.rows import fetch
from rrn.node.store.writes import scrub
from rrn.protocol.errors import StoreError

__all__ = ["RequestJournal"]


class RequestJournal:
    """The `control_requests` table of one store."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def recent(self, since_ms: int) -> dict[bytes, tuple[int, bytes | None]]:
        """Nonce -> (request time, answer or None if it never finished), since a time."""
        rows = await fetch(
            self._db,
            "SELECT nonce, ts_ms, reply FROM control_requests WHERE ts_ms >= ?",
            (since_ms,),
        )
        return {bytes(r[0]): (int(r[1]), None if r[2] is None else bytes(r[2])) for r in rows}

    async def begin(self, nonce: bytes, ts_ms: int) -> None:
        """Record a request about to run (durably: the store syncs every commit); a
        StoreError if it cannot be (a full disk): then it must not run."""
        await self._write(
            "INSERT OR IGNORE INTO control_requests (nonce, ts_ms) VALUES (?, ?)", (nonce, ts_ms)
        )

    async def done(self, nonce: bytes, reply: bytes) -> None:
        """Record a request's answer."""
        await self._write("UPDATE control_requests SET reply = ? WHERE nonce = ?", (reply, nonce))

    async def _write(self, sql: str, args: tuple[object, ...]) -> None:
        try:
            await self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"could not write to the store: {exc}") from exc

    async def forget_answers(self) -> None:
        """Delete every answer kept (an alert's content may be in one and its origin
        deleted it): retries are then told the answer is gone."""
        await self._db.execute(
            "UPDATE control_requests SET reply = X'' WHERE reply IS NOT NULL AND reply != X''"
        )
        await scrub(self._db)

    async def prune(self, before_ms: int) -> None:
        """Forget requests older than a time (their nonces are stale by now)."""
        await self._write("DELETE FROM control_requests WHERE ts_ms < ?", (before_ms,))
