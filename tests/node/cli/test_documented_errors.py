"""Every error message docs/OPERATIONS.md lists can be produced, as listed, by a real
CLI on a real node; and the CLI behaves: closed alerts are not signed for twice, a
closed pipe ends quietly, --json errors are JSON, codes are normalised."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.netkit import TestNetwork
from tests.procs import ROOT, RRN, Daemon, init, rrn, rrn_json, taken_port

pytestmark = pytest.mark.integration

RAISE = ("alert", "raise", "--country", "pe", "--type", "raid", "--severity", "moderate",
         "--urgency", "days")  # fmt: skip


def _documented() -> list[str]:
    """The messages of OPERATIONS.md's error table, as written."""
    text = (ROOT / "docs" / "OPERATIONS.md").read_text()
    table = text.split("| message | fix |", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `([^`]+)`", table, re.M)


def _pattern(message: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part.strip()) for part in message.split("…")))


def _err(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1]


def _no_home(tmp: Path) -> str:
    return _err(rrn("status", "--home", tmp / "nowhere"))


def _not_running(tmp: Path) -> str:
    return _err(rrn("status", "--home", init(tmp / "stopped", "lima-hr")))


def _nats_port(tmp: Path) -> str:
    h = init(tmp / "natsport", "lima-hr")
    with taken_port() as port:
        text = (h / "config.toml").read_text().replace("port = 0\n", f"port = {port}\n", 1)
        (h / "config.toml").write_text(text)
        return _err(rrn("run", "--home", h)).replace(str(port), "4222")


def _metrics_port(tmp: Path) -> str:
    h = init(tmp / "metricsport", "lima-hr")
    with taken_port() as port:
        done = rrn("run", "--home", h, env={"RRN_METRICS_PORT": str(port)})
    return _err(done).replace(str(port), "9464")


def _console_port(tmp: Path) -> str:
    h = init(tmp / "consoleport", "lima-hr")
    with taken_port() as port:
        text = (h / "config.toml").read_text()
        head, _, tail = text.partition("[console]")
        (h / "config.toml").write_text(
            head + "[console]" + tail.replace("port = 0", f"port = {port}", 1)
        )
        return _err(rrn("run", "--home", h)).replace(str(port), "8470")


def _open_console(tmp: Path) -> str:
    h = init(tmp / "openconsole", "lima-hr")
    text = (h / "config.toml").read_text()
    head, _, tail = text.partition("[console]")
    tail = tail.replace('host = "127.0.0.1"', 'host = "0.0.0.0"', 1)
    (h / "config.toml").write_text(head + "[console]" + tail)
    return _err(rrn("run", "--home", h))


def _readable(tmp: Path) -> str:
    h = init(tmp / "readable", "lima-hr")
    (h / "keys" / "control.key").chmod(0o644)
    return _err(rrn("run", "--home", h))


def _timezone(tmp: Path) -> str:
    return _err(rrn("init", "--home", tmp / "tz", "--org", "lima-hr", "--tz", "Lima/Peru"))


def _rotated(tmp: Path, name: str) -> tuple[Path, int]:
    """A node that rotated to key epoch 2, stopped."""
    h = init(tmp / name, "lima-hr")
    daemon = Daemon(h).start()
    rotated = rrn_json("key", "rotate", "--home", h, "--json")
    assert daemon.stop() == 0
    return h, int(rotated["epoch"])


def _lost_roster_key(tmp: Path) -> str:
    h, _ = _rotated(tmp, "lostroster")
    (h / "keys" / "sign-1.pem").unlink()  # the roster still lists epoch 1
    daemon = Daemon(h).start()
    try:
        return _err(rrn("member", "propose", "--threshold", "1", "--home", h))
    finally:
        daemon.stop()


def _lost_chain_key(tmp: Path) -> str:
    h, epoch = _rotated(tmp, "lostchain")
    for key in (h / "keys").glob(f"*-{epoch}.pem"):
        key.unlink()
    daemon = Daemon(h).start()
    try:
        blocked = rrn_json("status", "--home", h, "--json")["appends_blocked"]
        return f"{blocked} (`rrn status`)"
    finally:
        daemon.stop()


def _home_in_use(tmp: Path) -> str:
    h = init(tmp / "inuse", "lima-hr")
    daemon = Daemon(h).start()
    try:
        return _err(rrn("run", "--home", h))
    finally:
        daemon.stop()


def _foreign_certificate(tmp: Path) -> str:
    h = init(tmp / "pinned", "lima-hr")
    config = h / "config.toml"
    config.write_text(config.read_text().replace("tls = false", "tls = true", 1))
    daemon = Daemon(h).start()
    try:
        assert rrn("status", "--home", h).returncode == 0, "TLS pinned to its own certificate"
        other = init(tmp / "other", "nairobi-dl")
        shutil.copy(other / "keys" / "tls.crt", h / "keys" / "tls.crt")
        return _err(rrn("status", "--home", h))
    finally:
        daemon.stop()


def _already_resolved(tmp: Path) -> str:
    h = init(tmp / "resolved", "lima-hr")
    daemon = Daemon(h).start()
    try:
        alert = rrn_json(*RAISE, "--home", h, "--json")["id"]
        before = rrn_json("status", "--home", h, "--json")["seq"]
        assert rrn("alert", "resolve", alert[:12], "--outcome", "safe", "--home", h).returncode == 0
        again = _err(rrn("alert", "resolve", alert[:12], "--outcome", "safe", "--home", h))
        assert rrn_json("status", "--home", h, "--json")["seq"] == before + 1, "signed once"
        return again
    finally:
        daemon.stop()


def _restored(tmp: Path) -> str:
    """Node 1 of two, restored from its backup and started alone: it waits."""
    n = TestNetwork.create(tmp / "net", 2, nat=set())
    try:
        backup = tmp / "b.rrnbak"
        assert rrn("backup", "--out", str(backup), "--home", n.home(1)).returncode == 0
        for k in (1, 2):
            n.devnet.stop(k)
        home = n.home(1)
        home.rename(home.with_name(home.name + ".lost"))
        assert rrn("restore", str(backup), "--home", home).returncode == 0
        n.devnet.start(1)
        return _err(rrn(*RAISE, "--home", home))
    finally:
        n.close()


def _cannot_create(tmp: Path) -> str:
    if os.geteuid() != 0:
        pytest.fail("this check switches to another user: run the suite as root")
    base = Path(f"/tmp/rrn-cannot-{os.getpid()}")
    base.mkdir(mode=0o755)
    try:
        return _cannot_create_in_process(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _cannot_create_in_process(base: Path) -> str:
    """As `nobody`, in a forked child (this machine's Python is not readable by it)."""
    from tests.deploy.test_systemd import NOBODY

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            sys.stderr = open(write, "w", closefd=False)  # noqa: SIM115 - the child's last act
            from rrn.node.cli.main import main

            code = main(["init", "--home", f"{base}/x", "--org", "lima-hr", "--tz", "UTC"])
            sys.stderr.flush()
            os._exit(code)
        finally:
            os._exit(70)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    err = os.read(read, 65536).decode()
    assert os.waitstatus_to_exitcode(status) == 1, err
    return err.strip().splitlines()[-1]


def _open_port(tmp: Path) -> str:
    h = init(tmp / "open", "lima-hr")
    text = (h / "config.toml").read_text().replace('host = "127.0.0.1"', 'host = "0.0.0.0"', 1)
    (h / "config.toml").write_text(text)
    return _err(rrn("run", "--home", h))


def _remote_integrator(tmp: Path) -> str:
    return _err(rrn("integrator", "add", "desk", "--tls", "--home", init(tmp / "tls", "lima-hr")))


PRODUCERS: dict[str, Callable[[Path], str]] = {
    "no rrn home at …": _no_home,
    "the rrn daemon is not running for …": _not_running,
    "port 4222 is already in use …": _nats_port,
    "metrics port 9464 on 127.0.0.1 is already in use …": _metrics_port,
    "… is readable by others; run: chmod 600 …": _readable,
    "time zone '…' is not an IANA zone name …": _timezone,
    "this node no longer holds its signing key of epoch …": _lost_roster_key,
    "this node's chain moved to key epoch …, whose key this home does not hold": _lost_chain_key,
    "… is in use by rrn run (pid …, since …)": _home_in_use,
    "the NATS server at … is not this node's: its TLS certificate is not …": _foreign_certificate,
    "that alert is already resolved …: nothing was signed": _already_resolved,
    "restored from a backup: signing nothing until peers confirm …": _restored,
    "this user cannot create …": _cannot_create,
    "… opens the client port beyond this host, where passwords would cross the network in "
    "clear: set [nats] tls = true": _open_port,
    "an integrator on another host needs TLS on the client port …": _remote_integrator,
    "console port 8470 on 127.0.0.1 is already in use …": _console_port,
    "[console] host = … opens the console beyond this host, where passwords would cross the "
    "network in clear …": _open_console,
}


def test_the_table_lists_what_the_tests_produce() -> None:
    assert set(_documented()) == set(PRODUCERS)


@pytest.mark.parametrize("message", sorted(PRODUCERS))
def test_a_documented_message_is_produced(message: str, tmp_path: Path) -> None:
    produced = PRODUCERS[message](tmp_path)
    assert _pattern(message).search(produced), (message, produced)


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    h = init(tmp_path / "pipe", "lima-hr")
    daemon = Daemon(h).start()
    try:
        for _ in range(3):
            rrn(*RAISE, "--home", h)
        reader = subprocess.run(
            f"{' '.join(RRN)} alert list --home {h} | head -c 1 > /dev/null",
            shell=True, check=False, capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert reader.stderr == "", reader.stderr
    finally:
        daemon.stop()


def test_json_errors_are_json_and_codes_are_normalised(tmp_path: Path) -> None:
    h = init(tmp_path / "json", "lima-hr")
    stopped = rrn("status", "--json", "--home", h)
    assert stopped.returncode == 1
    error = json.loads(stopped.stderr)["error"]
    assert error["code"] == "daemon_unavailable" and "not running" in error["message"]
    daemon = Daemon(h).start()
    try:
        raised = rrn_json(*RAISE, "--subdivision", "pe-lor", "--lang", "ES", "--home", h, "--json")
        shown = rrn_json("alert", "show", raised["id"][:12], "--home", h, "--json")["alert"]
        assert (shown["country"], shown["subdivision"], shown["languages"]) == (
            "PE", "PE-LOR", ["es"],
        )  # fmt: skip
        refused = rrn("alert", "claim", "0" * 12, "--json", "--home", h)
        assert refused.returncode == 1 and json.loads(refused.stderr)["error"]["code"]
    finally:
        daemon.stop()
    made = rrn_json("init", "--home", tmp_path / "j2", "--org", "NAIROBI-DL", "--tz", "UTC",
                    "--json")  # fmt: skip
    assert made == {"home": str(tmp_path / "j2"), "org": "nairobi-dl"}
