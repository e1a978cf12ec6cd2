"""The local control channel between the CLI and its own daemon: the wire
format and its authentication, sealed transit of details, the daemon's server
and the CLI's client (with its own few lines of the NATS protocol, wire.py).

May import (rooms of node/): home, natsd.
"""

__all__: list[str] = []
