"""rrn node: one organisation's daemon, its store, its NATS and its CLI.

Imports protocol/ and federation/; nothing imports node/. Its rooms, by purpose,
are its subpackages; each one's docstring says what lives there and which other
rooms it may import (checked by tests/test_architecture.py; the map is
docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rrn.protocol.lazy import lazy_names

if TYPE_CHECKING:
    from rrn.node.daemon.node import Node
    from rrn.node.home.layout import Home, open_home
    from rrn.node.membership.init import init_home

__all__ = ["Home", "Node", "init_home", "open_home"]

#: Where each name lives: loaded on first use, so that importing a room (the CLI
#: above all, whose start-up every command pays) does not load the whole daemon.
_LAZY = {
    "Node": "rrn.node.daemon.node",
    "Home": "rrn.node.home.layout",
    "open_home": "rrn.node.home.layout",
    "init_home": "rrn.node.membership.init",
}


__getattr__ = lazy_names(__name__, _LAZY)
