"""Coverage declarations across a real network: declared at one node, seen at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.netkit import TestNetwork
from tests.procs import rrn

pytestmark = pytest.mark.integration

LIMA = """
tz = "America/Lima"

[[window]]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "08:00"
end = "20:00"
regions = ["PE", "CO"]
languages = ["es", "en"]
capabilities = ["legal"]
"""

JAKARTA = """
tz = "Asia/Jakarta"

[[window]]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "07:00"
end = "19:00"
regions = ["*"]
languages = ["en", "id"]
"""


def test_declarations_reach_every_node_and_gaps_become_metrics(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 3)
    try:
        for k, text in ((1, LIMA), (3, JAKARTA)):
            path = tmp_path / f"{k}.toml"
            path.write_text(text)
            assert "declared 1 weekly window(s)" in net.cli(
                k, "coverage", "declare", "--file", str(path)
            )

        def seen() -> bool:
            grid = net.cli_json(2, "coverage", "show", "--tz", "UTC")
            return set(grid["members"]) == {"lima-hr", "jakarta-pb"}

        net.wait(seen, "both declarations at Nairobi")
        grid = net.cli_json(2, "coverage", "show", "--tz", "UTC")
        rows = {(r["kind"], r["key"]): r for r in grid["rows"]}
        # Jakarta 00:00-12:00 UTC for anywhere, Lima 13:00-01:00 UTC for PE:
        # Peru lacks cover 12:00-13:00 UTC every day, Spanish 01:00-13:00.
        assert rows["region", "PE"]["gap_hours"] == 7
        assert rows["language", "es"]["gap_hours"] == 7 * 12
        assert "<- GAPS" in net.cli(2, "coverage", "show")
        net.wait(
            lambda: net.metric(2, "rrn_coverage_gap_seconds", horizon="7d", key="PE") > 0,
            "the 7-day gap forecast",
            timeout=90,
        )
        assert net.metric(2, "rrn_coverage_gap_seconds", horizon="7d", key="PE") == 7 * 3600
    finally:
        net.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LIMA + LIMA.split("tz =")[1].split("\n", 1)[1], "windows 1 and 2 overlap"),
        (
            'tz = "Europe/Berlin"\n[[window]]\ndays = ["sun"]\nstart = "02:30"\nend = "06:00"\n'
            'regions = ["DE"]\n',
            "02:30 does not exist (clocks go forward)",
        ),
        (
            'tz = "Europe/Berlin"\n[[exception]]\nstart = "2026-12-26T08:00"\n'
            'end = "2026-12-24T08:00"\noff = true\n',
            "before it starts",
        ),
        ('tz = "Moon/Base"\n', "not an IANA time zone"),
        ("[[window]]\n", "tz is missing"),
    ],
)
def test_bad_declarations_are_refused_with_a_clear_line(
    tmp_path: Path, text: str, message: str
) -> None:
    home = tmp_path / "home"
    assert rrn("init", "--home", home, "--org", "lima-hr", "--tz", "America/Lima").returncode == 0
    path = tmp_path / "bad.toml"
    path.write_text(text)
    done = rrn("coverage", "declare", "--home", home, "--file", path)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
