"""Need-to-know across a real network: consent, exclusions, supporters, tombstones.

Five members: two NGOs (Lima raises, Nairobi responds), an implicated company
(Jakarta), the mission of the perpetrator state (Berlin, state PE) and another
state's mission (Manila, state FR). The excluded members hold the alert's events
as opaque links of Lima's chain and can read nothing of it — not its country,
its incident types or its asks — while their copy of the chain still verifies.
Then Lima deletes the alert and every node drops its payloads.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from rrn.node.natsd.conf import MIRROR_USER
from rrn.protocol.roster import Role
from rrn.protocol.subjects import EVENT_ID_HEADER
from tests.netkit import Capture, TestNetwork
from tests.procs import rrn

pytestmark = pytest.mark.integration

LIMA, NAIROBI, COMPANY, PERPETRATOR_MISSION, MISSION = 1, 2, 3, 4, 5


def _holds(root: Path, needle: bytes) -> list[str]:
    """Files under `root` whose bytes contain `needle`."""
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _payloads(net: TestNetwork, k: int, ids: set[str]) -> dict[str, bool]:
    """For each of these event ids held by node k: whether its payload is still stored."""
    with sqlite3.connect(f"file:{net.home(k) / 'store.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, payload IS NOT NULL FROM events").fetchall()
    return {bytes(i).hex(): bool(p) for i, p in rows if bytes(i).hex() in ids}


def test_excluded_members_learn_nothing_and_a_tombstone_deletes_everywhere(
    tmp_path: Path,
) -> None:
    tag = secrets.token_hex(6)
    markers = {"identity": f"CANARY{tag}ID", "location": f"CANARY{tag}LOC"}
    details = tmp_path / "details.json"
    details.write_text(json.dumps(markers))
    net = TestNetwork.create(
        tmp_path / "net",
        5,
        nat=set(),
        roles={
            COMPANY: [Role.COMPANY],
            PERPETRATOR_MISSION: [Role.EMBASSY],
            MISSION: [Role.EMBASSY],
        },
        states={PERPETRATOR_MISSION: "PE", MISSION: "FR"},
    )
    company = net.org(COMPANY)
    try:
        # An ask to embassies needs consent for embassies: refused without it.
        refused = rrn(
            *("alert", "raise", "--country", "PE", "--type", "judicial_harassment"),
            *("--severity", "severe", "--urgency", "immediate"),
            *("--ask", "private_diplomacy:embassy", "--home", net.home(LIMA)),
        )
        assert refused.returncode == 1 and "consent" in refused.stderr

        alert = net.cli_json(
            LIMA,
            *("alert", "raise", "--country", "PE", "--type", "judicial_harassment"),
            *("--severity", "severe", "--urgency", "immediate"),
            *("--ask", "private_diplomacy:embassy", "--details", str(details)),
            *("--consent", "network", "--consent", "embassies", "--consent", "companies"),
            *("--consent-by", "defender", "--exclude", company, "--perpetrator-state", "PE"),
        )
        assert alert["audience"] == sorted([net.org(LIMA), net.org(NAIROBI), net.org(MISSION)]), (
            "the company and the perpetrator state's mission are left out"
        )
        ref = alert["id"][:12]
        net.wait_holds({alert["id"]})

        # The audience sees and handles it; the mission answers the ask addressed to it.
        assert net.cli_json(NAIROBI, "alert", "show", ref)["alert"]["country"] == "PE"
        asks = net.cli_json(MISSION, "asks")
        assert [(a["action"], a["to"]) for a in asks] == [("private_diplomacy", "embassy")]
        assert net.cli_json(NAIROBI, "asks") == [], "an NGO is not asked for private diplomacy"
        net.cli(MISSION, "alert", "pledge", ref, "--action", "private_diplomacy")
        net.cli(
            MISSION, "alert", "act", ref, "--action", "private_diplomacy", "--result", "effective"
        )
        net.cli(NAIROBI, "alert", "claim", ref)
        net.wait(
            lambda: net.cli_json(NAIROBI, "alert", "show", ref)["details"] == markers,
            "the claiming responder reading the details",
        )
        net.cli(LIMA, "alert", "feedback", ref, "--type", "actions_taken")
        net.wait(
            lambda: net.metric(LIMA, "rrn_pledges_fulfilled_total", role="embassy") == 1,
            "the pledge counted as fulfilled",
        )
        assert net.metric(LIMA, "rrn_alert_time_to_pledge_seconds_count", role="embassy") == 1
        assert net.metric(LIMA, "rrn_alert_time_to_feedback_seconds_count") == 1
        ids = net.wait_converged()

        # The excluded members hold every event, opaque, and nothing else.
        for k in (COMPANY, PERPETRATOR_MISSION):
            assert net.cli_json(k, "alert", "list", "--all") == []
            shown = rrn("alert", "show", ref, "--home", net.home(k))
            assert shown.returncode == 1 and "no alert with id" in shown.stderr
            assert net.cli_json(k, "asks", "--all") == []
            assert net.metric(k, "rrn_events_opaque_total") >= 5
            assert "ok:" in net.cli(k, "log", "verify"), "their copy of the chains verifies"
            for secret in (b"judicial_harassment", b"private_diplomacy", tag.encode()):
                assert not _holds(net.home(k), secret), (k, secret)
        assert _holds(net.home(NAIROBI), b"judicial_harassment"), "the audience holds it"

        # Lima deletes the alert: payloads go everywhere, the chains still verify.
        alert_events = {e["id"] for e in net.cli_json(LIMA, "alert", "show", ref)["events"]}
        forgot = net.cli_json(LIMA, "alert", "forget", ref, "--reason", "consent_withdrawn")
        assert forgot["events"] == len(alert_events)
        tomb = net.wait_converged() - ids
        assert len(tomb) == 1
        for k in net.indexes:
            readers = k in (LIMA, NAIROBI, MISSION)
            expected = alert_events if readers else _own_events(net, k, LIMA, alert_events)
            net.wait(
                lambda k=k, expected=expected: not any(_payloads(net, k, expected).values()),
                f"node {k} deleting the alert's payloads",
            )
            assert all(_payloads(net, k, tomb).values()), "the tombstone itself stays"
            assert "ok:" in net.cli(k, "log", "verify")
            # Erasing from the integrators' streams follows the commit by a moment.
            for secret in (b"judicial_harassment", tag.encode()):
                net.wait(
                    lambda k=k, secret=secret: not _holds(net.home(k), secret),
                    f"node {k} erasing {secret!r} from every file it keeps",
                    timeout=20,
                )
            # Exactly the alert's messages left the integrators' stream; the rest stayed.
            net.wait(
                lambda k=k, expected=expected: not asyncio.run(_stream_ids(net, k)) & expected,
                f"node {k} erasing the alert's events from its integrators' stream",
            )
            assert tomb <= asyncio.run(_stream_ids(net, k)), "its neighbours stay"
        gone = rrn("alert", "show", ref, "--home", net.home(NAIROBI))
        assert gone.returncode == 1 and "deleted by its origin" in gone.stderr

    finally:
        net.close()


async def _stream_ids(net: TestNetwork, k: int) -> set[str]:
    """The event ids in node k's integrators' copy of RRN_EVENTS (its mirror)."""
    password = (net.home(k) / "keys" / "nats.pass").read_text().strip()
    url = net.cli_json(k, "status")["nats_url"]
    nc = await nats.connect(url, user=MIRROR_USER, password=password)
    found: set[str] = set()
    try:
        config = ConsumerConfig(ack_policy=AckPolicy.NONE, headers_only=True)
        sub = await nc.jetstream().pull_subscribe(">", stream="RRN_EVENTS", config=config)
        while True:
            try:
                msgs = await sub.fetch(256, timeout=1.0)
            except nats.errors.TimeoutError:
                break
            found.update((m.headers or {}).get(EVENT_ID_HEADER, "") for m in msgs)
            if msgs[-1].metadata.num_pending == 0:
                break
    finally:
        await nc.close()
    return found


def _own_events(net: TestNetwork, k: int, origin: int, ids: set[str]) -> set[str]:
    """Which of these events node k holds that `origin` signed."""
    with sqlite3.connect(f"file:{net.home(k) / 'store.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id FROM events WHERE origin = ?", (net.org(origin),)).fetchall()
    return {bytes(r[0]).hex() for r in rows} & ids


def test_a_pseudonym_maps_to_the_identity_at_the_origin_only_and_encrypted(
    tmp_path: Path,
) -> None:
    marker = f"CANARY{secrets.token_hex(6)}NAME"
    identity = tmp_path / "identity.txt"
    identity.write_text(f"{marker}, land defender, +51 999 000 111\n")
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    wiretap = Capture(net, 1)
    try:
        pseudonym = net.cli_json(1, "defender", "add", "--identity", str(identity))["pseudonym"]
        alert = net.cli_json(
            1,
            *("alert", "raise", "--country", "CO", "--type", "death_threat"),
            *("--severity", "severe", "--urgency", "immediate", "--pseudonym", pseudonym),
        )
        net.wait_holds({alert["id"]})
        assert net.cli_json(2, "alert", "show", alert["id"][:12])["alert"]["pseudonym"] == pseudonym
        shown = net.cli_json(1, "defender", "show", pseudonym)
        assert marker in shown["identity"], "the origin maps the pseudonym back"
        assert [d["pseudonym"] for d in net.cli_json(1, "defender", "list")] == [pseudonym]
        elsewhere = rrn("defender", "show", pseudonym, "--home", net.home(2))
        assert elsewhere.returncode == 1 and "not minted here" in elsewhere.stderr
        assert not [m for m in wiretap.stop() if marker.encode() in m], "never on NATS in clear"
        assert not _holds(net.devnet.dir, marker.encode()), "encrypted at rest, nowhere else"

        net.cli(1, "defender", "forget", pseudonym)
        gone = rrn("defender", "show", pseudonym, "--home", net.home(1))
        assert gone.returncode == 1 and "forgotten" in gone.stderr
        bad = rrn("defender", "show", "Maria Lopez", "--home", net.home(1))
        assert bad.returncode == 1 and "a pseudonym is hrd-" in bad.stderr
        assert "Maria" not in bad.stderr
    finally:
        net.close()


def test_closed_alerts_are_deleted_everywhere_when_retention_ends(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set(), start=False)
    net.edit_config(1, "closed_days = 365.0", "closed_days = 0.0")
    for k in net.indexes:
        net.devnet.start(k)
    try:
        kept = net.raise_alert(1)
        gone = net.raise_alert(1)
        # A check-in plan over once its one slot is answered and its grace has run out:
        # its event holds the defender's sealed details, so it goes too.
        soon = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3))
        made = net.cli_json(
            1, "checkin", "plan", f"--at={soon}", "--grace", "10s", "--country", "PE",
            "--type", "raid", "--severity", "minor", "--urgency", "days",
        )  # fmt: skip
        net.cli(1, "checkin", "record", made["plan"], "--slot", "0")
        net.cli(1, "checkin", "end", made["plan"])  # over now: no wait for its grace
        net.wait_holds({kept, gone, made["plan"]})
        net.cli(1, "alert", "resolve", gone[:12], "--outcome", "safe")
        for k in net.indexes:
            net.wait(
                lambda k=k: not any(_payloads(net, k, {gone, made["plan"]}).values()),
                f"node {k} deleting the closed alert and the plan that is over",
            )
            listed = [a["id"] for a in net.cli_json(k, "alert", "list", "--all")]
            assert listed == [kept], "the open alert stays, the closed one is gone"
            assert net.cli_json(k, "checkin", "list") == []
            assert "ok:" in net.cli(k, "log", "verify")
    finally:
        net.close()
