"""The escalation ladders this node computes: from the declarations in force when each
alert was raised (node/alerting/coverage.py), the roster and its policy.

Owns the declarations read from the store (again after a declaration arrives) and a
bounded cache of recent ladders, keyed by everything a ladder is computed from
(PROTOCOL 4.3a), so an update of an alert's asks or languages gives it the ladder
every node computes for it, and memory does not grow with the open alerts.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from rrn.federation.alert_view import AlertView
from rrn.federation.coverage import Shift, shifts
from rrn.federation.escalation import Ladder, Policy, ladder
from rrn.node.alerting.coverage import Declarations, load_declarations
from rrn.node.pipeline.ingest import Ingestor
from rrn.node.store.db import Store

__all__ = ["Ladders"]

#: Ladders kept, most recently used (each is quick to compute again).
_KEPT: Final = 4096


class Ladders:
    """Each alert's ladder as this node escalates it."""

    def __init__(self, ingestor: Ingestor, store: Store) -> None:
        self.ingestor = ingestor
        self.store = store
        #: Bumped each time the declarations are read anew.
        self.version = 0
        self._declarations: Declarations | None = None
        self._generation = 0
        self._kept: OrderedDict[tuple[object, ...], Ladder] = OrderedDict()

    def coverage_changed(self) -> None:
        """A declaration arrived: read them again before the next ladder."""
        self._declarations = None
        self._generation += 1

    async def load(self) -> None:
        """Read the declarations if they changed (before `of`)."""
        # A declaration committed while the store is being read makes that read
        # stale (coverage_changed resets it meanwhile): read again.
        while self._declarations is None:
            wanted = self._generation
            roster = self.ingestor.network.roster
            found = await load_declarations(self.store, roster.orgs())
            if wanted == self._generation:
                self._declarations = found
                self.version += 1
                self._kept.clear()

    def of(self, v: AlertView, policy: Policy) -> Ladder:
        """The alert's ladder (after `load`)."""
        key = (
            v.alert,
            self.ingestor.network.roster_version,
            self.version,
            tuple(v.languages),
            tuple(str(a.action) for a in v.asks),
        )
        found = self._kept.get(key)
        if found is not None:
            self._kept.move_to_end(key)
            return found
        assert self._declarations is not None, "load() first"
        decls = self._declarations.at(v.raised_ms)
        running: list[Shift] = [
            s
            for org, decl in sorted(decls.items())
            for s in shifts(org, decl, v.raised_ms, v.raised_ms + 1)
        ]
        found = self._kept[key] = ladder(v, self.ingestor.network.roster, running, policy)
        if len(self._kept) > _KEPT:
            self._kept.popitem(last=False)
        return found
