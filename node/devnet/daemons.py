"""The devnet's daemons as processes: start one in the background and wait until it
is ready, stop it (hard if it hangs), and collect every exit so none is left a
zombie. A daemon runs in its own session; the CLI that started it may exit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from rrn.node.control.client import pid_alive
from rrn.protocol.errors import ConfigError

#: How long a daemon may take to become ready.
_READY_S: Final = 60.0
#: How long a daemon may take to stop after SIGTERM (its own grace period is 30 s).
_STOP_S: Final = 45.0

#: Daemons this process started, kept so they can be reaped when stopped.
_children: dict[int, subprocess.Popen[bytes]] = {}


def start_daemon(
    home: Path, log_path: Path, *, enter: list[str], env: dict[str, str] | None
) -> int:
    """Start `rrn run` for `home` (inside `enter`, a namespace's command prefix) unless
    it runs; its pid once it is ready."""
    pid = running_pid(home)
    if pid is not None:
        return pid
    _sweep()  # before the kernel can hand an ended child's pid to the new one
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [*enter, sys.executable, "-m", "rrn.node.cli", "run", "--home", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
        )
    _children[proc.pid] = proc
    deadline = time.monotonic() + _READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"{home.name} did not start; see {log_path}")
        if running_pid(home) == proc.pid:
            return proc.pid
        time.sleep(0.05)
    raise ConfigError(f"{home.name} did not become ready within {_READY_S:.0f} s")


def stop_daemon(home: Path, log_path: Path, *, kill: bool, grace: float = _STOP_S) -> bool:
    """SIGTERM the daemon of `home` (or SIGKILL it and its nats-server); False if it
    was not running. One still running after `grace` seconds is killed, its tasks' stacks
    written to its log first, and ConfigError says so."""
    pid = running_pid(home)
    if pid is None:
        return False
    if not kill:
        os.kill(pid, signal.SIGTERM)
        _wait_gone(pid, grace)
        if not pid_alive(pid):
            _reap(pid)
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)  # its tasks' stacks, to the log
        time.sleep(1)
    server = _server_pid(home)
    for target in (pid, server):
        if target is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)
    _wait_gone(pid)
    if server is not None:
        _wait_gone(server)
    _reap(pid)
    if not kill:
        raise ConfigError(
            f"{home.name} did not stop within {grace:.0f} s and was killed; see {log_path}"
        )
    return True


def running_pid(home: Path) -> int | None:
    """The pid of the daemon running for `home`, if any."""
    try:
        pid = int(json.loads((home / "run" / "daemon.json").read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if pid_alive(pid) else None


def log_tail(path: Path, lines: int) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _reap(pid: int) -> None:
    """Collect the exit of a daemon this process started (killing one that hangs on)."""
    proc = _children.pop(pid, None)
    if proc is not None:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _sweep()


def _sweep() -> None:
    """Collect the children that ended some other way (`rrn stop`, a signal), so none
    is left a zombie and no pid the kernel hands out again meets a stale entry."""
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            del _children[pid]


def _server_pid(home: Path) -> int | None:
    try:
        return int((home / "run" / "nats-server.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _wait_gone(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
