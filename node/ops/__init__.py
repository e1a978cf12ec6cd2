"""The operations a node can be asked to perform, with their argument and result
types: what the CLI asks over the control channel (and the console and
integrations will ask too).

May import node.home, node.store, node.control, node.pipeline, node.peering,
node.membership and node.alerting.
"""

__all__: list[str] = []
