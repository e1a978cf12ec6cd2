"""The ingest pipeline, the one writer of a node's history: verify, place in the
chain (append, hold behind a gap, record a fork), store, project alert state.

May import (rooms of node/): home, store.
"""

__all__: list[str] = []
