"""Local networks for trying and testing (`rrn devnet`), and `make demo`.

May import node.home, node.store, node.natsd, node.control and node.membership.
"""

__all__: list[str] = []
