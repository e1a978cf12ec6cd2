"""One node end to end with real processes: init, run, CLI, restart, crash."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from rrn.node.control.client import call
from rrn.node.home.layout import open_home
from rrn.node.ops.types import AlertInfo, RaiseArgs
from rrn.node.store.network import verify_chain
from rrn.node.store.rows import RosterRow
from rrn.protocol.envelope import verify_event
from rrn.protocol.roster import decode_cert, roster_id
from rrn.protocol.vocabulary import IncidentType, Severity, Urgency
from tests.procs import Daemon, init, pid_alive, rrn, rrn_json, rrn_ok, wait_until

pytestmark = pytest.mark.integration

RAISE = (
    "alert",
    "raise",
    "--country",
    "PE",
    "--subdivision",
    "PE-LOR",
    "--type",
    "death_threat",
    "--type",
    "intimidation",
    "--severity",
    "severe",
    "--urgency",
    "immediate",
    "--ask",
    "legal_aid:ngo",
    "--ask",
    "private_diplomacy:embassy",
    "--lang",
    "es",
    "--consent",
    "network",
    "--consent",
    "embassies",
    "--consent-by",
    "defender",
)


def test_alert_life_cycle_survives_a_restart(tmp_path: Path) -> None:
    home = init(tmp_path / "lima", "lima-hr")
    daemon = Daemon(home).start()
    try:
        raised = rrn_json(*RAISE, "--home", home)
        assert raised["status"] == "open" and raised["origin"] == "lima-hr"
        assert raised["pseudonym"].startswith("hrd-")
        short = raised["id"][:10]
        assert (
            rrn_json("alert", "claim", short, "--home", home, "--for", "60")["status"] == "claimed"
        )
        updated = rrn_json("alert", "update", short, "--home", home, "--severity", "extreme")
        assert updated["severity"] == "extreme" and updated["urgency"] == "immediate"
        listed = rrn_json("alert", "list", "--home", home)
        assert [a["id"] for a in listed] == [raised["id"]]
        text = rrn_ok("alert", "list", "--home", home)
        assert short in text and "claimed" in text

        metrics = urllib.request.urlopen(daemon.info["metrics_url"], timeout=5).read().decode()
        assert 'rrn_ingest_events_total{kind="alert.raised"} 1.0' in metrics
        assert (
            'rrn_alerts_open{exercise="false",severity="extreme",urgency="immediate"} 1.0'
            in metrics
        )
        assert "rrn_nats_connected 1.0" in metrics
        assert "rrn_build_info{" in metrics
        assert "hrd-" not in metrics and "PE-LOR" not in metrics, "no alert data in metrics"

        assert daemon.stop() == 0
        assert not (home / "run" / "daemon.json").exists()
        daemon.start()
        shown = rrn_json("alert", "show", short, "--home", home)
        assert shown["alert"]["severity"] == "extreme"
        assert [e["kind"] for e in shown["events"]] == [
            "alert.raised",
            "alert.claimed",
            "alert.updated",
        ]
        resolved = rrn_json("alert", "resolve", short, "--home", home, "--outcome", "safe")
        assert resolved["status"] == "resolved" and resolved["end_code"] == "safe"
        assert rrn_json("alert", "list", "--home", home) == []
        assert len(rrn_json("alert", "list", "--all", "--home", home)) == 1
        status = rrn_json("status", "--home", home)
        assert (status["seq"], status["events"], status["open_alerts"]) == (4, 4, 0)
    finally:
        daemon.close()
    out = rrn_ok("log", "verify", "--home", home)
    assert out.startswith("ok: 4 events in 1 chain(s)")


def test_sigterm_stops_nats_server_too(tmp_path: Path) -> None:
    home = init(tmp_path / "lima", "lima-hr")
    daemon = Daemon(home).start()
    server = daemon.nats_server_pid()
    assert pid_alive(server)
    assert daemon.stop() == 0
    wait_until(lambda: not pid_alive(server), what="nats-server to stop")
    log = daemon.log.read_text()
    assert "stopped cleanly" in log and "Traceback" not in log


def test_a_daemon_whose_nats_server_dies_exits_so_it_is_restarted(tmp_path: Path) -> None:
    """Killed under it (out of memory, a stray kill), the server leaves a node that hears
    nobody while its process looks alive; it exits with an error for its supervisor to
    start it again, and it comes back whole."""
    home = init(tmp_path / "lima", "lima-hr")
    daemon = Daemon(home).start()
    alert = rrn_json(*RAISE, "--home", home)["id"]
    os.kill(daemon.nats_server_pid(), signal.SIGKILL)
    assert daemon.proc is not None
    assert daemon.proc.wait(30) == 1
    said = daemon.log.read_text()
    assert "the embedded nats-server" in said and "exited under the daemon" in said
    assert "Traceback" not in said and "internal error" not in said
    daemon = Daemon(home).start()
    try:
        assert rrn_json("alert", "show", alert[:12], "--home", home)["alert"]["id"] == alert
    finally:
        daemon.stop()


def test_a_full_disk_refuses_what_it_cannot_write_and_loses_nothing(tmp_path: Path) -> None:
    """Its home on a small tmpfs filled to the last byte: a raise is refused at once with
    the reason (not after a 45 s silence), what was acknowledged stays, the node keeps
    answering, and once there is room again it takes new alerts without a restart."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs: run the suite as root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], check=True)
    try:
        home = init(disk / "lima", "lima-hr")
        daemon = Daemon(home).start()
        try:
            kept = rrn_json(*RAISE, "--home", home)["id"]
            filler = disk / "filler"
            with filler.open("wb") as f, contextlib.suppress(OSError):
                while True:
                    f.write(bytes(1 << 20))
                    f.flush()
            refused = rrn(*RAISE, "--home", home)
            assert refused.returncode == 1
            assert "database or disk is full" in refused.stderr, refused.stderr
            assert rrn_json("status", "--home", home)["org"] == "lima-hr"
            filler.unlink()
            again = rrn_json(*RAISE, "--home", home)["id"]
            listed = {a["id"] for a in rrn_json("alert", "list", "--home", home)}
            assert {kept, again} <= listed
        finally:
            daemon.stop()
        assert "Traceback" not in daemon.log.read_text().split("disk is full")[-1]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_second_daemon_on_a_live_home_touches_nothing(tmp_path: Path) -> None:
    """systemd runs the node and someone also starts it by hand: the second `rrn run`
    names the process that holds the home and exits; the first daemon, its nats-server
    and its files are as they were, and it goes on signing."""
    home = init(tmp_path / "lima", "lima-hr")
    daemon = Daemon(home).start()
    before = (daemon.info, daemon.nats_server_pid())
    log_size = (home / "logs" / "rrn.log").stat().st_size
    second = rrn("run", "--home", home, timeout=60)
    assert second.returncode == 1, second.stderr
    last = second.stderr.strip().splitlines()[-1]
    assert f"in use by rrn run (pid {daemon.proc.pid if daemon.proc else 0}" in last, last
    assert "Traceback" not in second.stderr
    assert (daemon.info, daemon.nats_server_pid()) == before
    assert (home / "logs" / "rrn.log").stat().st_size >= log_size
    alert = rrn_json("alert", "raise", "--country", "PE", "--type", "raid", "--severity",
                     "moderate", "--urgency", "days", "--home", home)  # fmt: skip
    assert rrn_json("alert", "show", alert["id"][:12], "--home", home)["alert"]["id"]
    # Commands that write a stopped node's store are refused the same way while it runs.
    (tmp_path / "none.jsonl").write_text("")
    imported = rrn("log", "import", str(tmp_path / "none.jsonl"), "--home", home)
    assert imported.returncode != 0 and "stop the daemon first" in imported.stderr
    assert f"pid {before[0]['pid']}" in imported.stderr
    assert daemon.stop() == 0
    done = rrn("log", "import", str(tmp_path / "none.jsonl"), "--home", home)
    assert done.returncode == 0, done.stderr  # stopped: the home is free again


