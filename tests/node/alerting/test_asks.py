"""Asks offered in turns on a real devnet (PROTOCOL 4.3c): Lima asks the companies for
business-partner engagement. The first company in the alert's order is told (`ask`),
told again when it has not answered by its reply-by (`reask`), then the ask is offered
to the second too, whose pledge stops the turns: the third is never offered it. Every
node measures the second company's time from offer to pledge, by role only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rrn.protocol.roster import Role
from tests.netkit import TestNetwork

pytestmark = pytest.mark.integration

LIMA = 1
COMPANIES = (2, 3, 4)
STEP_S = 2  # the answer window W is 3 steps: 6 s; a turn is 12 s
ENGAGE = "business_partner_engagement"


def _pages(out: Path, alert: str) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    found = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return [n for n in found if n["alert"] == alert]


def _asks(net: TestNetwork, k: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = net.cli_json(k, "asks")
    return found


def test_an_unanswered_ask_goes_to_the_next_company_until_one_pledges(tmp_path: Path) -> None:
    net = TestNetwork.create(
        tmp_path / "net",
        4,
        escalation=f"days={STEP_S}s",
        roles={k: [Role.COMPANY] for k in COMPANIES},
        start=False,
    )
    try:
        paged = {k: tmp_path / f"paged-{k}.jsonl" for k in COMPANIES}
        for k in COMPANIES:
            command = json.dumps(["/bin/sh", "-c", f"cat >> {paged[k]}; echo >> {paged[k]}"])
            net.edit_config(k, "command = []", f"command = {command}")
        for k in net.indexes:
            net.devnet.start(k)
        net.wait(lambda: net.metric(LIMA, "rrn_peers_connected") == 3, "links up")
        alert = net.raise_alert(
            LIMA, "--ask", f"{ENGAGE}:company", "--consent", "network",
            "--consent", "companies", "--consent-by", "defender",
        )  # fmt: skip
        net.cli(LIMA, "alert", "claim", alert[:12])  # Lima's own escalation stops here
        net.wait_holds({alert})
        offered = _asks(net, COMPANIES[0])[0]["offered_to"]
        assert len(offered) == 1, offered
        first = next(k for k in COMPANIES if net.org(k) == offered[0])
        mine = _asks(net, first)[0]
        assert mine["offered_ms"] is not None
        assert mine["reply_by_ms"] - mine["offered_ms"] == 3 * STEP_S * 1000
        assert mine["next_offer_ms"] - mine["offered_ms"] == 6 * STEP_S * 1000

        net.wait(lambda: _pages(paged[first], alert), "the first company's people told")
        asked = _pages(paged[first], alert)[0]
        assert (asked["type"], asked["reason"], asked["turn"]) == ("ask", "first", 0)
        assert asked["action"] == ENGAGE and asked["to"] == "company"
        assert "pseudonym" not in asked and asked["member"] == net.org(first)
        net.wait(
            lambda: [n["type"] for n in _pages(paged[first], alert)] == ["ask", "reask"],
            "the first company re-asked at its reply-by",
        )

        def second_told() -> int | None:
            return next((k for k in COMPANIES if k != first and _pages(paged[k], alert)), None)

        net.wait(lambda: second_told() is not None, "the ask offered to the next company")
        second = second_told()
        assert second is not None
        told = _pages(paged[second], alert)[0]
        assert (told["type"], told["reason"], told["turn"]) == ("ask", "unanswered", 1)
        net.cli(second, "alert", "pledge", alert[:12], "--action", ENGAGE)

        def measured(k: int) -> float:
            return net.metric(
                k, "rrn_ask_offer_to_pledge_seconds_count", role="company", exercise="false"
            )

        net.wait(lambda: measured(LIMA) == 1, "Lima measuring the pledge from its offer")
        third = next(k for k in COMPANIES if k not in (first, second))
        net.wait(lambda: _asks(net, third)[0]["pledged_by"] == [net.org(second)], "the pledge")
        seen = _asks(net, third)[0]
        assert seen["offered_to"] == [net.org(first), net.org(second)]
        assert seen["offered_ms"] is None and seen["next_offer_ms"] is None, "turns stopped"
        assert not _pages(paged[third], alert), "the third company is never asked"
        record = net.cli_json(second, "asks", "record")
        assert [o["alert"] for o in record["offers"]] == [alert]
        assert record["offers"][0]["pledged_s"] is not None
        assert record["own"]["offers"] == 1 and record["own"]["responded"] == 1
        assert {m["role"] for m in record["network"]} == {"company"}
    finally:
        net.close()
