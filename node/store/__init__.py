"""Storage: the sqlite store of the signed history, chain heads, rosters and
projections, its migrations, and the network its stored rosters prove.

May import (rooms of node/): home.
"""

__all__: list[str] = []
