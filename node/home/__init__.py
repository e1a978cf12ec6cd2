"""A node's ground: its home directory on disk, configuration, secret keys,
clock and logging.

May import (rooms of node/): none (protocol and federation only).
"""

__all__: list[str] = []
