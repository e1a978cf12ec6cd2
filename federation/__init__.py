"""rrn federation: the network's shared rules."""
