"""The chaos soak, short (≈ 90 s of faults): a WAN devnet of four nodes under kills of
daemons and of nats-servers, partitions, cut and slowed links and a clock minutes
off, while alerts are raised, claimed and resolved everywhere; healed, the network
must be whole (tests/chaos.py, tests/chaos_report.py). `make soak` runs it longer.
Needs root (network namespaces)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.chaos import Soak
from tests.chaos_report import write_plot

pytestmark = pytest.mark.integration

ARTEFACTS = Path(__file__).resolve().parents[2] / "artefacts" / "soak"


@pytest.mark.timeout(900)
def test_ninety_seconds_of_chaos_lose_nothing_and_fork_nothing(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("the soak puts nodes in network namespaces: run the suite as root")
    soak = Soak(tmp_path / "net", seed=1, duration_s=90)
    try:
        report = soak.run()
    finally:
        soak.close()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    doc = asdict(report)
    del doc["deliveries"]
    (ARTEFACTS / "report.json").write_text(json.dumps(doc, indent=2))
    write_plot(report, ARTEFACTS / "delivery.svg")

    assert report.problems == [], "\n".join(report.problems)
    assert (report.lost, report.forks, report.views_differ) == (0, 0, 0)
    assert report.same_signer_same_level == 0 and report.stuck == 0
    kinds = {f["kind"] for f in report.faults}
    assert len(report.faults) >= 5 and len(kinds) >= 3, report.faults
    assert report.alerts >= 20 and report.claims >= 5 and report.escalations >= 10
