"""What the node gives the systems its organisation already runs: the integrators'
JetStream feeds (verified events, alert states, notices, the roster chain),
webhooks and Alertmanager.

May import (rooms of node/): home, store, natsd, control, pipeline, alerting, ops.
"""

__all__: list[str] = []
