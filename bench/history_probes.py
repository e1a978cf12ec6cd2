"""What bench/history.py reads of a running node: its processes' RSS and CPU, its stall
probe, what its store holds, and how many records its integrators' alert bucket holds;
and how fast this machine is at each moment (`Pace`)."""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import json
import os
import re
import sqlite3
import statistics
import time
import urllib.request
from pathlib import Path

import nats

from rrn.node.natsd.conf import STREAM_USER

__all__ = [
    "Pace", "bucket_records", "held", "pids", "received", "rss_mb", "stall_ms", "worst_stall",
]  # fmt: skip

#: SHA-256 steps of the speed probe (~15 ms of one core here).
_PROBE_STEPS = 20_000


def pids(home: Path) -> tuple[int, int]:
    """The daemon's pid and its nats-server's."""
    daemon = json.loads((home / "run" / "daemon.json").read_text())
    return int(daemon["pid"]), int((home / "run" / "nats-server.pid").read_text())


def rss_mb(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        raise SystemExit(f"process {pid} of a node ended; see the node logs") from None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stall_ms(home: Path) -> float | None:
    """The daemon's longest event-loop stall so far (None: it has no probe)."""
    url = json.loads((home / "run" / "daemon.json").read_text()).get("metrics_url")
    if not url:
        return None
    with urllib.request.urlopen(url, timeout=30) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith("rrn_event_loop_stall_seconds_max "):
            return round(float(line.split()[1]) * 1000, 1)
    return None


def worst_stall(log: Path, prefix: str) -> dict[str, float | None]:
    """Who had the CPU in the longest stall a daemon logged (its last such line): the
    loop's own thread's CPU ms (an upper bound on its work in one piece, as the window
    holds the probe's 50 ms sleep too), and the machine's busy and stolen shares (%).
    None: it logged no stall of 100 ms or more."""
    text = log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if "loop stalled" in line]
    found: dict[str, float | None] = dict.fromkeys(
        ("loop_cpu_ms", "machine_busy_pct", "stolen_pct")
    )
    if lines:
        line = lines[-1]
        loop = re.search(r"the loop (\d+) ms", line)
        machine = re.search(r"the machine (\d+)% busy, (\d+)% stolen", line)
        found["loop_cpu_ms"] = float(loop[1]) if loop else 0.0  # under 0.5 ms: not named
        if machine:
            found["machine_busy_pct"], found["stolen_pct"] = float(machine[1]), float(machine[2])
    return {f"{prefix}_{k}": v for k, v in found.items()}


def held(home: Path, skip: str) -> int:
    """Events of every chain but `skip`'s the node holds without a gap."""
    db = sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT COALESCE(SUM(seq), 0) FROM heads WHERE origin != ?", (skip,))
        return int(row.fetchone()[0])
    finally:
        db.close()


def received(home: Path, skip: str) -> list[int]:
    """When the node stored each event of every chain but `skip`'s, in order."""
    db = sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True)
    try:
        sql = "SELECT received_ms FROM events WHERE origin != ? ORDER BY received_ms"
        return [int(r[0]) for r in db.execute(sql, (skip,))]
    finally:
        db.close()


def bucket_records(home: Path, timeout_s: float = 1800) -> int:
    """Messages in the node's integrators' alert bucket (a record per alert it keeps),
    once its first fill has ended."""
    deadline = time.monotonic() + timeout_s
    while not _meta(home, "feeds.alerts_filled"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the alert bucket of {home} was not filled in {timeout_s:.0f} s")
        time.sleep(1)
    return asyncio.run(_messages(home, "KV_RRN_ALERTS"))


def _meta(home: Path, key: str) -> bytes | None:
    db = sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])
    finally:
        db.close()


async def _messages(home: Path, stream: str) -> int:
    url = json.loads((home / "run" / "daemon.json").read_text())["nats_url"]
    password = (home / "keys" / "nats.pass").read_text().strip()
    nc = await nats.connect(url, user=STREAM_USER, password=password)
    try:
        return int((await nc.jetstream().stream_info(stream)).state.messages)
    finally:
        await nc.close()


class Pace:
    """A node's CPU (its daemon and the daemon's worker processes) and this machine's
    speed, sampled together: the speed is the CPU time a fixed piece of work takes in
    this process. On a shared VM the same work takes a third longer at some moments
    than at others, so a rate that falls is only the node's doing if the speed held."""

    def __init__(self, daemon: int) -> None:
        self.daemon = daemon
        #: (wall ms, the node's CPU seconds so far, the probe's CPU ms, the machine's CPU
        #: ticks so far: all, and those its hypervisor took (steal))
        self.samples: list[tuple[float, float, float, int, int]] = []

    def sample(self) -> None:
        start = time.process_time()
        digest = b"rrn"
        for _ in range(_PROBE_STEPS):
            digest = hashlib.sha256(digest).digest()
        probe_ms = (time.process_time() - start) * 1000
        self.samples.append((time.time() * 1000, _cpu_s(self.daemon), probe_ms, *_ticks()))

    def window(
        self, at: list[int], start: int, end: int
    ) -> tuple[float | None, float, float | None]:
        """Over the events stored `at[start]` to `at[end]` (ms): the node's CPU ms per event
        (None: fewer than two samples fell inside), the probe's median, and the share of
        the machine's CPU its hypervisor took."""
        inside = [s for s in self.samples if at[start] <= s[0] <= at[end]]
        if len(inside) < 2:
            near = min(self.samples, key=lambda s: abs(s[0] - at[start]))
            return None, near[2], None
        first, last = inside[0], inside[-1]
        stored = bisect.bisect_right(at, last[0]) - bisect.bisect_right(at, first[0])
        per_event = (last[1] - first[1]) * 1000 / max(1, stored)
        steal = (last[4] - first[4]) / max(1, last[3] - first[3])
        return round(per_event, 3), statistics.median(s[2] for s in inside), round(steal, 3)

    def tenths(self, at: list[int], tenth: int, flatness: float) -> dict[str, float | None]:
        """Over the first and the last `tenth` events stored at `at` (ms): the node's CPU
        per event, the probe, the hypervisor's share, and the flatness at equal speed."""
        first_cpu, first_probe, first_steal = self.window(at, 0, tenth)
        last_cpu, last_probe, last_steal = self.window(at, len(at) - 1 - tenth, len(at) - 1)
        return {
            "catchup_cpu_ms_per_event_first": first_cpu,
            "catchup_cpu_ms_per_event_last": last_cpu,
            "probe_ms_first": round(first_probe, 2),
            "probe_ms_last": round(last_probe, 2),
            "steal_first": first_steal,
            "steal_last": last_steal,
            "catchup_flatness_same_speed": round(flatness * last_probe / first_probe, 3),
            # The same question without the clock: as much CPU per event at the end?
            "catchup_cpu_flatness": (
                round(first_cpu / last_cpu, 3) if first_cpu and last_cpu else None
            ),
        }


def _ticks() -> tuple[int, int]:
    """The machine's CPU ticks so far (/proc/stat): all of them, and steal (the time its
    hypervisor ran something else while this VM had work)."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:]]
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def _cpu_s(daemon: int) -> float:
    """CPU seconds of a process and of its children (the verifying workers) so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(entry) == daemon or int(fields[1]) == daemon:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick
