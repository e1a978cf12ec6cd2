"""rrn wire protocol."""
