"""Escalation across a real network with short deadlines: down targets, gaps, the pool.

Each node is a real daemon with its own nats-server; the escalation policy is set
in the genesis roster (seconds instead of minutes) so the ladder climbs quickly.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import nats
import pytest

from rrn.node.home.layout import open_home
from rrn.node.natsd.conf import DAEMON_USER
from tests.netkit import TestNetwork

pytestmark = pytest.mark.integration

EVERY_DAY = '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'


def _declare(net: TestNetwork, k: int, tmp: Path, tz: str, regions: str, langs: str) -> None:
    path = tmp / f"cover-{k}.toml"
    path.write_text(
        f'tz = "{tz}"\n\n[[window]]\ndays = {EVERY_DAY}\nstart = "00:00"\nend = "24:00"\n'
        f"regions = {regions}\nlanguages = {langs}\n"
    )
    net.cli(k, "coverage", "declare", "--file", str(path))


def _declare_follow_the_sun(net: TestNetwork, tmp: Path) -> None:
    """Nairobi covers Kenya in Swahili; Jakarta anywhere in English; Lima only Peru."""
    _declare(net, 1, tmp, "America/Lima", '["PE"]', '["es"]')
    _declare(net, 2, tmp, "Africa/Nairobi", '["KE"]', '["sw", "en"]')
    _declare(net, 3, tmp, "Asia/Jakarta", '["*"]', '["en"]')

    def everyone_has_three() -> bool:
        return all(
            len(net.cli_json(k, "coverage", "show", "--tz", "UTC")["members"]) == 3
            for k in net.indexes
        )

    net.wait(everyone_has_three, "the three declarations on every node")


def _raise(net: TestNetwork, k: int, country: str, *extra: str) -> str:
    info = net.cli_json(
        k,
        "alert",
        "raise",
        "--country",
        country,
        "--type",
        "arbitrary_detention",
        "--severity",
        "severe",
        "--urgency",
        "immediate",
        *extra,
    )
    return str(info["id"])


def _show(net: TestNetwork, k: int, alert: str) -> dict[str, Any]:
    return dict(net.cli_json(k, "alert", "show", alert[:12])["alert"])


def test_first_target_down_escalates_to_the_next_member_which_claims(tmp_path: Path) -> None:
    # Steps of a whole minute: the skip below happens because Nairobi's
    # heartbeats stopped, not because its step ran out.
    net = TestNetwork.create(tmp_path / "net", 3, escalation="immediate=60s,direct=3", start=False)
    try:
        hook_out = tmp_path / "jakarta-notices.jsonl"
        script = tmp_path / "page.py"
        script.write_text(
            "import sys\n"
            f"with open({str(hook_out)!r}, 'a') as f:\n"
            "    f.write(sys.stdin.read() + '\\n')\n"
        )
        net.edit_config(3, "command = []", "command = " + json.dumps([sys.executable, str(script)]))
        for k in net.indexes:
            net.devnet.start(k)
        _declare_follow_the_sun(net, tmp_path)

        probe = _raise(net, 1, "KE", "--lang", "sw")
        net.wait_holds({probe})
        first = _show(net, 1, probe)
        assert first["level"] == 0 and first["asked"] == ["nairobi-dl"], first
        assert first["deadline_ms"] - first["raised_ms"] == 60_000
        net.cli(2, "alert", "claim", probe[:12])

        net.devnet.stop(2)
        alert = _raise(net, 1, "KE", "--lang", "sw")

        def at_jakarta() -> bool:
            return all(_show(net, k, alert)["targets"] == ["jakarta-pb"] for k in (1, 3))

        net.wait(at_jakarta, "the alert to skip the stopped Nairobi node", timeout=45)
        view = _show(net, 3, alert)
        assert view["level"] == 1 and view["cause"] == "target_down", view
        assert view["status"] == "escalated" and view["asked"] == ["jakarta-pb"]

        net.wait(lambda: hook_out.exists() and alert in hook_out.read_text(), "Jakarta paged")
        notices = [json.loads(line) for line in hook_out.read_text().splitlines() if line]
        notice = next(n for n in notices if n["alert"] == alert)
        assert notice["member"] == "jakarta-pb" and notice["level"] == 1
        assert notice["reason"] == "target_down" and notice["pool"] is False
        assert "pseudonym" not in notice and notice["country"] == "KE"

        net.cli(3, "alert", "claim", alert[:12], "--for", "30")
        net.wait(
            lambda: all(_show(net, k, alert)["claimants"] == ["jakarta-pb"] for k in (1, 3)),
            "Jakarta's claim everywhere",
        )
        assert net.metric(1, "rrn_alert_escalations_total", level="1") >= 1
        assert (
            net.metric(
                3, "rrn_alert_time_to_claim_seconds_count", urgency="immediate", exercise="false"
            )
            == 2
        )
        assert net.metric(3, "rrn_notify_total", channel="command", outcome="ok") >= 1
    finally:
        net.close()


async def _collect_notices(home: Path, into: list[dict[str, Any]], stop: threading.Event) -> None:
    """Subscribe to the node's local notices (as an integrator would) until stopped."""
    info = json.loads((home / "run" / "daemon.json").read_text())
    nc = await nats.connect(
        info["nats_url"], user=DAEMON_USER, password=open_home(home).keys().nats_password
    )
    try:

        async def got(msg: Any) -> None:
            into.append(json.loads(msg.data))

        await nc.subscribe("rrn.local.alerts.>", cb=got)
        await asyncio.to_thread(stop.wait)
    finally:
        await nc.close()


