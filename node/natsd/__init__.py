"""The embedded nats-server: its configuration rendered from config and roster,
its process, nkeys and the credentials of each leafnode link.

May import (rooms of node/): home.
"""

__all__: list[str] = []
