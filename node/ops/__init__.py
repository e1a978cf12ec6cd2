"""The operations a node can be asked to perform, with their argument and result
types: what the CLI asks over the control channel (and the console and
integrations will ask too).

May import (rooms of node/): home, store, control, pipeline, peering, membership,
alerting.
"""

__all__: list[str] = []
