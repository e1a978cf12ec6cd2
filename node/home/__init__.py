"""A node's ground: its home directory on disk, configuration, secret keys,
clock and logging.

Imports protocol and federation only; every other room of node/ may import it.
"""

__all__: list[str] = []
