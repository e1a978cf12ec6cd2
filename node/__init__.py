"""rrn node: one organisation's daemon, its store, its NATS and its CLI.

Imports protocol/ and federation/; nothing imports node/. Its rooms, by purpose,
are its subpackages; each one's docstring says what lives there and which other
rooms it may import (checked by tests/test_architecture.py; the map is
docs/ARCHITECTURE.md).
"""

from rrn.node.daemon.node import Node
from rrn.node.home.layout import Home, open_home
from rrn.node.membership.init import init_home

__all__ = ["Home", "Node", "init_home", "open_home"]
