"""The running node: its lifecycle (open, run, reload, stop), the wiring of the
rooms below into one daemon, its NATS connection and /metrics.

May import every room of node/ except node.cli and node.devnet.
"""

__all__: list[str] = []
