"""The systemd kit in deploy/, checked by systemd's own tools: the unit verifies, rates
OK or better for exposure, reloads with SIGHUP, keeps its state in its StateDirectory
and takes the passphrase as an encrypted credential; the sysusers file makes its user;
and `rrn init` works as that user in the empty home systemd makes for it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rrn.node.cli.main import main as cli_main
from tests.deploy.test_monitoring import tool
from tests.procs import ROOT

DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "rrn.service"


def _unit_for_this_machine(tmp_path: Path) -> Path:
    """The shipped unit with only its rrn command pointed at this checkout's (verify
    checks that the command exists)."""
    rrn = Path(sys.executable).parent / "rrn"
    copy = tmp_path / "rrn.service"
    copy.write_text(UNIT.read_text().replace("/opt/rrn/bin/rrn", str(rrn)))
    return copy


def _settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_the_unit_verifies(tmp_path: Path) -> None:
    done = subprocess.run(
        [tool("systemd-analyze"), "verify", str(_unit_for_this_machine(tmp_path))],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "rrn.service" not in done.stderr, done.stderr  # no warning about our unit


def test_the_unit_is_rated_ok_or_better(tmp_path: Path) -> None:
    done = subprocess.run(
        [tool("systemd-analyze"), "security", "--offline=true", str(_unit_for_this_machine(tmp_path))],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    rating = re.search(r"Overall exposure level for rrn\.service: ([0-9.]+) (\w+)", done.stdout)
    assert rating, done.stdout[-2000:] + done.stderr
    assert float(rating[1]) < 2.0 and rating[2] in ("OK", "SAFE"), rating[0]


def test_the_unit_reloads_keeps_its_state_and_takes_the_passphrase_as_a_credential() -> None:
    s = _settings()
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # rrn run reloads on SIGHUP
    assert s["StateDirectory"] == ["rrn"] and "--home /var/lib/rrn" in s["ExecStart"][0]
    assert s["User"] == ["rrn"] and s["StateDirectoryMode"] == ["0700"]
    cred = s["LoadCredentialEncrypted"][0].split(":")[0]
    assert s["Environment"] == [f"RRN_PASSPHRASE_FILE=%d/{cred}"]


def test_sysusers_makes_the_user(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    done = subprocess.run(
        [tool("systemd-sysusers"), f"--root={root}", str(DEPLOY / "rrn.sysusers")],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    passwd = (root / "etc" / "passwd").read_text()
    assert re.search(r"^rrn:x:\d+:\d+:.*:/var/lib/rrn:/usr/sbin/nologin$", passwd, re.M), passwd


def _as_nobody(argv: list[str]) -> int:
    """`rrn argv` run as the user `nobody`, in a forked child that drops to it (this
    machine's Python lives where nobody may not read it, so the child does not exec:
    everything the command needs is imported before the fork)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            code = cli_main(argv)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


NOBODY = 65534


def test_init_works_as_the_service_user_in_the_home_systemd_made() -> None:
    """As StateDirectory= leaves it: an empty home owned by the user, in a parent the
    user cannot write. (Switches to `nobody`, so it needs root.)"""
    if os.geteuid() != 0:
        pytest.fail("this check switches to another user: run the suite as root")
    base = Path(f"/tmp/rrn-init-{os.getpid()}")
    home = base / "lib" / "rrn"
    try:
        home.mkdir(parents=True)
        base.chmod(0o755)
        (base / "lib").chmod(0o755)
        os.chown(home, NOBODY, NOBODY)
        home.chmod(0o700)
        argv = ["init", "--home", str(home), "--org", "lima-hr", "--tz", "America/Lima"]
        assert _as_nobody(argv) == 0
        assert sorted(p.name for p in home.iterdir()) == [
            "config.toml", "keys", "logs", "nats", "run", "store.db",
        ]  # fmt: skip
        assert all(p.stat().st_uid == NOBODY for p in home.rglob("*"))
        assert [p.name for p in (base / "lib").iterdir()] == ["rrn"], "nothing staged beside"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_init_makes_the_parent_directories(tmp_path: Path) -> None:
    home = tmp_path / "srv" / "rrn" / "lima"
    assert cli_main(["init", "--home", str(home), "--org", "lima-hr", "--tz", "UTC"]) == 0
    assert (home / "config.toml").is_file()
