"""What bench/history.py reads of a running node: its processes' RSS, its stall probe,
what its store holds, and how many records its integrators' alert bucket holds."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.request
from pathlib import Path

import nats

from rrn.node.natsd.conf import STREAM_USER

__all__ = ["bucket_records", "held", "pids", "received", "rss_mb", "stall_ms"]


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
