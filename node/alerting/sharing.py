"""Sealed details on a node: opening what is sealed to us, and resealing to claimants.

Owns the node's use of protocol/sealing.py. Details are never stored in the
clear: the blobs stay in their events' payloads, and `open_details` opens them
on demand (for `rrn alert show`) with this member's X25519 key.

The originating node passes the details to a member that claims its alert,
when that member's role is `responder`: it reseals them to the claimant in an
`alert.shared` event (a new content key, bound to the new event). Members with
other roles (company, embassy, investor, observer) get nothing automatically;
`rrn alert share` lets the origin share on purpose.
"""

from __future__ import annotations

import asyncio
import logging

from rrn.federation.alert_view import AlertView, view
from rrn.federation.alerts import AlertState, Pos
from rrn.node.pipeline.ingest import AlertChanges, Ingestor, SealFor
from rrn.node.store.db import Store
from rrn.protocol.alerts import AlertRaised, AlertShared
from rrn.protocol.checkins import CheckinPlanned
from rrn.protocol.errors import ProtocolError, Reason, RrnError
from rrn.protocol.kinds import unseal
from rrn.protocol.roster import Role
from rrn.protocol.sealing import (
    Details,
    OpenKeys,
    Position,
    SealError,
    decode_details,
    decode_sealed,
    open_sealed,
)

__all__ = ["Sharer", "open_details", "open_plaintext", "share"]

logger = logging.getLogger(__name__)


def _sealed_to_me(state: AlertState, me: str) -> list[Pos]:
    """Events of the alert holding a blob for `me`, newest first."""
    found = [s.pos for s in state.shares if me in s.to]
    if state.raised is not None and me in state.raised.sealed_to:
        found.append(state.raised.pos)
    return sorted(found, reverse=True)


async def open_plaintext(
    store: Store, state: AlertState, me: str, key: OpenKeys, net: bytes
) -> bytes | None:
    """The sealed details' plaintext, if a blob sealed to `me` is held and opens."""
    for pos in _sealed_to_me(state, me):
        event = await store.event_at(pos.org, pos.epoch, pos.seq)
        if event is None or event.payload is None:
            continue  # not held, or its payload was deleted
        try:
            _, payload, _ = unseal(event.header, event.payload, me, key, net)
            if isinstance(payload, CheckinPlanned):  # a missed check-in's: its plan's
                payload = payload.alert
            if not isinstance(payload, AlertRaised | AlertShared) or payload.sealed is None:
                continue
            at = Position(net, pos.org, pos.epoch, pos.seq)
            return open_sealed(decode_sealed(payload.sealed), me, key, at)
        except ProtocolError as exc:
            logger.warning(
                "sealed details of alert %s do not open: %s", state.alert.hex()[:12], exc.reason
            )
    return None


async def open_details(
    store: Store, state: AlertState, me: str, key: OpenKeys, net: bytes
) -> Details | None:
    """The sealed details, opened, if this member may read them."""
    plaintext = await open_plaintext(store, state, me, key, net)
    return decode_details(plaintext) if plaintext is not None else None


class Sharer:
    """Reseals the details of this member's alerts to responders that claim them."""

    def __init__(self, *, ingestor: Ingestor, store: Store, key: OpenKeys) -> None:
        self.ingestor = ingestor
        self.store = store
        self.key = key
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()

    def alerts_changed(self, changes: AlertChanges) -> None:
        """Committed alert changes: queue our alerts with a claimant not yet shared to."""
        for state, v in changes or []:
            if v is not None and v.origin == self.ingestor.me.org and self._owed(v):
                self._queue.put_nowait(state.alert)

    def _owed(self, v: AlertView) -> list[str]:
        """Claimants that are responders and cannot read the details yet."""
        if not v.sealed_to:
            return []
        roster = self.ingestor.network.roster
        owed = []
        for org in v.claimants:
            member = roster.member(org)
            if org not in v.sealed_to and member is not None and Role.RESPONDER in member.roles:
                owed.append(org)
        return owed

    async def run(self) -> None:
        """Share as claims arrive, until cancelled."""
        while True:
            alert = await self._queue.get()
            try:
                await self._share(alert)
            except RrnError as exc:
                logger.warning("could not share sealed details with a claimant: %s", exc)

    async def _share(self, alert: bytes) -> None:
        state = await self.ingestor.projection.state(alert)  # now, not when queued
        v = view(state, self.ingestor.network.authority) if state is not None else None
        owed = self._owed(v) if v is not None else []
        if state is None or not owed:
            return  # shared meanwhile
        await share(self.ingestor, self.store, self.key, state, tuple(owed))


async def share(
    ingestor: Ingestor,
    store: Store,
    key: OpenKeys,
    state: AlertState,
    to: tuple[str, ...],
) -> None:
    """Reseal the alert's details to `to` in an alert.shared event."""
    me = ingestor.me.org
    plaintext = await open_plaintext(store, state, me, key, ingestor.network.net)
    if plaintext is None:
        raise SealError(
            "this member holds no sealed details of that alert to share", Reason.NOT_AUTHORISED
        )
    placeholder = AlertShared(alert=state.alert, sealed=b"")  # filled in when signed
    await ingestor.append(placeholder, seal=SealFor(plaintext, to))
    logger.info("shared the sealed details of alert %s with %s", state.alert.hex()[:12], to)
