"""The check-in plans a node holds: each is an alert state of its own (keyed by the
plan id, never viewed; federation/checkins.py), read here for the check-in watcher
and `rrn checkin list`.
"""

from __future__ import annotations

import aiosqlite

from rrn.federation.alerts import AlertState, decode_state
from rrn.node.store.rows import fetch

__all__ = ["Plans"]


class Plans:
    """The plans among the `alerts` rows of one store."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def states(self) -> list[AlertState]:
        """The state of every plan held (rows with no view: plans, and facts whose
        raise has not arrived)."""
        rows = await fetch(self._db, "SELECT state FROM alerts WHERE status IS NULL")
        found = (decode_state(bytes(r[0])) for r in rows)
        return [s for s in found if s.plan is not None]
