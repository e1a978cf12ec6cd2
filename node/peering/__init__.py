"""The conversation with the other members over NATS: heartbeats and liveness,
live relay, pull sync, fork-proof and roster gossip.

May import (rooms of node/): home, store, pipeline.
"""

__all__: list[str] = []
