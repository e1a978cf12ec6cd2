"""Which appended events are applied, and the alert facts they carry.

Owns the status of each event of a batch (applied, or kept unapplied: past a
fork, a refused key rotation, a payload that does not decode) and the reading of
an alert event's payload, opening it when it is sealed to this member. A sealed
event not sealed to this member is an opaque link of its chain: kept, counted,
never applied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from rrn.node.pipeline.batch import ChainKey, Work
from rrn.node.pipeline.metrics import IngestMetrics
from rrn.node.pipeline.own import Identity
from rrn.node.store.db import Store
from rrn.node.store.rows import APPLIED, UNAPPLIED
from rrn.protocol.envelope import Event
from rrn.protocol.errors import ProtocolError, Reason
from rrn.protocol.kinds import FactPayload, unseal
from rrn.protocol.sealing import SealError

__all__ = ["Fact", "alert_fact", "applied_facts", "stored_facts"]

#: An alert or check-in event, its payload (opened if it was sealed) and the audience it
#: was sealed to.
Fact = tuple[Event, FactPayload, tuple[str, ...]]


def alert_fact(
    event: Event, me: Identity, net: bytes, *, metrics: IngestMetrics | None
) -> tuple[FactPayload, tuple[str, ...]] | None:
    """An event's alert or check-in payload and the audience it was sealed to, if it is one.

    An opaque event is counted in `metrics` (None on a rebuild: counted once
    already). Raises ProtocolError when the payload is bad.
    """
    assert event.payload is not None
    try:
        _, payload, audience = unseal(event.header, event.payload, me.org, me.enc, net)
    except SealError as exc:
        if exc.reason is not Reason.NOT_AUTHORISED:
            raise
        if metrics is not None:
            metrics.opaque.inc()
        return None
    return (payload, audience) if isinstance(payload, FactPayload) else None


async def applied_facts(
    work: Work,
    frozen: dict[ChainKey, int],
    me: Identity,
    net: bytes,
    *,
    metrics: IngestMetrics,
    now_ms: int,
) -> list[Fact]:
    """Give each appended event of the batch its status; the alert facts to apply
    (opening sealed payloads, handing the loop back as the batch's slicer says)."""
    facts: list[Fact] = []
    for event, _, _ in work.appended:
        await work.slicer.step()
        status = APPLIED
        cut = frozen.get((event.header.origin, event.header.epoch))
        if cut is not None and event.header.seq > cut:
            status = UNAPPLIED
        elif event.id in work.refused:
            status = UNAPPLIED
            metrics.unapplied.labels(reason=str(work.refused[event.id])).inc()
        elif event.payload is not None:
            try:
                found = alert_fact(event, me, net, metrics=metrics)
            except ProtocolError as exc:
                status = UNAPPLIED
                metrics.unapplied.labels(reason=str(exc.reason)).inc()
            else:
                if found is not None:
                    facts.append((event, *found))
        if status != APPLIED:
            work.quiet.add(event.id)
        work.batch.events.append((event, status, now_ms))
    return facts


async def stored_facts(store: Store, me: Identity, net: bytes) -> AsyncIterator[Fact]:
    """The alert facts of every applied event in the store, in chain order (a rebuild)."""
    async for row in store.iter_events(applied_only=True):
        event = row.event
        if event.payload is None:
            continue
        try:
            found = alert_fact(event, me, net, metrics=None)
        except ProtocolError:
            continue
        if found is not None:
            yield (event, *found)
