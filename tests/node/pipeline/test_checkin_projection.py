"""Check-in events through a real pipeline and store: a slot's alert made of misses
that came before their plan is raised when the plan comes, even after a restart (the
projection then finds those misses in the store, not in memory)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.federation.alerts import AlertStatus
from rrn.protocol.checkins import (
    CheckinMissed,
    CheckinPlanned,
    DuressMap,
    commitment,
    missed_alert_id,
    new_code,
)
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event
from rrn.protocol.sealing import Position, encode_sealed, seal
from tests.node.conftest import Pipeline, running_pipeline
from tests.support import Chain, Net, raised

GRACE = 600_000
HOUR = 3_600_000


def _plan(tn: Net, chain: Chain, slots: int = 2) -> Event:
    """A plan whose first slot is an hour after the chain's last event."""
    start = chain.wall_ms + HOUR
    duress = seal(
        encode(DuressMap([1] * slots)),
        {chain.origin: X25519PrivateKey.generate().public_key()},
        Position(tn.net, chain.origin, chain.epoch, chain.seq + 1),
    )
    codes = [(new_code(), new_code()) for _ in range(slots)]
    return chain.next(
        CheckinPlanned(
            alert=raised(1),
            slots=[start + k * HOUR for k in range(slots)],
            grace_ms=GRACE,
            codes=[[commitment(c), commitment(d)] for c, d in codes],
            duress=encode_sealed(duress),
        )
    )


async def _submit(p: Pipeline, *events: Event) -> None:
    for event in events:
        await (await p.ingestor.submit(event.envelope()))


async def test_misses_stored_before_their_plan_become_its_slot_alert_after_a_restart(
    tmp_path: Path, tn: Net
) -> None:
    db = tmp_path / "store.db"
    nairobi, jakarta = Chain(tn, "nairobi-dl"), Chain(tn, "jakarta-pb")
    first_slot = nairobi.wall_ms + HOUR
    plan = _plan(tn, nairobi)
    due = first_slot + GRACE
    miss = jakarta.raw("checkin.missed", encode(CheckinMissed(plan=plan.id, slot=0)), wall_ms=due)
    alert = missed_alert_id(plan.id, 0)
    async with running_pipeline(db, tn) as p:
        p.clock.set(due + 60_000)
        await _submit(p, miss)
        assert await p.store.alert_ids_present([alert]) == {alert}
        assert (
            await p.store.alerts(statuses=None, limit=10, authority=p.ingestor.network.authority)
            == []
        )
    async with running_pipeline(db, tn) as p:
        p.clock.set(due + 60_000)
        await _submit(p, plan)
        (v,) = await p.store.alerts(statuses=None, limit=10, authority=p.ingestor.network.authority)
    assert (v.alert, v.origin, v.raised_ms, v.status) == (
        alert,
        "nairobi-dl",
        due,
        AlertStatus.OPEN,
    )
