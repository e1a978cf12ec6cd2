"""The demo's toolkit: the members it runs, and running `rrn` as a newcomer would.

Owns the members of `make demo` (node/devnet/demo.py), printing its steps with the
time since it began, running `rrn` commands as subprocesses (a failed one ends the
demo with its error), and waiting for what a step expects, within a bound.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

__all__ = [
    "NODES",
    "RESPONDERS",
    "RRN",
    "Net",
    "alert_of",
    "clock",
    "peer_state",
    "rrn",
    "rrn_json",
    "say",
    "status_of",
    "step",
    "up",
    "wait",
]

RRN: Final = [sys.executable, "-m", "rrn.node.cli"]
#: The demo's members, as `rrn devnet up --role` makes them: three NGOs (responders)
#: on three continents, then an embassy and two companies (supporters).
NODES: Final = {
    1: ("lima-hr", "America/Lima"),
    2: ("nairobi-dl", "Africa/Nairobi"),
    3: ("jakarta-pb", "Asia/Jakarta"),
    4: ("nl-embassy", "America/Lima"),
    5: ("andes-mining", "America/Lima"),
    6: ("orbit-telecom", "Europe/Amsterdam"),
}
RESPONDERS: Final = (1, 2, 3)
_T0 = time.monotonic()


def say(text: str = "") -> None:
    print(text, flush=True)


def step(text: str) -> None:
    say(f"\n[{time.monotonic() - _T0:5.1f}s] {text}")


def rrn(*args: str, show: bool = True) -> str:
    if show:
        say(f"  $ rrn {' '.join(args)}")
    done = subprocess.run([*RRN, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"demo step failed: rrn {' '.join(args)}\n{done.stderr.strip()}")
    return done.stdout


def rrn_json(*args: str) -> Any:
    return json.loads(rrn(*args, "--json", show=False))


def wait(what: str, predicate: Callable[[], bool], timeout: float = 90) -> float:
    """Seconds until predicate() held; exits the demo with a clear line if it never does."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise SystemExit(f"demo step failed: {what} did not happen within {timeout:.0f} s")


class Net:
    def __init__(self, root: Path) -> None:
        self.dir = root / "net"

    def pages(self, k: int) -> Path:
        """Where member k's pager (its [notify] command) writes the notices it gets."""
        return self.dir / f"{NODES[k][0]}-pages.jsonl"

    def home(self, k: int) -> str:
        return str(self.dir / NODES[k][0])

    def org(self, k: int) -> str:
        return NODES[k][0]

    def holds(self, k: int, alert: str) -> bool:
        done = subprocess.run(
            [*RRN, "alert", "show", alert, "--home", self.home(k), "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode == 0

    def events(self, k: int) -> int:
        return int(rrn_json("status", "--home", self.home(k))["events"])


def up(net: Net, k: int) -> bool:
    return all(p["state"] == "up" for p in rrn_json("peers", "--home", net.home(k)))


def peer_state(net: Net, k: int, peer: str) -> str:
    return str({p["org"]: p["state"] for p in rrn_json("peers", "--home", net.home(k))}[peer])


def alert_of(net: Net, k: int, alert: str) -> dict[str, Any]:
    return dict(rrn_json("alert", "show", alert, "--home", net.home(k))["alert"])


def status_of(net: Net, k: int, alert: str) -> str:
    return str(alert_of(net, k, alert)["status"])


def clock(ms: int, tz: str) -> str:
    """'14:05:09 -05' style: the wall clock in that zone."""
    when = datetime.datetime.fromtimestamp(ms / 1000, zoneinfo.ZoneInfo(tz))
    return when.strftime("%H:%M:%S")
