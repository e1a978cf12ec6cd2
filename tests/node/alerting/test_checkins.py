"""Check-ins the network enforces, on a real devnet: a defender's plan at Lima, check-ins
through other members, Lima's node killed before a deadline (the alert is raised
anyway, once, and claimed elsewhere; a late check-in through another member ends
it), a forged and a replayed check-in from a compromised member that stop nothing,
a duress code that checks in like any other and raises an alert only Lima's people
see, and a plan's end that stops everything."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest

from rrn.protocol.checkins import CheckinRecorded, missed_alert_id
from rrn.protocol.encoding import encode
from rrn.protocol.sealing import decode_sealed
from tests.adversary import Adversary
from tests.netkit import TestNetwork

pytestmark = pytest.mark.integration

LIMA, NAIROBI, JAKARTA = 1, 2, 3
ALERT = ["--country", "PE", "--type", "death_threat", "--severity", "severe"]
ALERT += ["--urgency", "immediate", "--lang", "es"]


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ms / 1000))


def _slots(net: TestNetwork, k: int, plan: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = net.cli_json(k, "checkin", "list", plan)[0]["slots"]
    return found


def _metrics_url(net: TestNetwork, k: int) -> str:
    url: str = json.loads((net.home(k) / "run" / "daemon.json").read_text())["metrics_url"]
    return url


def _sealed_to_self(home: Path, org: str) -> list[int]:
    """The sizes of the events `org` sealed to itself alone, as another member holds them."""
    with sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT payload FROM events WHERE origin = ? AND kind = 'sealed'", (org,)
        ).fetchall()
    sizes = []
    for (payload,) in rows:
        blob = msgspec.msgpack.decode(bytes(payload))["sealed"]
        if decode_sealed(blob).recipients() == [org]:
            sizes.append(len(payload))
    return sizes


def _alerts(net: TestNetwork, k: int) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in net.cli_json(k, "alert", "list", "--all")}


def test_check_ins_enforced_by_the_network(tmp_path: Path) -> None:
    markers = {"identity": f"CANARY{secrets.token_hex(6)}", "location": "CANARYplace"}
    (tmp_path / "person.json").write_text(json.dumps(markers))
    net = TestNetwork.create(tmp_path / "net", 3, nat=set())
    try:
        net.wait(lambda: net.metric(LIMA, "rrn_peers_connected") == 2, "links up")
        now = int(time.time() * 1000)
        at = [now + 8_000, now + 12_000, now + 45_000]  # grace 10 s each
        made = net.cli_json(
            LIMA,
            "checkin",
            "plan",
            *(f"--at={_iso(t)}" for t in at),
            "--grace",
            "10s",
            *ALERT,
            "--details",
            str(tmp_path / "person.json"),
        )
        plan, codes = made["plan"], made["codes"]
        deadline = made["slots"][1]["deadline_ms"]  # slot 1's: its time (to the second) + grace
        assert [c["slot"] for c in codes] == [0, 1, 2] and len(codes[0]["code"]) == 19
        other = net.cli_json(
            LIMA, "checkin", "plan", f"--at={_iso(at[1])}", "--grace", "10s", *ALERT
        )["plan"]
        net.cli(LIMA, "checkin", "end", other)  # ended: its slot must raise nothing
        net.wait(lambda: len(net.cli_json(JAKARTA, "checkin", "list")) == 2, "plans to spread")

        # Slot 0: the defender checks in through Jakarta with the code on their card.
        net.cli(JAKARTA, "checkin", "record", plan, "--slot", "0", "--code", codes[0]["code"])
        with pytest.raises(AssertionError, match="not one of slot 1"):
            net.cli(NAIROBI, "checkin", "record", plan, "--slot", "1", "--code", "a" * 16)

        # A compromised Jakarta forges a check-in for slot 1, and replays slot 0's code
        # (public once used) for it: neither is a slot-1 code, so neither stops the alarm.
        bad = Adversary(net, JAKARTA)
        plan_id = bytes.fromhex(plan)
        forged = CheckinRecorded(plan=plan_id, slot=1, code="b" * 16)
        replay = CheckinRecorded(plan=plan_id, slot=1, code=codes[0]["code"].replace("-", ""))
        lies = [bad.sign("checkin.recorded", encode(p)) for p in (forged, replay)]
        bad.events(*lies)
        net.wait_holds({e.id.hex() for e in lies})  # its own node takes them back too

        # Lima's node dies before slot 1's deadline: the others raise the alert, once.
        net.devnet.stop(LIMA, kill=True)
        slot1 = missed_alert_id(plan_id, 1).hex()
        net.wait(lambda: slot1 in _alerts(net, NAIROBI), "the missed check-in's alert", timeout=60)
        time.sleep(3)  # let a second publisher's copy arrive, if any
        for k in (NAIROBI, JAKARTA):
            alerts = _alerts(net, k)
            missed = [a for a in alerts.values() if a["raised_ms"] == deadline]
            assert [a["id"] for a in missed] == [slot1], "one alert, however many published"
            assert missed[0]["origin"] == "lima-hr" and missed[0]["pseudonym"] == made["pseudonym"]
        assert net.metric(NAIROBI, "rrn_alert_transitions_refused_total", reason="bad_code") == 2
        published = sum(net.metric(k, "rrn_checkins_missed_total") for k in (NAIROBI, JAKARTA))
        assert published >= 1 and net.metric(NAIROBI, "rrn_checkin_plans_active") == 1
        assert _slots(net, NAIROBI, plan)[0]["state"] == "checked_in"
        net.cli(NAIROBI, "alert", "claim", slot1[:12])

        # The defender checks in late through Jakarta: the alert ends everywhere.
        net.cli(JAKARTA, "checkin", "record", plan, "--slot", "1", "--code", codes[1]["code"])
        net.wait(
            lambda: _alerts(net, NAIROBI)[slot1]["status"] == "cancelled", "the check-in to end it"
        )
        assert _alerts(net, JAKARTA)[slot1]["end_code"] == "checked_in"
        assert all(s["state"] != "missed" for s in _slots(net, NAIROBI, other))

        # Slot 2 with the duress code, through Nairobi while Lima is back.
        net.devnet.start(LIMA)
        net.cli(
            NAIROBI, "checkin", "record", plan, "--slot", "2", "--code", codes[2]["duress_code"]
        )
        duress = missed_alert_id(plan_id, 2, duress=True).hex()
        net.wait(lambda: duress in _alerts(net, LIMA), "Lima's people to see the duress alert")
        assert _alerts(net, LIMA)[duress]["status"] in {"open", "escalated"}
        time.sleep(3)
        for k in (NAIROBI, JAKARTA):
            assert duress not in _alerts(net, k), "nobody else's screen shows it"
            assert _slots(net, k, plan)[2]["state"] == "checked_in", "a check-in like any"
        assert net.cli(LIMA, "log", "verify").startswith("ok:")

        # Lima acknowledged every check-in it saw with an event sealed to itself: the
        # duress one and the others alike in size, so no member can tell them apart.
        def acks() -> list[int]:
            return _sealed_to_self(net.home(NAIROBI), net.org(LIMA))

        net.wait(lambda: len(acks()) >= 2, "Lima's acknowledgements")
        assert len(set(acks())) == 1, f"acknowledgements of different sizes: {acks()}"

        # The defender's details went with the plan, sealed: the planning member reads
        # them on the missed check-in's alert, and resealed them to Nairobi, which claimed
        # it; Jakarta cannot; no file, log or metrics page holds them.
        assert net.cli_json(LIMA, "alert", "show", slot1[:12])["details"] == markers
        net.wait(
            lambda: net.cli_json(NAIROBI, "alert", "show", slot1[:12])["details"] == markers,
            "the claimant reading the details",
        )
        assert net.cli_json(JAKARTA, "alert", "show", slot1[:12])["details"] is None
        for path in (p for p in net.devnet.dir.rglob("*") if p.is_file()):
            data = path.read_bytes()
            assert not any(m.encode() in data for m in markers.values()), path
        for k in net.indexes:
            page = urllib.request.urlopen(_metrics_url(net, k), timeout=5).read().decode()
            assert "CANARY" not in page
    finally:
        net.close()
