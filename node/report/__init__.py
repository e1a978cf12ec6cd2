"""Response reports: `rrn report` (node/report/figures.py counts, render.py draws)."""
