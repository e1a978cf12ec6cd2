"""Local networks for trying and testing (`rrn devnet`), and `make demo`.

May import (rooms of node/): home, store, natsd, control, membership, console.
"""

__all__: list[str] = []
