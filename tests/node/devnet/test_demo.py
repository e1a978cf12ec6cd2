"""`make demo` is a newcomer's first contact: it must run to the end, for real."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_runs_its_scenario_to_the_end(tmp_path: Path) -> None:
    screens = tmp_path / "screens"
    done = subprocess.run(
        [sys.executable, "-m", "rrn.node.devnet.demo", "--screens", str(screens)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    verified = {
        org: re.search(rf"{org}\s+ok: (\d+) events", out)
        for org in ("lima-hr", "nairobi-dl", "jakarta-pb", "nl-embassy", "orbit-telecom")
    }
    counts = {org: int(m[1]) for org, m in verified.items() if m is not None}
    assert len(counts) == 5 and len(set(counts.values())) == 1, counts  # one history
    assert "Jakarta holds all" in out and re.search(r"jakarta-pb\s+accepts\s+down", out)
    # follow the sun: the coverage grid, Nairobi asked and paged, then Jakarta
    assert "region anywhere ('*'): 0 h uncovered" in out
    assert re.search(r"open\s+0\s+nairobi-dl", out), "Nairobi asked first"
    assert '"member": "nairobi-dl", "level": 0' in out, "Nairobi's pager called"
    assert "level 1 (deadline): asks jakarta-pb" in out
    assert "final: resolved (relocated), severity extreme, claimed by jakarta-pb at level 1" in out
    # an embassy and two companies act together: counted, then bound and told at once
    assert "joined 1/2 company, 1/1 embassy" in out
    supporters = ("nl-embassy", "andes-mining", "orbit-telecom")
    for org in supporters:
        others = ", ".join(o for o in supporters if o != org)
        assert re.search(rf"{org}\s+pager, +\d+ ms after the last join was signed: bound "
                         rf"with {others}", out), org  # fmt: skip
    assert "signed the text proposed: andes-mining, nl-embassy, orbit-telecom" in out
    assert "Traceback" not in done.stderr
    # and in the consoles: Lima's inbox and Jakarta's page of the alert it resolved
    shots = sorted(p.name for p in screens.glob("*.png"))
    assert "lima-hr-inbox.png" in shots and any(s.startswith("jakarta-pb-alerts-") for s in shots)
    assert all(p.stat().st_size > 10_000 for p in screens.glob("*.png"))