def test_an_alert_in_a_gap_goes_to_the_pool_and_keeps_climbing_until_claimed(
    tmp_path: Path,
) -> None:
    net = TestNetwork.create(tmp_path / "net", 3, escalation="immediate=3s,direct=2")
    try:
        # Nairobi's people are paged again every second round of the pool, not each round.
        net.devnet.stop(2)
        net.edit_config(2, "pool_repeat_s = 3600", "pool_repeat_s = 6")  # two 3 s rounds
        net.devnet.start(2)
        _declare_follow_the_sun(net, tmp_path)
        notices: list[dict[str, Any]] = []
        stop = threading.Event()
        listener = threading.Thread(
            target=asyncio.run, args=(_collect_notices(net.home(2), notices, stop),), daemon=True
        )
        listener.start()
        try:
            # Jakarta narrows its cover from anywhere to Indonesia: nobody covers Brazil.
            _declare(net, 3, tmp_path, "Asia/Jakarta", '["ID"]', '["en"]')
            net.wait(
                lambda: all(
                    "*" not in {r["key"] for r in net.cli_json(k, "coverage", "show")["rows"]}
                    for k in net.indexes
                ),
                "Jakarta's narrower cover everywhere",
            )
            alert = _raise(net, 1, "BR")
            net.wait_holds({alert})
            first = _show(net, 2, alert)
            assert first["pool"] is True
            assert first["asked"] == ["jakarta-pb", "lima-hr", "nairobi-dl"]

            net.wait(lambda: _show(net, 1, alert)["level"] >= 2, "two rounds of the pool")
            view = _show(net, 3, alert)
            assert view["pool"] is True and view["cause"] == "deadline"
            assert view["targets"] == ["jakarta-pb", "lima-hr", "nairobi-dl"]
            net.wait(
                lambda: (
                    net.metric(1, "rrn_alerts_unclaimed_past_deadline", urgency="immediate") == 1
                ),
                "the lingering alert in the gauge",
            )
            asked = [
                n for n in notices if n["alert"] == alert and n["type"] in ("targeted", "pool")
            ]
            net.wait(
                lambda: (
                    len(
                        {n["level"] for n in notices if n["alert"] == alert and n["type"] == "pool"}
                    )
                    >= 2
                ),
                "Nairobi's people paged again after two rounds",
            )
            asked = [
                n for n in notices if n["alert"] == alert and n["type"] in ("targeted", "pool")
            ]
            assert all(n["type"] == "pool" and n["pool"] for n in asked)
            paged = sorted({n["level"] for n in asked})
            assert paged[:2] == [0, 2], f"paged at rounds {paged}, not every second one"
            escalated = {
                n["level"] for n in notices if n["alert"] == alert and n["type"] == "escalated"
            }
            assert 1 in escalated, "integrators still hear of each round"
            kinds = {n["type"] for n in notices if n["alert"] == alert}
            assert {"escalated", "unclaimed"} <= kinds, kinds
            ids = [n["id"] for n in notices]
            assert len(ids) == len(set(ids)), "each notice once"

            net.cli(2, "alert", "claim", alert[:12])
            net.wait(
                lambda: all(_show(net, k, alert)["status"] == "claimed" for k in net.indexes),
                "the claim everywhere",
            )
            # An escalation signed before the claim reached its signer may still be
            # on its way; once every node holds the same events, the level is final.
            net.wait_converged()
            level = _show(net, 1, alert)["level"]
            net.wait(
                lambda: (
                    net.metric(1, "rrn_alerts_unclaimed_past_deadline", urgency="immediate") == 0
                ),
                "the gauge back to zero",
            )
            # Claimed: the ladder stops (more than two step times pass, no escalation).
            time.sleep(7)
            assert all(_show(net, k, alert)["level"] == level for k in net.indexes)
        finally:
            stop.set()
            listener.join(10)
    finally:
        net.close()


def test_a_member_heard_only_through_others_is_asked_not_skipped(tmp_path: Path) -> None:
    # Nairobi and Jakarta are both behind NAT: neither can dial the other, so they
    # have no direct link and hear each other only through Lima (PROTOCOL.md 10.1b).
    net = TestNetwork.create(tmp_path / "net", 3, nat={2, 3}, escalation="immediate=60s,direct=3")
    try:
        _declare_follow_the_sun(net, tmp_path)
        peers = {p["org"]: p for p in net.cli_json(3, "peers")}
        assert peers["nairobi-dl"]["link"] == "relayed"
        net.wait(
            lambda: {p["org"]: p["state"] for p in net.cli_json(3, "peers")}["nairobi-dl"] == "up",
            "Jakarta to hear Nairobi through Lima",
        )
        assert net.metric(3, "rrn_peer_up", peer="nairobi-dl", link="relayed") == 1

        alert = _raise(net, 3, "KE", "--lang", "sw")
        net.wait_holds({alert})
        time.sleep(10)  # many down-intervals: Jakarta would have skipped Nairobi by now
        for k in net.indexes:
            view = _show(net, k, alert)
            assert view["level"] == 0 and view["asked"] == ["nairobi-dl"], (k, view)

        # Stopped, it is heard by nobody: skipped on every side.
        net.devnet.stop(2)
        net.wait(
            lambda: _show(net, 3, alert)["cause"] == "target_down",
            "Nairobi skipped once nobody hears it",
            timeout=45,
        )
        assert net.metric(3, "rrn_peer_up", peer="nairobi-dl", link="relayed") == 0
    finally:
        net.close()
