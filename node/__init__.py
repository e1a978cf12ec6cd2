"""rrn node: one organisation's daemon, its store, its NATS and its CLI.

Imports protocol/ and federation/; nothing imports node/.
"""

from rrn.node.daemon import Node
from rrn.node.home import Home, init_home, open_home

__all__ = ["Home", "Node", "init_home", "open_home"]
