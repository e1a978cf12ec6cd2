"""Sealed details across a real network: the canary test.

Unique marker strings are planted in every sealed field of an alert. Recipients
read them through `rrn alert show`; no file of any node (stores, WAL, JetStream,
logs) holds them in the clear, nor does any message on any node's NATS server
(peer traffic and the CLI's control requests and replies alike), nor any metrics
page, nor any error message, and the member they were never sealed to cannot
read them.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from pathlib import Path

import pytest

from tests.netkit import Capture, TestNetwork
from tests.procs import rrn

pytestmark = pytest.mark.integration

FIELDS = ("identity", "location", "contacts", "risk", "narrative")


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_canary_markers_reach_recipients_only_and_never_appear_in_the_clear(
    tmp_path: Path,
) -> None:
    tag = secrets.token_hex(6)
    markers = {f: f"CANARY{tag}{f.upper()}" for f in FIELDS}
    details = tmp_path / "details.json"
    details.write_text(json.dumps(markers))
    net = TestNetwork.create(tmp_path / "net", 3)
    captures = [Capture(net, k) for k in net.indexes]
    try:
        alert = net.cli_json(
            1,
            "alert",
            "raise",
            "--country",
            "PE",
            "--type",
            "death_threat",
            "--severity",
            "severe",
            "--urgency",
            "immediate",
            "--details",
            str(details),
        )["id"]
        net.wait_holds({alert})

        def show(k: int) -> dict[str, object]:
            return dict(net.cli_json(k, "alert", "show", alert[:12]))

        assert show(1)["details"] == markers, "the origin reads its own details"
        for k in (2, 3):
            seen = show(k)
            assert seen["sealed_to"] == ["lima-hr"] and seen["details"] is None
        assert "not readable by this member" in net.cli(3, "alert", "show", alert[:12])

        net.cli(2, "alert", "claim", alert[:12])
        net.wait(lambda: show(2)["details"] == markers, "the claimant reading the details")
        net.wait(
            lambda: all(show(k)["sealed_to"] == ["lima-hr", "nairobi-dl"] for k in (1, 2, 3)),
            "everyone seeing who the details are sealed to",
        )
        assert show(3)["details"] is None, "never sealed to Jakarta"
        refused = rrn("alert", "share", alert[:12], "--to", "lima-hr", "--home", net.home(3))
        assert refused.returncode == 1 and "no sealed details" in refused.stderr
        assert not any(m in refused.stderr for m in markers.values())

        net.wait_converged()
        for k in net.indexes:
            assert "ok:" in net.cli(k, "log", "verify")
        traffic = [m for c in captures for m in c.stop()]
        assert any(b"alert.show" in m or b"rrn.local.ctl" in m for m in traffic), "captured"
        assert not [m for m in traffic if any(v.encode() in m for v in markers.values())]
        leaks = []
        for path in _files(net.devnet.dir):
            data = path.read_bytes()
            leaks += [f"{path}: {f}" for f, m in markers.items() if m.encode() in data]
        assert not leaks, leaks
        for k in net.indexes:
            info = json.loads((net.home(k) / "run" / "daemon.json").read_text())
            page = urllib.request.urlopen(info["metrics_url"], timeout=5).read().decode()
            assert tag not in page
    finally:
        net.close()


def test_bad_details_are_refused_without_repeating_them(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 1)
    try:
        bad = tmp_path / "bad.json"
        secret = "CANARY-" + secrets.token_hex(4)
        base = ("alert", "raise", "--country", "PE", "--type", "raid", "--severity", "minor")
        for text, says in (
            (json.dumps({"identity": secret, "identiy": secret}), "unknown field"),
            (json.dumps({"identity": 42}), "--details"),
            (json.dumps({}), "empty"),
            ("not json " + secret, "not a JSON object"),
            (json.dumps({"narrative": secret * 1000}), "--details"),
        ):
            bad.write_text(text)
            done = rrn(*base, "--urgency", "days", "--details", bad, "--home", net.home(1))
            assert done.returncode != 0 and says in done.stderr, done.stderr
            assert secret not in done.stderr and secret not in done.stdout
    finally:
        net.close()
