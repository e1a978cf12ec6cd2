"""Key rotations through the ingest pipeline over a real sqlite store: in any arrival
order, across restarts, and for this node's own chain."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.node.pipeline.ingest import Outcome
from rrn.protocol.envelope import Event
from rrn.protocol.membership import sign_rotation
from tests.node.conftest import Pipeline, running_pipeline
from tests.support import Chain, Net, key, raised

NAIROBI = "nairobi-dl"
ENC = X25519PrivateKey.from_private_bytes(bytes([5]) * 32).public_key().public_bytes_raw()


def _rotated_chain(tn: Net) -> tuple[list[Event], Event]:
    """Nairobi: seq 1 (epoch 1), the rotation at seq 2, then seq 1-2 of epoch 2; and an
    event its old key signed after the rotation."""
    chain = Chain(tn, NAIROBI)
    first = chain.next(raised(1))
    new = key("nairobi-epoch-2")
    rotation = chain.next(
        sign_rotation(new, net=tn.net, origin=NAIROBI, from_epoch=1, seq=2, epoch=2, enc_pub=ENC)
    )
    stolen = chain.next(raised(9))  # old key, seq 3 of epoch 1
    tn.keys[NAIROBI], chain.epoch, chain.seq, chain.prev = new, 2, 0, None
    return [first, rotation, chain.next(raised(2)), chain.next(raised(3))], stolen


async def _all(p: Pipeline, events: list[Event]) -> list[Outcome]:
    """Submit at once, so they are verified together in one batch."""
    futures = [await p.ingestor.submit(e.envelope(), peer=NAIROBI) for e in events]
    results = await asyncio.gather(*futures)
    assert all(isinstance(r, Outcome) for r in results)
    return [r for r in results if isinstance(r, Outcome)]


async def test_a_rotation_is_followed_in_one_batch_and_ends_the_old_epoch(
    tmp_path: Path, tn: Net
) -> None:
    events, stolen = _rotated_chain(tn)
    db = tmp_path / "s.db"
    async with running_pipeline(db, tn) as p:
        # The new epoch's events were checked before the rotation was known: again after.
        outcomes = await _all(p, [*events, stolen])
        assert [o.verdict for o in outcomes] == ["appended"] * 4 + ["rejected"]
        assert outcomes[-1].reason is not None and outcomes[-1].reason.value == "epoch_cut_off"
        assert p.ingestor.heads[NAIROBI, 1].seq == 2 and p.ingestor.heads[NAIROBI, 2].seq == 2
        assert p.ingestor.network.keyring.latest(NAIROBI) == 2
    async with running_pipeline(db, tn) as p:  # the keyring comes back from the store
        assert p.ingestor.network.keyring.latest(NAIROBI) == 2
        chain = Chain(tn, NAIROBI, epoch=2)
        chain.seq, chain.prev = 2, events[-1].id
        assert (await _all(p, [chain.next(raised(4))]))[0].verdict == "appended"
        assert (await _all(p, [stolen]))[0].verdict == "rejected"


async def test_what_the_old_key_signed_beyond_the_rotation_is_dropped_when_held(
    tmp_path: Path, tn: Net
) -> None:
    events, stolen = _rotated_chain(tn)
    async with running_pipeline(tmp_path / "s.db", tn) as p:
        assert [o.verdict for o in await _all(p, [stolen])] == ["held"]  # ahead of a gap
        await _all(p, events[:2])
        assert await p.store.pending() == [], "the held event is void once the epoch ended"
        assert p.sample("rrn_ingest_rejected_total", reason="epoch_cut_off") == 1
        assert p.ingestor.heads[NAIROBI, 1].seq == 2


async def test_this_nodes_own_rotation_and_one_restored_by_sync(tmp_path: Path, tn: Net) -> None:
    new = key("lima-epoch-2")
    async with running_pipeline(tmp_path / "a.db", tn) as p:
        before = await p.ingestor.append(raised(0))
        rotation = await p.ingestor.rotate(2, new, ENC)
        after = await p.ingestor.append(raised(1))
        assert (rotation.header.epoch, rotation.header.seq) == (1, 2)
        assert (after.header.epoch, after.header.seq) == (2, 1), "the next event, new key"
        assert p.ingestor.me.key_of(1) is not None, "the old key stays for roster approvals"
    history = [before, rotation, after]
    # A store restored from an old backup gets its own rotation back from peers: it
    # follows it with the new key if the home holds it, and refuses to sign otherwise.
    async with running_pipeline(tmp_path / "b.db", tn, signing={2: new}) as p:
        await _all(p, history)
        assert p.ingestor.me.epoch == 2
        assert (await p.ingestor.append(raised(2))).header.seq == 2
    async with running_pipeline(tmp_path / "c.db", tn) as p:
        await _all(p, history)
        assert p.ingestor.me.epoch == 1
        assert "sign-2.pem" in (p.ingestor.appends_blocked or "")
