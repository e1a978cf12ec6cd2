"""The running node: its lifecycle (open, run, reload, stop), the wiring of the
rooms below into one daemon, its NATS connection and /metrics.

May import (rooms of node/): home, store, natsd, control, pipeline, peering, membership,
alerting, ops, integrations, console.
"""

__all__: list[str] = []
