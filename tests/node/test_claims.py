"""Claims across a real network: concurrent claims converge; release and hand-over."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.netkit import TestNetwork
from tests.procs import rrn

pytestmark = pytest.mark.integration


def test_two_members_claim_at_once_and_everyone_sees_both_then_a_hand_over(
    tmp_path: Path,
) -> None:
    net = TestNetwork.create(tmp_path / "net", 3)
    try:
        alert = net.raise_alert(1)
        net.wait_holds({alert})
        claims = [
            threading.Thread(target=net.cli, args=(k, "alert", "claim", alert[:12], "--for", "60"))
            for k in (2, 3)
        ]
        for t in claims:
            t.start()
        for t in claims:
            t.join(60)

        def views() -> list[dict[str, object]]:
            return [net.cli_json(k, "alert", "show", alert[:12])["alert"] for k in net.indexes]

        net.wait(
            lambda: all(v["claimants"] == ["jakarta-pb", "nairobi-dl"] for v in views()),
            "both claims visible on every node",
        )
        assert all(v["status"] == "claimed" for v in views())

        refused = rrn("alert", "release", alert[:12], "--home", net.home(1))
        assert refused.returncode == 1 and "holds no claim" in refused.stderr
        net.cli(2, "alert", "release", alert[:12], "--to", "lima-hr")
        net.cli(3, "alert", "release", alert[:12])
        net.wait(
            lambda: all(
                v["claimants"] == [] and v["handover_to"] == "lima-hr" and v["status"] == "open"
                for v in views()
            ),
            "the releases and the hand-over everywhere",
        )
        assert "handed over to lima-hr" in net.cli(1, "alert", "show", alert[:12])
    finally:
        net.close()
