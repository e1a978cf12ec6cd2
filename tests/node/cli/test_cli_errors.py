"""Every mistake a user can make gets one clear line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.procs import Daemon, init, rrn, taken_port

pytestmark = pytest.mark.integration


def _one_line_error(done: object, *needles: str) -> str:
    stderr: str = done.stderr  # type: ignore[attr-defined]
    assert done.returncode != 0  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init(tmp_path_factory.mktemp("cli") / "node", "lima-hr")


def test_missing_home(tmp_path: Path) -> None:
    _one_line_error(rrn("status", "--home", tmp_path / "nowhere"), "no rrn home", "rrn init")


def test_no_home_given() -> None:
    _one_line_error(rrn("status"), "--home is required")


def test_wrong_home(tmp_path: Path) -> None:
    (tmp_path / "stuff.txt").write_text("not a node")
    _one_line_error(rrn("alert", "list", "--home", tmp_path), "not an rrn home")


def test_home_env_variable_is_used(home: Path) -> None:
    done = rrn("status", env={"RRN_HOME": str(home)})
    _one_line_error(done, "not running")


def test_bad_time_zone(tmp_path: Path) -> None:
    done = rrn("init", "--home", tmp_path / "n", "--org", "lima-hr", "--tz", "Lima/Peru")
    _one_line_error(done, "time zone", "IANA")
    assert not (tmp_path / "n").exists(), "a failed init leaves nothing behind"


def test_bad_org_id(tmp_path: Path) -> None:
    done = rrn("init", "--home", tmp_path / "n", "--org", "Lima HR", "--tz", "America/Lima")
    _one_line_error(done, "org id")


def test_init_refuses_to_overwrite(home: Path) -> None:
    before = (home / "keys" / "sign-1.pem").read_bytes()
    done = rrn("init", "--home", home, "--org", "other", "--tz", "UTC")
    _one_line_error(done, "already exists")
    assert (home / "keys" / "sign-1.pem").read_bytes() == before


def test_invalid_severity(home: Path) -> None:
    done = rrn(
        "alert",
        "raise",
        "--home",
        home,
        "--country",
        "PE",
        "--type",
        "raid",
        "--severity",
        "huge",
        "--urgency",
        "days",
    )
    assert done.returncode == 2
    _one_line_error(done, "--severity", "huge")


def test_invalid_country(home: Path) -> None:
    done = rrn(
        "alert",
        "raise",
        "--home",
        home,
        "--country",
        "XX",
        "--type",
        "raid",
        "--severity",
        "minor",
        "--urgency",
        "days",
    )
    _one_line_error(done, "--country", "ISO 3166")


def test_invalid_ask(home: Path) -> None:
    done = rrn(
        "alert",
        "raise",
        "--home",
        home,
        "--country",
        "PE",
        "--type",
        "raid",
        "--severity",
        "minor",
        "--urgency",
        "days",
        "--ask",
        "legal_aid:police",
    )
    _one_line_error(done, "--ask", "addressee")


def test_daemon_not_running(home: Path) -> None:
    for args in (("status",), ("alert", "list"), ("alert", "claim", "abcdef")):
        _one_line_error(rrn(*args, "--home", home), "not running", "rrn run")


def test_log_verify_works_without_daemon(home: Path) -> None:
    done = rrn("log", "verify", "--home", home)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok:")


def test_nats_port_taken(tmp_path: Path) -> None:
    with taken_port() as port:
        h = init(tmp_path / "n", "lima-hr")
        text = (h / "config.toml").read_text().replace("port = 0\n", f"port = {port}\n", 1)
        (h / "config.toml").write_text(text)
        done = rrn("run", "--home", h, timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert f"port {port} is already in use" in done.stderr.splitlines()[-1]


def test_leafnode_port_taken_names_the_listener_and_its_setting(tmp_path: Path) -> None:
    with taken_port() as port:
        at = f"127.0.0.1:{port}"
        h = init(tmp_path / "n", "lima-hr", "America/Lima", "--advertise", at, "--listen", at)
        done = rrn("run", "--home", h, timeout=60)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert f"leafnode port {port} is already in use" in last and "[federation] listen" in last


def test_metrics_port_taken(tmp_path: Path) -> None:
    h = init(tmp_path / "n", "lima-hr")
    with taken_port() as port:
        done = rrn("run", "--home", h, env={"RRN_METRICS_PORT": str(port)}, timeout=60)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert f"metrics port {port}" in last and "already in use" in last
    # The embedded nats-server it had started is gone again.
    assert not (h / "run" / "daemon.json").exists()


def test_unknown_config_key_is_refused(tmp_path: Path) -> None:
    h = init(tmp_path / "n", "lima-hr")
    with (h / "config.toml").open("a") as f:
        f.write("\n[metrics2]\nport = 1\n")
    _one_line_error(rrn("run", "--home", h), "metrics2")


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    h = init(tmp_path / "n", "lima-hr")
    (h / "keys" / "sign-1.pem").chmod(0o644)
    _one_line_error(rrn("run", "--home", h), "readable by others", "chmod 600")


def test_unknown_alert_id(tmp_path: Path) -> None:
    h = init(tmp_path / "n", "lima-hr")
    d = Daemon(h).start()
    try:
        _one_line_error(rrn("alert", "show", "--home", h, "abcdef12"), "no alert with id")
        _one_line_error(rrn("alert", "show", "--home", h, "zz"), "hex digits")
    finally:
        d.close()
