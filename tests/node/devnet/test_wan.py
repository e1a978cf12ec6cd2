"""Nodes on their own hosts: each in its own network namespace, links through the fault
proxy with the cities' round trips and loss (`rrn devnet up --wan`). Needs root, as
CI and development machines have; without it these tests fail, naming it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from rrn.node.devnet.wan import load_profile
from rrn.protocol.alerts import AlertEscalated
from rrn.protocol.kinds import decode_payload
from tests.netkit import TestNetwork
from tests.procs import rrn_json

pytestmark = pytest.mark.integration

LIMA, NAIROBI, JAKARTA = 1, 2, 3


def _wan(tmp_path: Path, **kwargs: Any) -> TestNetwork:
    if os.geteuid() != 0:
        pytest.fail("WAN devnets put nodes in network namespaces: run the suite as root")
    return TestNetwork.create(tmp_path / "net", 3, wan=load_profile(None), **kwargs)


def _fault(net: TestNetwork, *args: str) -> Any:
    return rrn_json("devnet", "fault", *args, "--dir", net.devnet.dir)


def _state(net: TestNetwork, k: int, peer: int) -> str:
    peers = {p["org"]: p for p in net.cli_json(k, "peers")}
    return str(peers[net.org(peer)]["state"])


def _namespaces() -> str:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return listed.stdout


def test_nodes_on_their_own_hosts_across_cuts_and_partitions(tmp_path: Path) -> None:
    net = _wan(tmp_path)
    lan = net.devnet.lan
    assert lan is not None
    try:
        for k in net.indexes:
            assert lan.ns(k) in _namespaces()
            assert f"//{lan.ip(k)}:" in net.cli_json(k, "status")["nats_url"], "its own address"
        net.wait(lambda: _state(net, JAKARTA, LIMA) == "up", "Jakarta to hear Lima")
        # Heartbeats from Lima reach Jakarta half a 320 ms round trip late (one clock).
        skew = {p["org"]: p for p in net.cli_json(JAKARTA, "peers")}[net.org(LIMA)]["clock_skew_s"]
        assert skew <= -0.1, f"Lima's heartbeats arrive {-skew:.3f} s late, not ~0.16 s"

        first = net.raise_alert(LIMA)
        net.wait_holds({first})

        # Lima's link to Nairobi is cut: Nairobi stays live to Lima (its signs of life
        # come through Jakarta), and what Lima raises reaches it the same way.
        assert _fault(net, "cut", "1", "2")["paths"][0]["forward"]["cut"] is True
        time.sleep(8)  # well past a down-interval
        nairobi = {p["org"]: p for p in net.cli_json(LIMA, "peers")}[net.org(NAIROBI)]
        assert (nairobi["state"], nairobi["live"]) == ("down", True), "link down, member live"
        around = net.raise_alert(LIMA)
        net.wait_holds({around}, nodes=[NAIROBI])
        _fault(net, "heal", "1", "2")

        # Lima alone on one side: each side goes on raising; healed, they converge.
        _fault(net, "partition", "1", "2,3")
        net.wait(
            lambda: _state(net, LIMA, NAIROBI) == _state(net, LIMA, JAKARTA) == "down",
            "Lima to lose both others",
        )
        alone = net.raise_alert(LIMA)
        others = net.raise_alert(NAIROBI)
        net.wait_holds({others}, nodes=[JAKARTA])
        assert others not in net.event_ids(LIMA) and alone not in net.event_ids(JAKARTA)
        _fault(net, "heal", "--all")
        net.wait_holds({alone, others}, timeout=90)
        net.wait_converged()
    finally:
        net.close()
    assert lan.ns(1) not in _namespaces(), "rrn devnet down removes the namespaces"
    assert not Path(f"/sys/class/net/{lan.bridge}").exists()


def _escalations(home: Path, alert: str) -> list[tuple[str, int, int]]:
    """(signer, seq, level) of every escalation of `alert` in this node's store."""
    with sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT origin, seq, payload FROM events WHERE kind = 'alert.escalated'"
        ).fetchall()
    found = []
    for origin, seq, payload in rows:
        if payload is None:
            continue
        p = decode_payload("alert.escalated", bytes(payload))
        assert isinstance(p, AlertEscalated)
        if p.alert.hex() == alert:
            found.append((str(origin), int(seq), p.level))
    return found


def _head(net: TestNetwork, k: int) -> int:
    with sqlite3.connect(f"file:{net.home(k) / 'store.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT MAX(seq) FROM events WHERE origin = ?", (net.org(k),)).fetchone()
    return int(row[0] or 0)


def test_a_node_restarted_behind_slow_links_signs_no_stale_escalation(tmp_path: Path) -> None:
    """Jakarta stops while an unclaimed alert climbs, and comes back behind links with
    a 2 s round trip: until it has caught up it must not sign a step the alert
    passed long ago (it once signed level 1 of an alert at level 6)."""
    net = _wan(tmp_path, escalation="immediate=3s,direct=2")
    try:
        alert = net.raise_alert(LIMA, "--urgency", "immediate")
        net.wait_holds({alert})
        net.devnet.stop(JAKARTA)
        net.wait(
            lambda: net.cli_json(LIMA, "alert", "show", alert[:12])["alert"]["level"] >= 5,
            "the alert to climb while Jakarta is away",
            timeout=60,
        )
        before = _head(net, JAKARTA)
        _fault(net, "shape", "3", "1", "--rtt-ms", "2000")
        _fault(net, "shape", "3", "2", "--rtt-ms", "2000")
        level = net.cli_json(LIMA, "alert", "show", alert[:12])["alert"]["level"]
        net.devnet.start(JAKARTA)
        net.wait(
            lambda: net.cli_json(JAKARTA, "alert", "show", alert[:12])["alert"]["level"] >= level,
            "Jakarta to catch up",
            timeout=90,
        )
        mine = [
            lvl
            for signer, seq, lvl in _escalations(net.home(JAKARTA), alert)
            if signer == net.org(JAKARTA) and seq > before
        ]
        assert all(lvl > level for lvl in mine), (
            f"Jakarta signed steps {mine} of an alert already at level {level}"
        )
    finally:
        net.close()