async def _burst(home: Path, count: int, done: list[str], daemon: Daemon, kill_after: int) -> None:
    h = open_home(home)
    args = RaiseArgs(
        country="KE",
        incident_types=[IncidentType.ARBITRARY_DETENTION],
        severity=Severity.EXTREME,
        urgency=Urgency.IMMEDIATE,
    )

    async def one() -> None:
        try:
            info = await call(h, "alert.raise", args, AlertInfo)
        except Exception:
            return  # the daemon died under this request; it never said "done"
        done.append(info.id)
        if len(done) == kill_after:
            daemon.kill()

    await asyncio.gather(*(one() for _ in range(count)))


def test_kill_9_during_a_burst_loses_nothing_reported_done(tmp_path: Path) -> None:
    home = init(tmp_path / "lima", "lima-hr")
    daemon = Daemon(home).start()
    server = daemon.nats_server_pid()
    done: list[str] = []
    try:
        asyncio.run(_burst(home, 120, done, daemon, kill_after=25))
        assert daemon.proc is not None and daemon.proc.returncode == -9
        assert len(done) >= 25
        wait_until(
            lambda: not pid_alive(server), what="orphaned nats-server to die with the daemon"
        )

        daemon.start()
        stored = {a["id"] for a in rrn_json("alert", "list", "--all", "--home", home)}
        assert set(done) <= stored, "every alert the daemon confirmed is still there"
        status = rrn_json("status", "--home", home)
        assert status["seq"] == status["events"] == len(stored)
        after = rrn_json(*RAISE, "--home", home)
        assert rrn_json("status", "--home", home)["seq"] == len(stored) + 1
        assert after["id"] not in stored
    finally:
        daemon.close()
    verify = rrn("log", "verify", "--home", home, "--json")
    assert verify.returncode == 0, verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] and report["events"] == len(stored) + 1 and report["chains"] == 1


