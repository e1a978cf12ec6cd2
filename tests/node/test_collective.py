"""Collective actions on a real network (PROTOCOL 4.9): supporters join a joint letter,
bound only once enough of them join by the deadline.

Six members: Lima raises and proposes, Nairobi responds (and may not join), two
companies and an embassy are the supporters asked, and an implicated company is
excluded from the alert. The excluded member never sees the proposal or its text;
joiners are not named until the threshold is met, then every node names the same
committed members at once; joins signed after the deadline count for nothing,
however they arrive, while one signed in time counts even if it arrives late.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rrn.federation.collective import MAX_PROPOSALS
from rrn.node.alerting.collective import PAGES_PER_PROPOSER
from rrn.protocol.collective import CollectiveJoined, CollectiveProposed, Quota
from rrn.protocol.kinds import encode_payload
from rrn.protocol.roster import Role
from rrn.protocol.vocabulary import ActionType
from tests.adversary import Adversary
from tests.netkit import Capture, TestNetwork
from tests.procs import rrn

pytestmark = pytest.mark.integration

LIMA, NAIROBI, ACME, BOLT, MISSION, IMPLICATED = 1, 2, 3, 4, 5, 6
SUPPORTERS = (ACME, BOLT, MISSION)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNetwork]:
    n = TestNetwork.create(
        tmp_path_factory.mktemp("collective") / "net",
        6,
        nat=set(),
        roles={
            ACME: [Role.COMPANY],
            BOLT: [Role.COMPANY],
            MISSION: [Role.EMBASSY],
            IMPLICATED: [Role.COMPANY],
        },
        states={MISSION: "FR"},
    )
    try:
        yield n
    finally:
        n.close()


def _alert(net: TestNetwork, tmp: Path, canary: str, *, exclude: bool = True) -> str:
    details = tmp / "details.json"
    details.write_text(json.dumps({"identity": f"{canary}ID"}))
    alert = net.cli_json(
        LIMA,
        *("alert", "raise", "--country", "PE", "--type", "judicial_harassment"),
        *("--severity", "severe", "--urgency", "days", "--details", str(details)),
        *("--ask", "business_partner_engagement:company", "--ask", "private_diplomacy:embassy"),
        *("--consent", "network", "--consent", "embassies", "--consent", "companies"),
        *("--consent-by", "defender"),
        *(("--exclude", net.org(IMPLICATED)) if exclude else ()),
    )
    net.wait_holds({alert["id"]})
    return str(alert["id"])


def _propose(net: TestNetwork, alert: str, text: Path, *extra: str) -> str:
    shown = net.cli_json(
        LIMA,
        *("collective", "propose", alert[:12], "--action", "joint_statement"),
        *("--text", str(text), *extra),
    )
    return str(shown["proposal"])


def _show(net: TestNetwork, k: int, proposal: str) -> dict[str, Any]:
    return dict(net.cli_json(k, "collective", "show", proposal[:12]))


def _seen_everywhere(net: TestNetwork, proposal: str, nodes: tuple[int, ...]) -> None:
    for k in nodes:
        net.wait(
            lambda k=k: any(
                p["proposal"] == proposal for p in net.cli_json(k, "collective", "list")
            ),
            f"node {k} holding the proposal",
        )


def _refused(net: TestNetwork, k: int, signer: int, reason: str) -> bool:
    labels = {"signer": net.org(signer), "kind": "collective", "reason": reason}
    return net.metric(k, "rrn_alert_transitions_refused_total", **labels) >= 1


def _notices(cap: Capture) -> list[dict[str, Any]]:
    found = []
    for m in cap.messages:
        subject, _, data = m.split(b"\n", 2)
        if subject.startswith(b"rrn.local.alerts.collective."):
            found.append(json.loads(data))
    return found


def test_a_joint_letter_binds_its_joiners_once_the_threshold_is_met(
    net: TestNetwork, tmp_path: Path
) -> None:
    canary = f"CANARY{secrets.token_hex(6)}"
    alert = _alert(net, tmp_path, canary)
    letter = tmp_path / "letter.txt"
    letter.write_text(f"Dear Minister, {canary}TEXT ...\n")
    caps = {k: Capture(net, k) for k in SUPPORTERS}
    proposal = _propose(
        net, alert, letter, "--need", "company=2", "--need", "embassy=1", "--deadline", "1h"
    )
    _seen_everywhere(net, proposal, (NAIROBI, *SUPPORTERS))

    # The supporters may join and read the text; the responder may not join.
    for k in SUPPORTERS:
        shown = _show(net, k, proposal)
        assert shown["eligible"] and shown["state"] == "open", shown
        assert f"{canary}TEXT" in shown["text"]
    assert not _show(net, NAIROBI, proposal)["eligible"]
    refused = rrn("collective", "join", proposal[:12], "--home", net.home(NAIROBI))
    assert refused.returncode == 1 and "may not join" in refused.stderr

    # One company joins: counted, not named, to anyone (its own node says it joined).
    net.cli(ACME, "collective", "join", proposal[:12])
    net.wait(
        lambda: _show(net, BOLT, proposal)["joined_by_role"] == {"company": 1, "embassy": 0},
        "the first join to be counted",
    )
    for k in (LIMA, BOLT, MISSION):
        assert _show(net, k, proposal)["committed"] == []
    assert _show(net, ACME, proposal)["mine"] == "joined"

    # The other two join at the same moment: every node derives the same outcome.
    joins = [
        threading.Thread(target=net.cli, args=(k, "collective", "join", proposal[:12]))
        for k in (BOLT, MISSION)
    ]
    for t in joins:
        t.start()
    for t in joins:
        t.join()
    committed = sorted(net.org(k) for k in SUPPORTERS)
    outcomes = set()
    for k in (LIMA, NAIROBI, *SUPPORTERS):
        net.wait(lambda k=k: _show(net, k, proposal)["state"] == "met", f"node {k} seeing it met")
        shown = _show(net, k, proposal)
        assert sorted(shown["committed"]) == committed
        outcomes.add((shown["met_ms"], tuple(shown["committed"])))
    assert len(outcomes) == 1, "the same outcome on every node"

    # Each joiner was told of the proposal, then that it is met, naming all three.
    for cap in caps.values():
        net.wait(lambda cap=cap: any(n["reason"] == "met" for n in _notices(cap)), "the notice")
        told = _notices(cap)
        assert [n["reason"] for n in told] == ["proposed", "met"], "once each"
        assert sorted(told[-1]["members"]) == committed
        assert all(canary not in json.dumps(n) for n in told)
        cap.stop()
    assert net.metric(NAIROBI, "rrn_collective_thresholds_met_total", action="joint_statement") == 1
    assert net.metric(NAIROBI, "rrn_collective_joins_total", role="company") == 2

    # The joiners sign the final text: two sign the text proposed, one a new version.
    net.cli(ACME, "collective", "sign", proposal[:12])
    net.cli(BOLT, "collective", "sign", proposal[:12])
    final = tmp_path / "final.txt"
    final.write_text("Dear Minister, amended\n")
    net.cli(MISSION, "collective", "sign", proposal[:12], "--text", str(final))
    net.wait(lambda: len(_show(net, LIMA, proposal)["signatures"]) == 2, "the signatures")
    shown = _show(net, LIMA, proposal)
    assert shown["signatures"][shown["text_hash"]] == sorted([net.org(ACME), net.org(BOLT)])
    text = net.cli(LIMA, "collective", "show", proposal[:12])
    assert "signed the text proposed" in text and f"{canary}TEXT" in text

    # A withdrawal after the threshold is recorded as such; the member stays committed.
    net.cli(BOLT, "collective", "withdraw", proposal[:12])
    net.wait(
        lambda: _show(net, MISSION, proposal)["withdrew_after"] == [net.org(BOLT)],
        "the withdrawal to be recorded",
    )
    assert sorted(_show(net, MISSION, proposal)["committed"]) == committed

    # The implicated company never learns of it: nothing listed, nothing in its files.
    bad = net.home(IMPLICATED)
    assert net.cli_json(IMPLICATED, "collective", "list", "--all") == []
    for path in bad.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path
    assert net.metric(IMPLICATED, "rrn_collective_proposals_total") == 0


def test_an_unmet_proposal_commits_nobody_and_late_joins_count_for_nothing(
    net: TestNetwork, tmp_path: Path
) -> None:
    alert = _alert(net, tmp_path, f"CANARY{secrets.token_hex(6)}")
    letter = tmp_path / "letter.txt"
    letter.write_text("Dear Minister, ...\n")
    proposal = _propose(net, alert, letter, "--need", "company=2", "--deadline", "15s")
    _seen_everywhere(net, proposal, (ACME, BOLT, NAIROBI))
    deadline = int(_show(net, LIMA, proposal)["deadline_ms"])

    # A withdrawal before the threshold undoes the join.
    net.cli(ACME, "collective", "join", proposal[:12])
    net.cli(ACME, "collective", "withdraw", proposal[:12])
    net.cli(BOLT, "collective", "join", proposal[:12])
    net.wait(
        lambda: _show(net, LIMA, proposal)["joined_by_role"] == {"company": 1},
        "one join standing",
    )

    # A member that may not join signs a join anyway: refused by every node.
    nairobi = Adversary(net, NAIROBI)
    alert_id, proposal_id = bytes.fromhex(alert), bytes.fromhex(proposal)
    join = encode_payload(CollectiveJoined(alert=alert_id, proposal=proposal_id))
    nairobi.events(nairobi.sign("collective.joined", join))
    # So does the excluded company, although it guessed the ids (it holds only opaque events).
    implicated = Adversary(net, IMPLICATED)
    implicated.events(implicated.sign("collective.joined", join))

    # Acme was cut off: its join signed in time arrives after the deadline (it counts);
    # a join it signs after the deadline counts for nothing anywhere.
    time.sleep(max(0.0, (deadline - time.time() * 1000) / 1000) + 1)
    late = rrn("collective", "join", proposal[:12], "--home", net.home(ACME))
    assert late.returncode == 1 and "deadline has passed" in late.stderr
    acme = Adversary(net, ACME)
    too_late = acme.sign("collective.joined", join, wall_ms=deadline + 1)
    acme.events(too_late)
    for k in (LIMA, NAIROBI, BOLT, MISSION):
        net.wait(
            lambda k=k: (
                _refused(net, k, ACME, "too_late")
                and _refused(net, k, NAIROBI, "not_eligible")
                and _refused(net, k, IMPLICATED, "outside_audience")
            ),
            f"node {k} refusing the three joins",
        )
        shown = _show(net, k, proposal)
        assert shown["state"] == "expired" and shown["committed"] == [], shown
    # A join signed in time but delivered late counts, in the order of signed times.
    in_time = Adversary(net, BOLT)
    second = _propose(net, alert, letter, "--need", "company=2", "--deadline", "1h")
    _seen_everywhere(net, second, (ACME, BOLT))
    signed_at = int(time.time() * 1000)
    held = in_time.sign(
        "collective.joined",
        encode_payload(CollectiveJoined(alert=alert_id, proposal=bytes.fromhex(second))),
        wall_ms=signed_at,
    )
    net.cli(ACME, "collective", "join", second[:12])
    time.sleep(2)  # Bolt's join, signed before Acme's, arrives after it
    in_time.events(held)
    for k in (LIMA, NAIROBI, MISSION):
        net.wait(lambda k=k: _show(net, k, second)["state"] == "met", f"node {k} seeing it met")
        shown = _show(net, k, second)
        assert shown["committed"] == [net.org(BOLT), net.org(ACME)], "ordered by signed time"
        assert shown["met_ms"] > signed_at


def test_a_member_cannot_page_the_supporters_at_will_nor_backdate_a_join(
    net: TestNetwork, tmp_path: Path
) -> None:
    """Nairobi, turned, proposes on an alert again and again: the rules refuse every
    proposal past MAX_PROPOSALS alike everywhere, and each supporter's node pages its
    people for at most PAGES_PER_PROPOSER of them an hour (the rest are listed and
    counted). The embassy, turned, signs a join dated before the proposal: refused."""
    alert = _alert(net, tmp_path, f"CANARY{secrets.token_hex(6)}", exclude=False)
    caps = {k: Capture(net, k) for k in (ACME, MISSION)}
    nairobi = Adversary(net, NAIROBI)
    ask = CollectiveProposed(
        alert=bytes.fromhex(alert),
        action=ActionType.PRIVATE_DIPLOMACY,
        threshold=[Quota(role=Role.COMPANY, count=1), Quota(role=Role.EMBASSY, count=1)],
        deadline_ms=int(time.time() * 1000) + 3_600_000,
    )
    flood = [nairobi.sign("collective.proposed", encode_payload(ask)) for _ in range(8)]
    nairobi.events(*flood)
    extra = len(flood) - MAX_PROPOSALS
    for k in (LIMA, ACME, BOLT, MISSION):
        net.wait(
            lambda k=k: (
                net.metric(
                    k, "rrn_alert_transitions_refused_total",
                    signer=net.org(NAIROBI), kind="collective", reason="too_many",
                ) == extra
            ),
            f"node {k} refusing the proposals past {MAX_PROPOSALS}",
        )  # fmt: skip
        mine = [p for p in net.cli_json(k, "collective", "list") if p["alert"] == alert]
        assert len(mine) == MAX_PROPOSALS, mine
    refused = rrn(
        *("collective", "propose", alert[:12], "--action", "private_diplomacy"),
        *("--need", "embassy=1", "--deadline", "1h", "--home", str(net.home(NAIROBI))),
    )
    assert refused.returncode == 1 and f"made {MAX_PROPOSALS} proposals" in refused.stderr

    # At least the accepted proposals past the bound are held back; more when the
    # flood arrived in several batches: the rules order a member's proposals by
    # signed time and id, so a later batch can refuse one a node had already looked
    # at and accept another (same millisecond, smaller id), which it looks at too.
    held = MAX_PROPOSALS - PAGES_PER_PROPOSER
    net.wait(
        lambda: net.metric(ACME, "rrn_collective_notices_held_total") >= held,
        f"Acme's node holding back the pages past {PAGES_PER_PROPOSER}",
    )
    for cap in caps.values():  # the embassy's too: never more than the bound
        told = [n for n in _notices(cap) if n["reason"] == "proposed"]
        assert len(told) <= PAGES_PER_PROPOSER, told
        cap.stop()
    assert len([n for n in _notices(caps[ACME]) if n["reason"] == "proposed"]) == PAGES_PER_PROPOSER

    # A join dated a second before the proposal (after its own last event, so its chain
    # takes it) counts for nothing anywhere.
    first = min(flood, key=lambda e: (e.header.wall_ms, e.id))
    mission = Adversary(net, MISSION)
    early = CollectiveJoined(alert=bytes.fromhex(alert), proposal=first.id)
    mission.events(
        mission.sign(
            "collective.joined", encode_payload(early), wall_ms=first.header.wall_ms - 1_000
        )
    )
    for k in (LIMA, ACME, BOLT):
        net.wait(lambda k=k: _refused(net, k, MISSION, "too_soon"), f"node {k} refusing it")
        assert _show(net, k, first.id.hex())["joined_by_role"]["embassy"] == 0
