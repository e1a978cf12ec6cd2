"""`python -m rrn.node.cli`: the `rrn` command."""

import sys

from rrn.node.cli.main import main

sys.exit(main())
