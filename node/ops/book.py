"""Alerts as the operations find and change them: by (short) id, as users see them.

Owns what every alert operation needs: resolving a typed id (6+ hex digits) to
one alert, its state and view (with a clear error when it is unknown here or
its origin deleted it), its CLI form with whom it asks now, and signing an event
about it (refusals become one-line errors).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from rrn.federation.alert_view import AlertView, view
from rrn.federation.alerts import OPEN_STATUSES, AlertState
from rrn.node.ops.types import (
    AlertInfo,
    alert_info,
)
from rrn.node.pipeline.ingest import Ingestor, SealFor
from rrn.node.store.db import Store
from rrn.protocol.envelope import Event
from rrn.protocol.errors import ControlError, ProtocolError
from rrn.protocol.kinds import Payload

if TYPE_CHECKING:  # the escalator (NATS, the store) loads only where it runs
    from rrn.node.alerting.escalator import Routing

__all__ = ["OPEN", "AlertBook"]

#: The statuses of open alerts, as the store lists them.
OPEN: Final = sorted(str(s) for s in OPEN_STATUSES)


class AlertBook:
    """Finding alerts and signing events about them, for the operations."""

    def __init__(
        self,
        *,
        ingestor: Ingestor,
        store: Store,
        routing: Callable[[AlertView], Awaitable[Routing]] | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.store = store
        self._routing = routing

    async def append(
        self,
        payload: Payload,
        *,
        seal: SealFor | None = None,
        audience: list[str] | None = None,
    ) -> Event:
        try:
            return await self.ingestor.append(payload, seal=seal, audience=audience)
        except ProtocolError as exc:
            raise ControlError(str(exc)) from exc

    async def resolve(self, ref: str, *, must_be_mine: bool = False) -> bytes:
        """The full id of the alert a (possibly shortened) hex id names."""
        prefix = bytes.fromhex(ref[: len(ref) - len(ref) % 2])
        matches = [
            m for m in await self.store.alert_ids_with_prefix(prefix) if m.hex().startswith(ref)
        ]
        if not matches:
            for hidden in await self.store.alert_ids_with_prefix(prefix, hidden=True):
                if hidden.hex().startswith(ref):
                    await self.known(hidden)  # says so if its origin deleted it
            raise ControlError(f"no alert with id {ref}")
        if len(matches) > 1:
            raise ControlError(f"{ref} matches {len(matches)} alerts; give more of the id")
        if must_be_mine and (await self.view(matches[0])).origin != self.ingestor.me.org:
            raise ControlError("only the organisation that raised this alert may change it")
        return matches[0]

    async def known(self, alert: bytes) -> tuple[AlertState, AlertView]:
        state = await self.ingestor.projection.committed_state(alert)
        if state is not None and state.erased is not None:
            raise ControlError(
                f"alert {alert.hex()[:12]} was deleted by its origin: its payloads are gone"
            )
        v = view(state, self.ingestor.network.authority) if state is not None else None
        if state is None or v is None:
            raise ControlError(f"alert {alert.hex()[:12]} is not known here yet")
        return state, v

    async def view(self, alert: bytes) -> AlertView:
        return (await self.known(alert))[1]

    async def info(self, alert: bytes) -> AlertInfo:
        return await self.info_of(await self.view(alert))

    async def info_of(self, v: AlertView) -> AlertInfo:
        return alert_info(v, await self._routing(v) if self._routing is not None else None)
