"""A sparse mesh on the namespace harness (PROTOCOL.md 10.5): five members, each in
its own network namespace, a roster asking for two links each (a ring), so every
node has two members it never links to directly. What one raises reaches all,
members not linked are heard alive across hops, and one cut link or one stopped
member cuts nobody off. Needs root."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from rrn.node.devnet.wan import load_profile
from tests.netkit import TestNetwork
from tests.procs import rrn_json

pytestmark = pytest.mark.integration

PROFILE = """
seed = 3
[default]
rtt_ms = 160
jitter_ms = 10
"""


def _peers(net: TestNetwork, k: int) -> dict[str, Any]:
    return {p["org"]: p for p in net.cli_json(k, "peers")}


@pytest.mark.timeout(600)
def test_a_ring_of_five_carries_alerts_and_signs_of_life_across_hops(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("WAN devnets put nodes in network namespaces: run the suite as root")
    profile = tmp_path / "profile.toml"
    profile.write_text(PROFILE)
    net = TestNetwork.create(tmp_path / "net", 5, nat=set(), wan=load_profile(profile), links=2)
    index = {net.org(k): k for k in net.indexes}
    try:
        assert "sparse, 2 links per member" in net.cli_json(1, "status")["mesh"]
        direct = {
            k: sorted(index[o] for o, p in _peers(net, k).items() if p["link"] != "relayed")
            for k in net.indexes
        }
        for k, linked in direct.items():
            assert len(linked) == 2, f"node {k} links to {linked}, not two"
            assert all(k in direct[j] for j in linked), "both sides know the link"
        proxied = rrn_json("devnet", "fault", "show", "--dir", net.devnet.dir)["paths"]
        assert len(proxied) == 5, "a ring of five: five links, not the full mesh's ten"

        # Every node hears the two it does not link to, through the others.
        for k in net.indexes:
            net.wait(
                lambda k=k: all(p["state"] == "up" and p["live"] for p in _peers(net, k).values()),
                f"node {k} to hear every member alive",
            )
        first = net.raise_alert(1)
        net.wait_holds({first})

        # One link of the ring cut: the long way round still carries everything.
        a, b = 1, direct[1][0]
        rrn_json("devnet", "fault", "cut", str(a), str(b), "--dir", net.devnet.dir)
        time.sleep(6)  # past a down-interval (3 s)
        assert _peers(net, a)[net.org(b)]["live"], "cut link, member still live via others"
        around = net.raise_alert(a)
        net.wait_holds({around}, nodes=[b])
        rrn_json("devnet", "fault", "heal", "--all", "--dir", net.devnet.dir)

        # One member stopped (k - 1 = 1): the rest still reach each other.
        gone = direct[1][1]
        net.devnet.stop(gone)
        rest = [k for k in net.indexes if k != gone]
        without = net.raise_alert(1)
        net.wait_holds({without}, nodes=rest)
        net.wait(lambda: not _peers(net, 1)[net.org(gone)]["live"], "the stopped member to be down")
        net.devnet.start(gone)
        net.wait_converged()
    finally:
        net.close()


def test_a_running_network_goes_sparse_by_a_roster_change(tmp_path: Path) -> None:
    """Five members in a full mesh approve `links = 2`: each node drops the links the
    new roster does not list (their heartbeats stop), and alerts still reach all."""
    net = TestNetwork.create(tmp_path / "net", 5, nat=set())
    try:
        for k in net.indexes:
            net.wait(lambda k=k: net.metric(k, "rrn_peers_connected") == 4, f"node {k} linked")
        proposed = net.cli_json(1, "member", "propose", "--links", "2")
        for k in (2, 3, 4):  # the devnet's threshold: four of five
            net.wait(lambda k=k: len(net.cli_json(k, "member", "proposals")) == 1, "the proposal")
            net.cli(k, "member", "approve", proposed["roster_id"][:12])
        for k in net.indexes:
            net.wait(lambda k=k: net.roster_version(k) == 1, f"node {k} adopting the roster")
        assert "sparse, 2 links" in net.cli_json(4, "status")["mesh"]
        for k in net.indexes:
            net.wait(
                lambda k=k: net.metric(k, "rrn_peers_connected") == 2,
                f"node {k} to hear heartbeats over its two links only",
            )
            assert sum(p["link"] == "relayed" for p in _peers(net, k).values()) == 2
        after = net.raise_alert(1)
        net.wait_holds({after})
    finally:
        net.close()
