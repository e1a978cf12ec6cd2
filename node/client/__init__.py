"""The integrators' client: a node's feeds, verified, in a few lines of Python.

    from rrn.node.client import connect

    async with connect(url, user="case-desk", password=secret, network=net_id) as node:
        async for change in node.alerts():
            print(change.id, change.alert.status if change.alert else "deleted")

`user` and `password` are an integrator account (`rrn integrator add`). `alerts()`
yields every alert's state now, then every change; `events()` every verified event
(checked against the roster chain from the network id you give, never trusted
for where it came from), from where this integrator's consumer left off;
`notices()` every notice, likewise. Each survives quiet periods and
reconnections. docs/OPERATIONS.md ("Integrators") and docs/schemas/ describe
the documents.

May import (rooms of node/): alerting, ops, integrations, home.
"""

from rrn.node.client.feeds import AlertChange, NodeFeeds, VerifiedEvent, connect

__all__ = ["AlertChange", "NodeFeeds", "VerifiedEvent", "connect"]
