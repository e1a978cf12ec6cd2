"""The embedded nats-server: its configuration rendered from config and roster,
its process, nkeys and the credentials of each leafnode link.

May import (rooms of node/): home.
"""

from typing import Final

__all__ = ["DAEMON_USER"]

#: The NATS user the daemon and the CLI authenticate as on the embedded server (here,
#: not in conf.py, so that a CLI command does not load the server's configuration).
DAEMON_USER: Final = "rrn"
