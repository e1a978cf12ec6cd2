"""rrn node daemon."""
