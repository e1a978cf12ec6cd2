"""Dead letters: notices a webhook receiver did not take before its retries ran out.

Owns the webhook_dead table (migration V5): what the delivery gave up on, with
why, so an operator can see it (`rrn webhook dead`) and send it again (`rrn
webhook replay`). The body is the notice as sent: routable metadata only.
"""

from __future__ import annotations

import aiosqlite
import msgspec

from rrn.node.store.rows import fetch

__all__ = ["DeadLetter", "DeadLetters"]


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """One notice given up on."""

    webhook: str
    id: str
    body: bytes
    failed_ms: int
    attempts: int
    last_error: str


class DeadLetters:
    """The dead letters of every webhook."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def add(self, letter: DeadLetter) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO webhook_dead "
            "(webhook, id, body, failed_ms, attempts, last_error) VALUES (?, ?, ?, ?, ?, ?)",
            (letter.webhook, letter.id, letter.body, letter.failed_ms, letter.attempts,
             letter.last_error),
        )  # fmt: skip

    async def of(self, webhook: str) -> list[DeadLetter]:
        """A webhook's dead letters, oldest first."""
        rows = await fetch(
            self._db,
            "SELECT webhook, id, body, failed_ms, attempts, last_error FROM webhook_dead "
            "WHERE webhook = ? ORDER BY failed_ms, id",
            (webhook,),
        )
        return [
            DeadLetter(webhook=r[0], id=r[1], body=bytes(r[2]), failed_ms=r[3], attempts=r[4],
                       last_error=r[5])
            for r in rows
        ]  # fmt: skip

    async def forget(self, alert: str) -> int:
        """A deleted alert's dead letters go (a notice id is `<type>.<alert>.<step>`)."""
        cur = await self._db.execute("DELETE FROM webhook_dead WHERE id LIKE ?", (f"%.{alert}.%",))
        return cur.rowcount

    async def drop(self, webhook: str, letter_id: str) -> None:
        await self._db.execute(
            "DELETE FROM webhook_dead WHERE webhook = ? AND id = ?", (webhook, letter_id)
        )
