"""The processes that check a catch-up's signatures run below the daemon's priority,
so the event loop (requests, heartbeats, the pipeline itself) gets the CPU when it
needs it, and they still verify (real signatures, real worker processes)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import pytest

from rrn.federation.keyring import Keyring
from rrn.node.pipeline import verify
from rrn.node.pipeline.verify import Verifier, pool_is_safe
from rrn.protocol.envelope import Event
from tests.support import Chain, Net, raised


async def test_signature_workers_run_below_the_daemons_priority_and_verify(tn: Net) -> None:
    verifier = Verifier(tn.net, tn.roster_bytes, Keyring(tn.roster))
    try:
        chain = Chain(tn, "nairobi-dl")
        raws = [chain.next(raised(i)).envelope() for i in range(200)]  # past the inline size
        raws[7] = raws[7][:-1] + bytes([raws[7][-1] ^ 1])  # a flipped bit
        checked = await verifier.verify(raws)
        workers = list(verifier._pool._processes) if verifier._pool is not None else []
        assert workers, "a batch this size goes to worker processes"
        lowered = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
        deadline = time.monotonic() + 30  # a worker lowers itself as it starts
        while any(os.getpriority(os.PRIO_PROCESS, pid) < lowered for pid in workers):
            assert time.monotonic() < deadline, "a worker runs at the daemon's priority"
            await asyncio.sleep(0.05)
        assert [isinstance(c, Event) for c in checked] == [i != 7 for i in range(200)]
    finally:
        verifier.close()


async def test_a_worker_killed_does_not_stop_the_checks_and_new_workers_start(tn: Net) -> None:
    lost: list[int] = []
    verifier = Verifier(tn.net, tn.roster_bytes, Keyring(tn.roster), lambda: lost.append(1))
    try:
        chain = Chain(tn, "nairobi-dl")
        raws = [chain.next(raised(i)).envelope() for i in range(300)]
        first, second, third = raws[:100], raws[100:200], raws[200:]
        second[3] = second[3][:-1] + bytes([second[3][-1] ^ 1])  # a flipped bit
        assert all(isinstance(c, Event) for c in await verifier.verify(first))
        assert verifier._pool is not None
        victim = next(iter(verifier._pool._processes))
        os.kill(victim, signal.SIGKILL)  # as the OOM killer would
        deadline = time.monotonic() + 30
        while verifier._pool is not None and not verifier._pool._broken:
            assert time.monotonic() < deadline, "the pool never saw its worker die"
            await asyncio.sleep(0.05)
        # Two batches in flight, as in a catch-up: both checked, the death counted once.
        checked, again = await asyncio.gather(verifier.verify(second), verifier.verify(first))
        assert [isinstance(c, Event) for c in checked] == [i != 3 for i in range(100)]
        assert all(isinstance(c, Event) for c in again)
        assert lost == [1], "the death is counted once"
        assert all(isinstance(c, Event) for c in await verifier.verify(third))
        assert verifier._pool is not None and victim not in verifier._pool._processes
        assert lost == [1], "the new workers checked the next batch"
    finally:
        verifier.close()


def test_worker_processes_only_on_a_python_whose_pool_cannot_hang() -> None:
    # gh-94777 (a worker dying mid-write hangs the pool: fixed in 3.11.5 and 3.12.0)
    # and gh-105829 (a full wake-up pipe deadlocks it: 3.11.6 and 3.12.1).
    assert not pool_is_safe((3, 11, 2))  # Debian 12's python3
    assert not pool_is_safe((3, 11, 5))
    assert pool_is_safe((3, 11, 6)) and pool_is_safe((3, 11, 7))
    assert not pool_is_safe((3, 12, 0))
    assert pool_is_safe((3, 12, 1)) and pool_is_safe((3, 13, 0))
    assert (verify.WORKERS > 1) == (
        pool_is_safe(sys.version_info[:3]) and (os.cpu_count() or 1) > 1
    )


async def test_on_such_a_python_a_catch_up_is_checked_in_the_daemon(
    tn: Net, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(verify, "_POOL_SAFE", False)
    monkeypatch.setattr(verify, "WORKERS", 1)
    verifier = Verifier(tn.net, tn.roster_bytes, Keyring(tn.roster))
    try:
        assert "signatures are checked in the daemon" in caplog.text  # the operator is told
        chain = Chain(tn, "nairobi-dl")
        raws = [chain.next(raised(i)).envelope() for i in range(2000)]  # a sync page
        raws[9] = raws[9][:-1] + bytes([raws[9][-1] ^ 1])
        ticks = 0

        async def beside() -> None:  # what else the event loop runs meanwhile
            nonlocal ticks
            while True:
                await asyncio.sleep(0)
                ticks += 1

        other = asyncio.create_task(beside())
        await asyncio.sleep(0)
        ticks = 0
        checked = await verifier.verify(raws)
        other.cancel()
        assert verifier._pool is None, "no worker process was started"
        assert [isinstance(c, Event) for c in checked] == [i != 9 for i in range(2000)]
        assert ticks > 0, "a page checked in the daemon lets the event loop run between slices"
    finally:
        verifier.close()
