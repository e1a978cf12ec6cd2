"""The processes that check a catch-up's signatures run below the daemon's priority,
so the event loop (requests, heartbeats, the pipeline itself) gets the CPU when it
needs it, and they still verify (real signatures, real worker processes)."""

from __future__ import annotations

import asyncio
import os
import time

from rrn.federation.keyring import Keyring
from rrn.node.pipeline.verify import Verifier
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
