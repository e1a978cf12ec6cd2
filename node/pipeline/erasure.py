"""What a tombstone deletes: the payloads of an alert its origin erased, everywhere.

Owns the choice of events whose payloads go once a batch's alert facts are
applied (their headers stay, so every chain still verifies).
"""

from __future__ import annotations

from rrn.node.pipeline.batch import Work
from rrn.node.store.db import Store
from rrn.node.store.rows import Position
from rrn.protocol.alerts import AlertRaised, AlertTombstoned
from rrn.protocol.envelope import Event
from rrn.protocol.kinds import AlertPayload, FactPayload, Kind

__all__ = ["erased_payloads"]

Fact = tuple[Event, FactPayload, tuple[str, ...]]


async def erased_payloads(facts: list[Fact], work: Work, store: Store) -> dict[bytes, Position]:
    """Events whose payloads go, after the facts of this batch were applied, by id: where
    each is in its chain.

    Every fact of an alert its origin deleted (the alert's earlier events,
    and any arriving later), and the events a tombstone lists that are its
    signer's own alert events (so that members the alert was never shown to
    delete the opaque events they hold). Never a tombstone itself.
    """
    states = work.batch.alerts
    erased = {a for a, s in states.items() if s.erased is not None}
    before = {a: old for old, new in work.changes if (a := new.alert) in erased}
    drop: dict[bytes, Position] = {}
    for alert in erased:
        old = before.get(alert)
        if old is not None:
            keep = {t.pos.id for t in old.tombstones} | {p.id for p in old.plan_ends}
            # a plan's end serves every slot
            drop |= {p.id: (p.org, p.epoch, p.seq) for p in old.positions() if p.id not in keep}
    tombs = [(e, p) for e, p, _ in facts if isinstance(p, AlertTombstoned)]
    for event, payload, _ in facts:
        if not isinstance(payload, AlertPayload) or isinstance(payload, AlertTombstoned):
            continue  # a check-in event serves every slot of its plan: it stays
        if (event.id if isinstance(payload, AlertRaised) else payload.alert) in erased:
            drop[event.id] = _position(event)
    if tombs:
        listed = {i for _, t in tombs for i in t.events}
        in_batch = {e.id: (_position(e), e.header.kind) for e, _, _ in work.appended}
        stored = await store.find_events(listed - in_batch.keys())
        known = {**{i: ((p.origin, p.epoch, p.seq), p.kind) for i, p in stored.items()}, **in_batch}
        for event, tomb in tombs:
            for eid in tomb.events:
                if (found := known.get(eid)) is None:
                    continue
                place, kind = found
                if place[0] == event.header.origin and _is_alert_kind(kind):
                    drop[eid] = place
    for event, _ in tombs:
        drop.pop(event.id, None)
    return dict(sorted(drop.items()))


def _position(event: Event) -> Position:
    return (event.header.origin, event.header.epoch, event.header.seq)


def _is_alert_kind(kind: str) -> bool:
    """Kinds whose payloads a tombstone may delete: alert and check-in events, whole or
    sealed (a check-in plan holds a defender's sealed details)."""
    return (
        kind == str(Kind.SEALED)
        or kind.startswith("checkin.")
        or (kind.startswith("alert.") and kind != str(Kind.ALERT_TOMBSTONED))
    )
