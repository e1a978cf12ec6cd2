"""What a running node does about alerts on its own: escalation and notices to
its people, resealing details to claimants, retention, coverage forecasts.

May import (rooms of node/): home, store, pipeline, peering.
"""

__all__: list[str] = []
