"""bench/history.py (issue 20) at a small size: it builds, imports, starts, catches up and
reports every figure, so the benchmark keeps working between its big runs. Its speeds
are not asserted here (docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIGURES = (
    "first_ready_s", "ready_s", "max_stall_ms", "stall_start_ms", "stall_catchup_ms", "daemon_rss_idle_mb",
    "nats_rss_idle_mb", "daemon_rss_catchup_mb", "nats_rss_catchup_mb", "catchup_rate_first",
    "catchup_rate_last", "catchup_flatness", "alert_list_s", "alert_list_all_s", "cli_start_s",
    "cli_version_s", "cli_floor_s",
    "raise_p99_s", "import_peak_rss_mb", "probe_ms_first", "probe_ms_last",
    "catchup_flatness_same_speed",
)  # fmt: skip


def test_the_history_benchmark_reports_every_figure_of_a_small_history(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RRN_")}
    argv = [sys.executable, "bench/history.py", "--events", "2000", "--idle-s", "1",
            "--samples", "1", "--raises", "3", "--out", str(tmp_path / "h")]  # fmt: skip
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout  # one JSON line; progress went to stderr
    result = json.loads(lines[0])
    assert result["events"] == 2000
    assert result["sync_pages_per_min"] == 120  # the default policy's, as built
    assert result["catchup_budget_rate"] == 4000  # 120 pages of 2,000 events a minute
    assert 0 < result["open_alerts"] < result["alerts"] < 2000
    assert result["catchup_events"] >= 2000  # node 2 holds the whole history
    # The integrators' bucket keeps the open alerts and those closed within [nats]
    # bucket_closed_days, not the years before (±2: the window's edge moves on).
    kept = result["open_alerts"] + result["closed_kept"]
    assert result["alerts"] - kept > 100  # most closed over a year ago
    assert abs(result["bucket_records"] - kept) <= 2, (result["bucket_records"], kept)
    for name in FIGURES:
        assert isinstance(result[name], int | float) and result[name] > 0, name
    assert result["max_stall_ms"] >= result["stall_start_ms"]
    # Node 2 acted on what it holds once it had caught up, not halfway (within the
    # three heartbeats it waits to hear every member that is up).
    assert 0 <= result["catchup_acting_s"] < 60, result["catchup_acting_s"]
    # Too short a catch-up here for two CPU samples in a tenth: said so, not a made-up 0.
    for name in ("catchup_cpu_ms_per_event_first", "catchup_cpu_ms_per_event_last"):
        assert result[name] is None or result[name] > 0, name
    first_cpu, last_cpu = (result[f"catchup_cpu_ms_per_event_{t}"] for t in ("first", "last"))
    assert result["catchup_cpu_flatness"] == (
        round(first_cpu / last_cpu, 3) if first_cpu and last_cpu else None
    )
    for name in ("steal_first", "steal_last"):  # a share of the machine's CPU, or unknown
        assert result[name] is None or 0 <= result[name] <= 1, name
    # Who had the CPU in each node's longest stall, when it logged one (100 ms or more).
    for node in ("catchup", "source"):
        cpu = result[f"stall_{node}_loop_cpu_ms"]
        assert cpu is None or 0 <= cpu <= result[f"stall_{node}_ms"] + 60
        for name in (f"stall_{node}_machine_busy_pct", f"stall_{node}_stolen_pct"):
            assert result[name] is None or 0 <= result[name] <= 100, name
    assert result["machine"] and result["date"]
    assert (tmp_path / "h" / "build.json").is_file()  # kept for --reuse
    assert not list((tmp_path / "h" / "run").glob("*/run/daemon.json"))  # both stopped
    # The store's profile (bench/store_profile.py) imports that history again, timed
    # per statement: every tenth has a rate, and the commits are among what it names.
    profiled = subprocess.run(
        [sys.executable, "bench/store_profile.py", str(tmp_path / "h")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert profiled.returncode == 0, profiled.stderr[-3000:]
    profile = json.loads(profiled.stdout)
    assert profile["events"] == 2000 and len(profile["tenths"]) == 10
    assert [t["events"] for t in profile["tenths"]] == list(range(200, 2001, 200))
    assert all(t["rate"] > 0 for t in profile["tenths"])
    assert sum(t["store_s"] for t in profile["tenths"]) > 0  # a tenth may hold no commit
    assert any("COMMIT" in s for t in profile["tenths"] for s in t["statements_s"])
    assert profile["flatness"] > 0
