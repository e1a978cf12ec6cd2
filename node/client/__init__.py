"""The integrators' client: a node's feeds, verified, in a few lines of Python.

    from rrn.node.client import connect

    async with connect(url, user="integrator", password=secret, network=net_id) as node:
        async for change in node.alerts():
            print(change.id, change.alert.status if change.alert else "deleted")

`alerts()` yields every alert's state now, then every change; `events(durable)`
every verified event (checked against the roster chain from the network id you
give, never trusted for where it came from), from where that durable consumer
left off; `notices(durable)` every notice. Each survives quiet periods and
reconnections. docs/OPERATIONS.md ("Integrators") and docs/schemas/ describe
the documents.

May import (rooms of node/): alerting, ops, integrations.
"""

from rrn.node.client.feeds import AlertChange, NodeFeeds, VerifiedEvent, connect

__all__ = ["AlertChange", "NodeFeeds", "VerifiedEvent", "connect"]
