"""Members tell each other what they run (PROTOCOL.md 10.1a): `rrn peers` shows it, and
a different tz database shows on /metrics; what a member says for another is refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rrn.node.home.layout import open_home
from rrn.protocol.messages import MESSAGE_VERSION, Software, sign_software
from tests.netkit import TestNetwork, inject, network_id, rejected
from tests.procs import rrn_json

pytestmark = pytest.mark.integration


def _claim(net: TestNetwork, k: int, *, org: str, tz: str) -> bytes:
    """A software announcement signed with node k's real key."""
    sw = Software(
        v=MESSAGE_VERSION,
        net=network_id(net, k),
        org=org,
        epoch=1,
        wall_ms=int(time.time() * 1000),
        rrn="0.1.0",
        protocol=1,
        nats_server="v2.15.1",
        tz_database=tz,
        lock="",
    )
    return sign_software(open_home(net.home(k)).keys().signing_keys()[1], sw)


def test_members_see_what_each_other_runs(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    try:
        mine = rrn_json("version")  # the same install runs every node here

        def told() -> dict[str, object]:
            found: dict[str, object] = {p["org"]: p for p in net.cli_json(1, "peers")}[net.org(2)]
            return found

        net.wait(lambda: told().get("rrn") is not None, "node 2's announcement")
        peer = told()
        assert (peer["rrn"], peer["tz_database"], peer["lock"]) == (
            mine["rrn"],
            mine["tz_database"],
            mine["lock_sha256"],
        )
        assert "rrn " + mine["rrn"] in net.cli(1, "peers")
        assert net.metric(1, "rrn_peer_tz_database_differs", peer=net.org(2)) == 0

        # Node 2 says it now computes with another tz database: node 1 shows and counts it.
        inject(net, 2, "sw", _claim(net, 2, org=net.org(2), tz="1999z"))
        net.wait(lambda: told()["tz_database"] == "1999z", "the new announcement")
        net.wait(
            lambda: net.metric(1, "rrn_peer_tz_database_differs", peer=net.org(2)) == 1,
            "the mismatch on /metrics",
        )
        # What node 2 says in node 1's name is refused, and changes nothing.
        before = rejected(net, 1, net.org(2), "bad_signature")
        inject(net, 2, "sw", _claim(net, 2, org=net.org(1), tz="2000a"))
        net.wait(
            lambda: rejected(net, 1, net.org(2), "bad_signature") > before,
            "the forged announcement refused",
        )
        # (Node 2's own announcement may have come meanwhile: it re-announces itself.)
        assert all(p.get("tz_database") != "2000a" for p in net.cli_json(1, "peers"))
    finally:
        net.close()
