"""Signature checks of received envelopes, in worker processes when it pays.

Owns where the ingest pipeline's Ed25519 verification runs. A handful of
events (live traffic) are verified inline, with no added latency. Large batches
(a node catching up) are split across worker processes: threads would not do,
because every return from the C verification to Python must re-take the GIL,
and while the event loop is busy each re-take waits a whole switch interval.

Workers are spawned (never forked from a process with threads), so a script
that runs a pipeline must keep its top level under `if __name__ == "__main__"`.
Workers get the network id, the roster and the key rotations once, at start
(and are restarted when either changes), and answer each chunk
with the rejection reason of each envelope (or None). The main process then
decodes the accepted envelopes' exact bytes again, so what it acts on is what a
worker verified.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import platform
import sys
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Final

from rrn.federation.keyring import Keyring, Rotation
from rrn.node.home.clock import Slicer
from rrn.protocol.envelope import Event, open_envelope, verify_event
from rrn.protocol.errors import ProtocolError, Reason
from rrn.protocol.roster import decode_roster

__all__ = ["WORKERS", "Checked", "Verifier", "pool_is_safe"]

logger = logging.getLogger(__name__)


def pool_is_safe(version: tuple[int, int, int]) -> bool:
    """Whether this Python's ProcessPoolExecutor raises, rather than hangs, when a worker
    dies while a chunk is being written to it (gh-94777: 3.11.5, 3.12.0), and cannot
    deadlock on a full wake-up pipe (gh-105829: 3.11.6, 3.12.1). Debian 12 ships 3.11.2:
    there a worker killed during a catch-up would stop verification, and ingest, for
    good, with the node otherwise alive."""
    return (3, 11, 6) <= version < (3, 12) or version >= (3, 12, 1)


_POOL_SAFE: Final = pool_is_safe(sys.version_info[:3])
#: Worker processes; none (checks in the daemon: slower catch-ups, nothing that can hang)
#: on a Python whose process pool can hang.
WORKERS: Final = max(1, min(4, os.cpu_count() or 1)) if _POOL_SAFE else 1
#: How much lower than the daemon's the workers' scheduling priority is (nice(2)).
_WORKER_NICENESS: Final = 10
#: Below this many envelopes a batch is verified inline.
_INLINE_MAX: Final = 64

#: The result for one envelope: the verified event, or why it was refused.
Checked = Event | ProtocolError

_worker_net: bytes = b""
_worker_keyring: Keyring | None = None


def _init_worker(net: bytes, roster_bytes: bytes, rotations: tuple[Rotation, ...]) -> None:
    global _worker_net, _worker_keyring  # noqa: PLW0603 - per-process state of a pool worker
    # Below the event loop's priority: the checks of a catch-up kept every core busy,
    # and the loop, which answers requests and heartbeats, waited for the CPU (a
    # garbage-collector pass of 40 ms CPU took 200 ms on a 2-core host).
    os.nice(_WORKER_NICENESS)
    _worker_net = net
    _worker_keyring = Keyring(decode_roster(roster_bytes), rotations)


def _check_chunk(raws: Sequence[bytes]) -> list[Reason | None]:
    """In a worker: the rejection reason of each envelope, None if it verifies."""
    assert _worker_keyring is not None
    reasons: list[Reason | None] = []
    for raw in raws:
        try:
            verify_event(raw, net=_worker_net, resolve=_worker_keyring.resolve)
            reasons.append(None)
        except ProtocolError as exc:
            reasons.append(exc.reason)
    return reasons


class Verifier:
    """Verifies envelopes against one network's roster; use `close()` when done."""

    def __init__(
        self,
        net: bytes,
        roster_bytes: bytes,
        keyring: Keyring,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        """`on_lost` is called each time a worker process died (its batch is then
        checked in this process)."""
        self._net = net
        self._roster_bytes = roster_bytes
        self._keyring = keyring
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._on_lost = on_lost
        if not _POOL_SAFE:
            logger.warning(
                "Python %s's process pool can hang when a worker dies (gh-94777, "
                "gh-105829): signatures are checked in the daemon, and a catch-up is "
                "slower; Python 3.11.6 or later (3.12.1 or later) checks them in workers",
                platform.python_version(),
            )

    async def verify(self, raws: Sequence[bytes]) -> list[Checked]:
        """Verify envelopes; results in input order."""
        if len(raws) < _INLINE_MAX:
            return [self.verify_one(raw) for raw in raws]
        if WORKERS == 1:  # one CPU, or a pool that could hang: here, yielding as it goes
            return await self._inline(raws)
        pool = self._ensure_pool()
        try:
            reasons = await self._in_workers(pool, raws)
        except BrokenProcessPool:
            # A worker died (the OOM killer, a signal): a node that stopped over it
            # would stop taking alerts. The batches it broke are checked here (two are
            # in flight during a catch-up); the next starts new workers.
            if self._pool is pool:  # the first to find it broken: once per death
                logger.warning("a signature worker process died; starting new workers")
                if self._on_lost is not None:
                    self._on_lost()
                self._drop_pool()
            return await self._inline(raws)
        checked: list[Checked] = []
        slicer = Slicer()  # opening a thousand envelopes takes tens of milliseconds
        for raw, reason in zip(raws, reasons, strict=True):
            refused = None if reason is None else ProtocolError(f"refused: {reason}", reason)
            checked.append(open_envelope(raw) if refused is None else refused)
            await slicer.step()
        return checked

    async def _in_workers(
        self, pool: concurrent.futures.ProcessPoolExecutor, raws: Sequence[bytes]
    ) -> list[Reason | None]:
        loop = asyncio.get_running_loop()
        size = -(-len(raws) // WORKERS)
        chunks = [raws[at : at + size] for at in range(0, len(raws), size)]
        parts = await asyncio.gather(*(loop.run_in_executor(pool, _check_chunk, c) for c in chunks))
        return [r for part in parts for r in part]

    async def _inline(self, raws: Sequence[bytes]) -> list[Checked]:
        checked: list[Checked] = []
        slicer = Slicer()
        for raw in raws:
            checked.append(self.verify_one(raw))
            await slicer.step()
        return checked

    def update(self, net: bytes, roster_bytes: bytes, keyring: Keyring) -> None:
        """Verify against a new roster or keyring from now on (workers restart with it)."""
        self._net, self._roster_bytes, self._keyring = net, roster_bytes, keyring
        self._drop_pool()

    def _drop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    async def warm_up(self) -> None:
        """Start the worker processes now rather than on the first large batch."""
        if WORKERS == 1:
            return
        pool = self._ensure_pool()
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(pool, _check_chunk, []) for _ in range(WORKERS))
        )

    def verify_one(self, raw: bytes) -> Checked:
        """Verify one envelope inline, against the keyring of now."""
        try:
            return verify_event(raw, net=self._net, resolve=self._keyring.resolve)
        except ProtocolError as exc:
            return exc

    def _ensure_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                WORKERS,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self._net, self._roster_bytes, self._keyring.rotations),
            )
        return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any were started (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