def test_log_verify_names_the_first_bad_event(tmp_path: Path) -> None:
    import sqlite3

    home = init(tmp_path / "lima", "lima-hr")
    daemon = Daemon(home).start()
    try:
        ids = [rrn_json(*RAISE, "--home", home)["id"] for _ in range(3)]
    finally:
        daemon.stop()
    with sqlite3.connect(home / "store.db") as db:
        (payload,) = db.execute("SELECT payload FROM events WHERE seq = 2").fetchone()
        db.execute("UPDATE events SET payload = ? WHERE seq = 2", (payload.replace(b"PE", b"CO"),))
    done = rrn("log", "verify", "--home", home)
    assert done.returncode == 1
    assert "event lima-hr/1/2" in done.stderr and ids[1][:16] in done.stderr
    assert "payload_hash_mismatch" in done.stderr


def test_log_export_is_self_contained_and_verifiable(tmp_path: Path) -> None:
    home = init(tmp_path / "lima", "lima-hr")
    daemon = Daemon(home).start()
    try:
        for _ in range(3):
            rrn_json(*RAISE, "--home", home)
    finally:
        daemon.stop()
    out = tmp_path / "audit.jsonl"
    rrn_ok("log", "export", "--home", home, "--out", out)
    assert out.stat().st_mode & 0o077 == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    rosters = [line for line in lines if line["type"] == "roster"]
    events = [line for line in lines if line["type"] == "event"]
    assert len(rosters) == 1 and len(events) == 3
    cert_bytes = base64.b64decode(rosters[0]["cert"])
    network = verify_chain([RosterRow(0, b"", b"", cert_bytes)])
    assert network.net == roster_id(decode_cert(cert_bytes).roster)
    for line in events:
        event = verify_event(
            base64.b64decode(line["envelope"]), net=network.net, resolve=network.keyring.resolve
        )
        assert event.id.hex() == line["id"]
