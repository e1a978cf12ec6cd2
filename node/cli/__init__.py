"""The `rrn` command line: argument parsing, each command mapped to the running
daemon (over the control channel) or to offline work on the home, and output.

May import (rooms of node/): home, store, natsd, control, pipeline, peering, membership,
alerting, ops, integrations, client, console, daemon, devnet, report.
"""

__all__: list[str] = []
