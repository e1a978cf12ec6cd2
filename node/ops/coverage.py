"""`rrn coverage declare|show`: this member's on-duty declaration, and the network's grid."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rrn.node.alerting.coverage import CoverageGrid, current_declarations, grid
from rrn.node.control.channel import handler
from rrn.node.ops.book import AlertBook
from rrn.node.ops.types import (
    CoverageArgs,
)
from rrn.protocol.coverage import CoverageDeclared

__all__ = ["CoverageOps"]


class CoverageOps:
    """Declaring when this member is on duty, and showing who covers when."""

    def __init__(self, book: AlertBook) -> None:
        self._book = book

    def handlers(self) -> dict[str, Callable[[bytes], Awaitable[object]]]:
        """Operation name -> handler of its encoded arguments."""
        return {
            "coverage.declare": handler(CoverageDeclared, self.declare_coverage),
            "coverage.show": handler(CoverageArgs, self.show_coverage),
        }

    async def declare_coverage(self, decl: CoverageDeclared) -> int:
        """Sign and publish this member's on-duty declaration; its seq."""
        event = await self._book.append(decl)
        return event.header.seq

    async def show_coverage(self, args: CoverageArgs) -> CoverageGrid:
        members = self._book.ingestor.network.roster.orgs()
        decls = await current_declarations(self._book.store, members)
        return grid(decls, args.tz, args.now_ms or self._book.ingestor.clock.now_ms())
