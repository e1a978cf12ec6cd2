"""The pseudonyms minted at this node, each with the identity behind it sealed to this
member's own key (node/ops/defenders.py): the only place the mapping lives.
"""

from __future__ import annotations

import aiosqlite

from rrn.node.store.rows import fetch
from rrn.node.store.writes import scrub

__all__ = ["Pseudonyms"]


class Pseudonyms:
    """The `pseudonyms` table of one store."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def put(self, pseudonym: str, sealed: bytes, created_ms: int) -> None:
        """Record a pseudonym minted here with its sealed identity."""
        await self._db.execute(
            "INSERT INTO pseudonyms (pseudonym, sealed, created_ms) VALUES (?, ?, ?)",
            (pseudonym, sealed, created_ms),
        )

    async def get(self, pseudonym: str) -> bytes | None:
        """The sealed identity behind a pseudonym minted here, if any."""
        rows = await fetch(
            self._db, "SELECT sealed FROM pseudonyms WHERE pseudonym = ?", (pseudonym,)
        )
        return bytes(rows[0][0]) if rows else None

    async def minted(self) -> list[tuple[str, int]]:
        """Pseudonyms minted here and when, oldest first."""
        return [
            (str(r[0]), int(r[1]))
            for r in await fetch(
                self._db,
                "SELECT pseudonym, created_ms FROM pseudonyms ORDER BY created_ms, pseudonym",
            )
        ]

    async def forget(self, pseudonym: str) -> bool:
        """Delete a pseudonym's identity for good (overwritten, WAL emptied)."""
        cur = await self._db.execute("DELETE FROM pseudonyms WHERE pseudonym = ?", (pseudonym,))
        await scrub(self._db)
        return cur.rowcount > 0
