"""The responder console: the node's web page for its organisation's people
(docs/CONSOLE.md). Served by the daemon in its own event loop; people, roles,
sessions and the record of who did what live in HOME/console.db; every action is
one of the node's operations (node/ops/), called as the CLI calls it.

May import (rooms of node/): home, control, alerting, ops.
"""

__all__: list[str] = []
