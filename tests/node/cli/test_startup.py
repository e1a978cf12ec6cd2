"""What a command loads before it does anything: every `rrn` command pays it.

Start-up is most of a CLI command's time (docs/BENCHMARKS.md, issue 20: at most
0.2 s). The daemon's machinery, and what only some commands need, stays out of
the commands that do not use it; these tests fail when an import brings it back.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Loaded by none of the commands below: the daemon's event loop and logging, its
#: store and NATS client, thread pools, sealing (AEAD), key serialization, dataclasses.
_NOT_AT_START = (
    "asyncio",
    "logging",
    "concurrent.futures",
    "dataclasses",
    "sqlite3",
    "aiosqlite",
    "nats",
    "rrn.node.store",
    "rrn.node.daemon.node",
    "rrn.protocol.sealing",
    "rrn.node.control.transit",
    "cryptography.hazmat.primitives.ciphers.aead",
    "cryptography.hazmat.primitives.serialization",
)

_PROBE = """
import json, sys
from rrn.node.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded_by(*words: str) -> set[str]:
    """The modules a fresh `rrn WORDS` has loaded when it ends."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *words], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stderr.splitlines()[-1]))


@pytest.mark.parametrize(
    "words",
    [
        ("alert", "list", "--help"),
        ("alert", "list", "--home", "/nonexistent/rrn-home"),
        ("alert", "claim", "x", "--home", "/nonexistent/rrn-home"),
        ("asks", "--home", "/nonexistent/rrn-home"),
        ("status", "--home", "/nonexistent/rrn-home"),
    ],
    ids=" ".join,
)
def test_a_command_starts_without_the_daemon_or_sealing(words: tuple[str, ...]) -> None:
    loaded = loaded_by(*words)
    assert "rrn.node.cli.main" in loaded  # the probe ran the command line
    assert sorted(m for m in _NOT_AT_START if m in loaded) == []


def test_sealing_loads_for_the_commands_that_seal() -> None:
    # The probe is not blind: `alert show` opens sealed details, and gets its keys.
    shown = loaded_by("alert", "show", "x", "--home", "/nonexistent/rrn-home")
    assert {"rrn.protocol.sealing", "cryptography.hazmat.primitives.ciphers.aead"} <= shown
    defenders = loaded_by("defender", "list", "--home", "/nonexistent/rrn-home")
    assert "rrn.protocol.sealing" in defenders  # the defender commands seal identities
