"""A drill on a real devnet: Lima schedules two exercise alerts in a short window for
Nairobi and Jakarta. They are raised at moments the revealed secret confirms, sealed
to the scope (the company outside it learns nothing), escalate and are claimed like
real alerts but are measured apart, page Jakarta but never Nairobi (whose people
opted out of drills), and are closed when the window ends; `rrn drill report` says
who answered."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from rrn.protocol.roster import Role
from tests.netkit import TestNetwork

pytestmark = pytest.mark.integration

LIMA, NAIROBI, JAKARTA, COMPANY = 1, 2, 3, 4


def _pager(net: TestNetwork, k: int, out: Path, *, drills: bool) -> None:
    command = json.dumps(["/bin/sh", "-c", f"cat >> {out}; echo >> {out}"])
    net.edit_config(k, "command = []", f"command = {command}")
    if not drills:
        net.edit_config(k, "drills = true", "drills = false")
    pid = net.devnet.running()[k]
    assert pid is not None
    os.kill(pid, signal.SIGHUP)


def _exercises(net: TestNetwork, k: int) -> list[dict[str, object]]:
    return [a for a in net.cli_json(k, "alert", "list", "--all") if a["exercise"]]


def test_a_drill_from_schedule_to_report(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 4, roles={COMPANY: [Role.COMPANY]})
    try:
        paged = {k: tmp_path / f"paged-{k}.jsonl" for k in (NAIROBI, JAKARTA)}
        _pager(net, NAIROBI, paged[NAIROBI], drills=False)
        _pager(net, JAKARTA, paged[JAKARTA], drills=True)
        net.wait(lambda: net.metric(LIMA, "rrn_peers_connected") == 3, "links up")
        drill = net.cli_json(
            LIMA, "drill", "schedule", "--hours", str(30 / 3600), "--mix", "immediate=1,days=1",
            "--scope", net.org(NAIROBI), "--scope", net.org(JAKARTA),
            "--country", "PE", "--type", "intimidation", "--lang", "es",
        )  # fmt: skip
        assert drill["scope"] == sorted(net.org(k) for k in (LIMA, NAIROBI, JAKARTA))
        net.wait(lambda: len(_exercises(net, JAKARTA)) >= 1, "the first exercise alert", 40)
        first = _exercises(net, JAKARTA)[0]
        net.cli(JAKARTA, "alert", "claim", str(first["id"])[:12])
        net.wait(lambda: len(_exercises(net, NAIROBI)) == 2, "both exercise alerts", 40)
        net.wait(lambda: net.cli_json(LIMA, "drill", "list")[0]["revealed"], "the reveal", 40)
        net.wait(
            lambda: all(a["status"] == "cancelled" for a in _exercises(net, NAIROBI)
                        if a["id"] != first["id"]),
            "the drill's other alert closed when the window ended",
        )  # fmt: skip
        late = next(a for a in _exercises(net, NAIROBI) if a["id"] != first["id"])
        assert late["end_code"] == "exercise_ended"
        assert _exercises(net, COMPANY) == [], "outside the scope: nothing"

        report = net.cli_json(NAIROBI, "drill", "report", drill["drill"][:12])
        assert report["verified"] is True, "the revealed secret matches the commitment"
        for a in report["alerts"]:
            assert a["moment_ms"] is not None and not a["early"]
            assert a["raised_ms"] - a["moment_ms"] < 15_000, "raised at its moment"
        members = {m["org"]: m for m in report["members"]}
        assert members[net.org(JAKARTA)]["claimed"] == 1
        assert members[net.org(NAIROBI)]["claimed"] == 0

        time.sleep(2)
        jakarta_pages = paged[JAKARTA].read_text() if paged[JAKARTA].exists() else ""
        assert '"exercise":true' in jakarta_pages, "Jakarta's people are paged for drills"
        assert not paged[NAIROBI].exists(), "Nairobi opted out: never paged for a drill"
        for k in (LIMA, NAIROBI, JAKARTA):
            assert (
                net.metric(k, "rrn_alert_time_to_claim_seconds_count", exercise="true") == 1
                and net.metric(k, "rrn_alert_time_to_claim_seconds_count", exercise="false") == 0
            )
    finally:
        net.close()
