"""Real processes for integration tests: the `rrn` CLI and `rrn run` daemons."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rrn.node.devnet.devnet import free_port as devnet_free_port
from tests import jsoncheck

RRN = [sys.executable, "-m", "rrn.node.cli"]
ROOT = Path(__file__).resolve().parent.parent


def rrn(
    *args: str | Path, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI; never raises on a non-zero exit."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RRN_")}
    full_env.update(env or {})
    done = subprocess.run(
        [*RRN, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=full_env,
        check=False,
    )
    jsoncheck.check([str(a) for a in args], done.returncode, done.stdout, done.stderr)
    return done


def rrn_ok(*args: str | Path, timeout: float = 60) -> str:
    """Run the CLI and return stdout; fail with its stderr if it failed."""
    done = rrn(*args, timeout=timeout)
    assert done.returncode == 0, f"rrn {' '.join(map(str, args))} failed: {done.stderr}"
    return done.stdout


def rrn_json(*args: str | Path) -> Any:
    """Run the CLI with --json and decode its output."""
    return json.loads(rrn_ok(*args, "--json"))


def init(home: Path, org: str, tz: str = "America/Lima", *extra: str) -> Path:
    """`rrn init` on free ports."""
    rrn_ok(
        "init",
        "--home",
        home,
        "--org",
        org,
        "--tz",
        tz,
        "--nats-port",
        "0",
        "--metrics-port",
        "0",
        "--console-port",
        "0",
        *extra,
    )
    return home


def free_port() -> int:
    """A loopback port to listen on later: below the ephemeral range (node/devnet's)."""
    return devnet_free_port()


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port held by someone else for the duration."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


class Daemon:
    """An `rrn run` process for one home."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home.parent / f"{home.name}.daemon.log"

    def start(self, timeout: float = 40) -> Daemon:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*RRN, "run", "--home", str(self.home)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=None if self.env is None else {**os.environ, **self.env},
            )
        deadline = time.monotonic() + timeout
        info_path = self.home / "run" / "daemon.json"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited {self.proc.returncode}: {self.log.read_text()[-2000:]}"
                )
            with contextlib.suppress(OSError, ValueError):
                if json.loads(info_path.read_text())["pid"] == self.proc.pid:
                    return self
            time.sleep(0.05)
        raise AssertionError(f"daemon not ready in {timeout}s: {self.log.read_text()[-2000:]}")

    @property
    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.home / "run" / "daemon.json").read_text())
        return data

    def nats_server_pid(self) -> int:
        return int((self.home / "run" / "nats-server.pid").read_text())

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); look at its state.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(")")[-1].split()[0] != "Z"
    return True


def wait_until(
    predicate: Any, timeout: float = 20, what: str = "condition", interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
