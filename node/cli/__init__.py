"""The `rrn` command line: argument parsing, each command mapped to the running
daemon (over the control channel) or to offline work on the home, and output.

May import every room of node/.
"""

__all__: list[str] = []
