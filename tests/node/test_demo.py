"""`make demo` is a newcomer's first contact: it must run to the end, for real."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_runs_a_three_organisation_scenario_to_the_end() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "node.demo"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for org in ("lima-hr", "nairobi-dl", "jakarta-pb"):
        assert f"{org:<11} ok: 5 events" in out  # every node verified the same history
    assert "Jakarta holds all" in out and "jakarta-pb  accepts  down" in out
    assert "final: resolved (relocated), severity extreme, claimed by nairobi-dl" in out
    assert "Traceback" not in done.stderr
