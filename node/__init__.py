"""rrn node: one organisation's daemon, its store, its NATS and its CLI.

Imports protocol/ and federation/; nothing imports node/.
"""

from rrn.node.daemon.node import Node
from rrn.node.home.layout import Home, open_home
from rrn.node.membership.init import init_home

__all__ = ["Home", "Node", "init_home", "open_home"]
