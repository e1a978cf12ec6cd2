"""Reading a node's store for a response report (`rrn report`).

Owns what the report is made from: every alert this node can read, under the rules
of its current roster (authorised facts only), the roster's policy, and the
responders' coverage declarations as they stand at the end of the period. Opens
the store read-only, so it runs beside the daemon or without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from rrn.federation.alert_view import AlertView, derive
from rrn.federation.alerts import AlertState
from rrn.federation.authority import authorise
from rrn.federation.coverage import Shift, shifts
from rrn.node.alerting.coverage import load_declarations
from rrn.node.home.layout import Home
from rrn.node.report.figures import Report, figures
from rrn.node.store.db import Store, open_store
from rrn.node.store.network import Network, load_network
from rrn.protocol.roster import Role

__all__ = ["build_report"]

_CHUNK = 500


async def build_report(home: Home, *, window: tuple[int, int], now_ms: int) -> Report:
    """The report of alerts raised in `window` = [from, to), as this node sees them."""
    async with open_store(home.store_path, readonly=True) as store:
        network = await load_network(store)
        alerts = [pair async for pair in _alerts(store, network)]
        on_duty = await _on_duty(store, network, window)
    steps = {str(u): s for u, s in network.authority.step_s.items()}
    head = (network.net.hex(), home.config.node.org, now_ms)
    return figures(alerts, window=window, steps_s=steps, on_duty=on_duty, head=head)


async def _alerts(store: Store, network: Network) -> AsyncIterator[tuple[AlertState, AlertView]]:
    """(authorised state, view) of every alert with a view here."""
    ids = await store.alert_ids()
    for at in range(0, len(ids), _CHUNK):
        for state in (await store.alert_states(ids[at : at + _CHUNK])).values():
            allowed, _ = authorise(state, network.authority)
            v = derive(allowed)
            if v is not None:
                yield allowed, v


async def _on_duty(store: Store, network: Network, window: tuple[int, int]) -> list[Shift]:
    """Every responder's shifts over the window, as declared by its end."""
    roster = network.roster
    responders = {m.org for m in roster.members if Role.RESPONDER in m.roles}
    declared = (await load_declarations(store, roster.orgs())).at(window[1])
    return [
        s
        for org, decl in sorted(declared.items())
        if org in responders
        for s in shifts(org, decl, *window)
    ]
