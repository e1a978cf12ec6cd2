"""Founding and joining a network, and roster changes: member cards, roster
documents, adoption, `rrn init`, the roster keeper of a running node and the
escalation policy as operators write it.

May import (rooms of node/): home, store, pipeline.
"""

__all__: list[str] = []
