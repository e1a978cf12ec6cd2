"""Response reports (`rrn report`): what the signed events say about how defenders
were answered; `figures.py` counts, `build.py` reads the store, `render.py` draws
the page (matplotlib, the `report` extra).

May import (rooms of node/): home, store, alerting.
"""

__all__: list[str] = []
