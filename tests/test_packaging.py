"""The wheel installs and runs on its own: one import package, `rrn`, and the command.

Built from this tree, installed into a fresh virtual environment outside it (its
dependencies, the nats-server binary among them, from the package registry),
then driven from a directory that is not the repository, with nothing of the
developer's environment on the path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import ROOT, wait_until

pytestmark = pytest.mark.integration

DIST = "rapid_response_network"


def _run(
    argv: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A virtual environment with only the built wheel (and its dependencies) in it."""
    base = tmp_path_factory.mktemp("packaging")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RRN_", "PYTHON", "VIRTUAL_ENV")) and k != "PATH"
    }
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    wheels = base / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, ROOT],
        cwd=base,
        env=env,
    )
    (wheel,) = wheels.glob(f"{DIST}-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=base, env=env)
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], cwd=base, env=env)
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    yield venv, env


def test_installed_wheel_is_rrn_only(installed: tuple[Path, dict[str, str]]) -> None:
    venv, env = installed
    site = next(venv.glob("lib/python3*/site-packages"))
    record = next(site.glob(f"{DIST}-*.dist-info")) / "RECORD"
    files = [line.split(",")[0] for line in record.read_text().splitlines()]
    # Scripts are recorded relative to site-packages (../../../bin/rrn).
    tops = {f.split("/", 1)[0] for f in files if "/" in f and not f.startswith("..")}
    assert tops == {"rrn", next(site.glob(f"{DIST}-*.dist-info")).name}, tops
    for name in ("protocol", "federation", "node"):
        assert not (site / name).exists(), f"a top-level '{name}' package was installed"
    where = _run(
        [venv / "bin" / "python", "-c", "import rrn.node.cli.main as m; print(m.__file__)"],
        cwd=venv,
        env=env,
    ).stdout.strip()
    assert Path(where).is_relative_to(site), where
    assert (venv / "bin" / "nats-server").exists(), "the nats-server wheel came with it"
    assert "../../../bin/rrn" in files, "the rrn command is installed"


def test_init_run_status_and_devnet_from_the_wheel(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, env = installed
    rrn = venv / "bin" / "rrn"
    home = tmp_path / "lima"
    _run(
        [
            rrn,
            "init",
            "--home",
            home,
            "--org",
            "lima-hr",
            "--tz",
            "America/Lima",
            "--nats-port",
            "0",
            "--metrics-port",
            "0",
            "--console-port",
            "0",
        ],
        cwd=tmp_path,
        env=env,
    )
    log = (tmp_path / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [str(rrn), "run", "--home", str(home)], cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    try:
        wait_until((home / "run" / "daemon.json").exists, 60, "the daemon to start")
        status = json.loads(
            _run([rrn, "status", "--home", home, "--json"], cwd=tmp_path, env=env).stdout
        )
        assert status["org"] == "lima-hr" and status["members"] == ["lima-hr"]
        pid = (home / "run" / "nats-server.pid").read_text().strip()
        exe = os.readlink(f"/proc/{pid}/exe")
        assert Path(exe).is_relative_to(venv), f"nats-server runs from {exe}, not the venv"
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, (tmp_path / "daemon.log").read_text()[-2000:]
        log.close()
    net = tmp_path / "net"
    try:
        up = _run([rrn, "devnet", "up", "--nodes", "2", "--dir", net], cwd=tmp_path, env=env)
        assert "lima-hr" in up.stdout and "nairobi-dl" in up.stdout, up.stdout
        _console_served(up.stdout)
        shipped = json.loads(_run([rrn, "version", "--json"], cwd=tmp_path, env=env).stdout)
        lock = (ROOT / "deploy" / "lock" / "runtime.txt").read_bytes()
        assert shipped["lock_sha256"] == hashlib.sha256(lock).hexdigest(), "the lock is not shipped"
        started = time.monotonic()
        while time.monotonic() - started < 60:
            peers = subprocess.run(
                [str(rrn), "peers", "--home", str(net / "lima-hr"), "--json"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if peers.returncode == 0 and any(p["state"] == "up" for p in json.loads(peers.stdout)):
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the devnet's nodes never heard each other")
    finally:
        _run([rrn, "devnet", "down", "--dir", net], cwd=tmp_path, env=env)
    assert not net.exists()


def _console_served(up: str) -> None:
    """The wheel carries the console's templates, assets and catalogues: a node it
    installed serves the login page, in Spanish when asked, and its stylesheet."""
    found = re.search(r"console (http://\S+/)\s+log in as admin / (\S+)", up)
    assert found, up
    url = found[1]
    ask = urllib.request.Request(url + "login", headers={"Accept-Language": "es-PE,es"})
    with urllib.request.urlopen(ask, timeout=10) as page:
        assert "Contraseña" in page.read().decode()
    with urllib.request.urlopen(url + "static/console.css", timeout=10) as css:
        assert css.status == 200 and b"--accent" in css.read()
