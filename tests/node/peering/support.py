"""A node's view of its peers over a real pipeline and store, on a monotonic clock
that moves only when a test moves it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from rrn.node.home.config import FederationConfig
from rrn.node.peering.peers import Peers
from tests.node.conftest import Pipeline, running_pipeline
from tests.support import Net


class Monotonic:
    """Seconds, as `time.monotonic` gives them, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def peers_on_pipeline(
    path: Path, tn: Net
) -> AsyncIterator[tuple[Pipeline, Monotonic, Peers]]:
    """A running pipeline over the store at `path`, its clock, and its peers."""
    async with running_pipeline(path, tn) as p:
        clock = Monotonic()
        config = FederationConfig()
        yield (
            p,
            clock,
            Peers(ingestor=p.ingestor, config=config, metrics=p.metrics.peers, monotonic=clock),
        )
