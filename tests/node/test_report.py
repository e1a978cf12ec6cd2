"""`rrn report` over a devnet's history: its figures agree with those computed here
straight from the signed events (`rrn log export`), the page holds no defender's
identity, sealed detail or pseudonym, needs nothing from outside, and reads well in
Debian's Chromium (axe-core; a screenshot is kept in tests/artefacts/)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rrn.node.home.keys import SealingKeys
from rrn.node.home.layout import open_home
from rrn.protocol.alerts import AlertClaimed, AlertPledged, AlertRaised
from rrn.protocol.envelope import open_envelope
from rrn.protocol.errors import ProtocolError
from rrn.protocol.kinds import unseal
from rrn.protocol.roster import Role
from tests.browser import axe_violations, chromium, describe, new_page, screenshot
from tests.netkit import TestNetwork

pytestmark = pytest.mark.integration

LIMA, NAIROBI, COMPANY = 1, 2, 3
#: country, type, severity, urgency, claimed by (node) or None, exercise
CASES = [
    ("PE", "death_threat", "severe", "immediate", NAIROBI, False),
    ("PE", "raid", "moderate", "days", LIMA, False),
    ("CO", "judicial_harassment", "moderate", "days", NAIROBI, False),
    ("KE", "arbitrary_detention", "extreme", "immediate", None, False),
    ("CO", "raid", "minor", "weeks", NAIROBI, False),
    ("PE", "intimidation", "minor", "days", NAIROBI, True),
]


def _rank(values: list[float], share: float) -> float | None:
    values = sorted(values)
    return values[max(0, math.ceil(share * len(values)) - 1)] if values else None


def _from_events(lines: list[dict[str, Any]], home: Path) -> dict[str, Any]:
    """The report's figures computed from the raw events (opened with the node's own
    key when sealed whole), not from any projection."""
    h = open_home(home)
    me, keys = h.config.node.org, SealingKeys(h.keys().sealing)
    raises: dict[bytes, tuple[int, AlertRaised]] = {}
    claims: dict[bytes, list[tuple[int, str]]] = {}
    pledges: dict[bytes, list[tuple[int, str]]] = {}
    for line in lines:
        if line["type"] != "event" or line["status"] != "applied":
            continue
        event = open_envelope(base64.b64decode(line["envelope"]))
        if event.payload is None:
            continue
        try:
            _, p, _ = unseal(event.header, event.payload, me, keys, event.header.net)
        except ProtocolError:
            continue  # sealed to others
        at = event.header.wall_ms
        if isinstance(p, AlertRaised):
            raises[event.id] = (at, p)
        elif isinstance(p, AlertClaimed):
            claims.setdefault(p.alert, []).append((at, event.header.origin))
        elif isinstance(p, AlertPledged):
            pledges.setdefault(p.alert, []).append((at, str(p.action)))
    real = {a: r for a, r in raises.items() if not r[1].exercise}
    first = {a: min(claims[a]) for a in real if a in claims}
    by_urgency: dict[str, list[float]] = {}
    by_member: dict[str, list[float]] = {}
    for a, (at, claimer) in first.items():
        by_urgency.setdefault(str(real[a][1].urgency), []).append((at - real[a][0]) / 1000)
        by_member.setdefault(claimer, []).append((at - real[a][0]) / 1000)
    return {
        "alerts": len(real),
        "exercises": len(raises) - len(real),
        "by_country": Counter(r.country for _, r in real.values()),
        "by_type": Counter(str(t) for _, r in real.values() for t in r.incident_types),
        "by_severity": Counter(str(r.severity) for _, r in real.values()),
        "claim_by_urgency": {
            u: (len(t), _rank(t, 0.5), _rank(t, 0.9)) for u, t in by_urgency.items()
        },
        "claim_by_member": {
            m: (len(t), _rank(t, 0.5), _rank(t, 0.9)) for m, t in by_member.items()
        },
        "pledged": sum(1 for a in real if a in pledges),
    }


def test_the_report_agrees_with_the_events_and_names_nobody(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 3, roles={COMPANY: [Role.COMPANY]})
    tag = secrets.token_hex(5)
    identity, detail = f"CANARYID{tag}", f"CANARYDETAIL{tag}"
    try:
        person = tmp_path / "person.txt"
        person.write_text(identity)
        pseudonym = net.cli_json(LIMA, "defender", "add", "--identity", str(person))["pseudonym"]
        details = tmp_path / "details.json"
        details.write_text(json.dumps({"identity": identity, "narrative": detail}))
        ids = []
        for country, kind, severity, urgency, _, exercise in CASES:
            extra = ["--exercise"] if exercise else []
            if kind == "death_threat":  # asks the company, with consent, for diplomacy
                extra += ["--ask", "business_partner_engagement:company"]
                extra += ["--consent", "companies", "--consent", "network"]
                extra += ["--consent-by", "defender"]
            ids.append(
                net.cli_json(
                    LIMA, "alert", "raise", "--country", country, "--type", kind,
                    "--severity", severity, "--urgency", urgency, "--pseudonym", pseudonym,
                    "--details", str(details), *extra,
                )["id"]
            )  # fmt: skip
        net.wait_holds(set(ids))
        for alert, case in zip(ids, CASES, strict=True):
            if case[4] is not None:
                net.cli(case[4], "alert", "claim", alert[:12])
        net.cli(COMPANY, "alert", "pledge", ids[0][:12], "--action", "business_partner_engagement")
        net.wait_converged()

        out = tmp_path / "report.html"
        made = net.cli_json(NAIROBI, "report", "--out", str(out))
        page = out.read_text()
        shown = json.loads(re.search(r'id="figures">(.*?)</script>', page, re.S)[1])  # type: ignore[index]
        assert shown == made, "the page's figures are the command's"
        export = tmp_path / "export.jsonl"
        net.cli(NAIROBI, "log", "export", "--out", str(export))
        lines = [json.loads(x) for x in export.read_text().splitlines()]
        want = _from_events(lines, net.home(NAIROBI))

        assert (made["alerts"], made["exercises"]) == (want["alerts"], want["exercises"])
        for name in ("by_country", "by_type", "by_severity"):
            assert {t["key"]: t["count"] for t in made[name]} == dict(want[name]), name
        got = {
            t["key"]: (t["claimed"], t["median_s"], t["p90_s"])
            for t in made["claim_by_urgency"]
            if t["claimed"]
        }
        assert got == want["claim_by_urgency"]
        got = {t["key"]: (t["claimed"], t["median_s"], t["p90_s"]) for t in made["claim_by_member"]}
        assert got == want["claim_by_member"]
        assert sum(a["pledged"] for a in made["asks"]) == want["pledged"] == 1
        assert made["exercise_claims"]["claimed"] == 1

        for secret in (identity, detail, pseudonym, tag):
            assert secret not in page, "the report names nobody"
        assert not re.search(r'(src|href)="(https?:)?//', page), "nothing from outside"
        assert "<svg" in page

        async def look() -> str:
            async with chromium() as browser:
                tab = await new_page(browser)
                await tab.goto(out.as_uri())
                await screenshot(tab, "report")
                found = await axe_violations(tab)
                return describe(found) if found else ""

        assert asyncio.run(look()) == "", "axe-core found serious or critical problems"
    finally:
        net.close()
