"""`make demo`: three organisations on three continents run one network.

Owns the scripted walk-through a newcomer sees first. Every step is a real `rrn`
command run as a subprocess against real daemons, each with its own nats-server,
store and keys (`rrn devnet`); what the timeline shows is read back from the
nodes (`alert show --json`, `peers --json`, `status --json`), not made up here.

The scenario: Lima raises an alert, it reaches Nairobi and Jakarta (Jakarta is
behind NAT, with no inbound link); Nairobi's responder claims it; Jakarta's node
goes down; while it is away the others keep working; it comes back and catches up
from its peers; everyone can audit the same signed history.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main"]

_RRN = [sys.executable, "-m", "node.cli"]
_NODES = {
    1: ("lima-hr", "America/Lima"),
    2: ("nairobi-dl", "Africa/Nairobi"),
    3: ("jakarta-pb", "Asia/Jakarta"),
}
_T0 = time.monotonic()


def _say(text: str = "") -> None:
    print(text, flush=True)


def _step(text: str) -> None:
    _say(f"\n[{time.monotonic() - _T0:5.1f}s] {text}")


def _rrn(*args: str, show: bool = True) -> str:
    if show:
        _say(f"  $ rrn {' '.join(args)}")
    done = subprocess.run([*_RRN, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"demo step failed: rrn {' '.join(args)}\n{done.stderr.strip()}")
    return done.stdout


def _json(*args: str) -> Any:
    return json.loads(_rrn(*args, "--json", show=False))


def _wait(what: str, predicate: Callable[[], bool], timeout: float = 90) -> float:
    """Seconds until predicate() held; exits the demo with a clear line if it never does."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise SystemExit(f"demo step failed: {what} did not happen within {timeout:.0f} s")


class _Net:
    def __init__(self, root: Path) -> None:
        self.dir = root / "net"

    def home(self, k: int) -> str:
        return str(self.dir / _NODES[k][0])

    def org(self, k: int) -> str:
        return _NODES[k][0]

    def holds(self, k: int, alert: str) -> bool:
        done = subprocess.run(
            [*_RRN, "alert", "show", alert, "--home", self.home(k), "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode == 0

    def events(self, k: int) -> int:
        return int(_json("status", "--home", self.home(k))["events"])


def main(argv: list[str] | None = None) -> int:
    """Run the demo; keeps its network running with --keep."""
    parser = argparse.ArgumentParser(prog="python -m node.demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the demo network running")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="rrn-demo-"))
    net = _Net(root)
    try:
        _say("== rrn demo: three organisations, one network, no central server ==")
        _found(net)
        short = _first_alert(net)
        second = _outage(net, short)
        _recovery(net, short, second)
        return 0
    finally:
        if args.keep:
            _say(f"\ndemo network left running in {net.dir}; stop it with:")
            _say(f"  rrn devnet down --dir {net.dir}")
        else:
            if net.dir.exists():
                subprocess.run(
                    [*_RRN, "devnet", "down", "--dir", str(net.dir)],
                    capture_output=True,
                    check=False,
                )
            shutil.rmtree(root, ignore_errors=True)


def _found(net: _Net) -> None:
    _step("Lima, Nairobi and Jakarta each create a node and found a network together")
    _say("   (cards, a genesis roster all three sign, a nats-server each, TLS pinned to")
    _say("   the roster). Jakarta's node is behind NAT: it can dial out, nobody can dial in.")
    _say(_rrn("devnet", "up", "--nodes", "3", "--dir", str(net.dir)).rstrip())
    _wait("the links", lambda: all(_up(net, k) for k in _NODES))
    _step("How Jakarta sees its peers:")
    _say(_rrn("peers", "--home", net.home(3)).rstrip())


def _first_alert(net: _Net) -> str:
    _step("A case officer in Lima raises an alert: a land defender in Loreto got a")
    _say("   death threat. Only coarse, routable fields travel; the defender has a pseudonym.")
    alert = _json(
        "alert",
        "raise",
        "--home",
        net.home(1),
        "--country",
        "PE",
        "--subdivision",
        "PE-LOR",
        "--type",
        "death_threat",
        "--type",
        "intimidation",
        "--severity",
        "severe",
        "--urgency",
        "immediate",
        "--ask",
        "legal_aid:ngo",
        "--ask",
        "private_diplomacy:embassy",
        "--lang",
        "es",
    )
    short = str(alert["id"][:12])
    _say(f"  raised alert {short} for {alert['pseudonym']}")
    for k in (2, 3):
        took = _wait(f"{net.org(k)} receiving the alert", functools.partial(net.holds, k, short))
        _say(f"  {net.org(k)} holds it, verified (seen there {took * 1000:.0f} ms later)")
    _step("It is night in Lima; Nairobi is on duty and claims the alert for two hours:")
    _rrn("alert", "claim", short, "--home", net.home(2), "--for", "120")
    return short


def _outage(net: _Net, short: str) -> str:
    _step("Jakarta's node goes down (a power cut):")
    had = net.events(3)
    _rrn("devnet", "stop", "--dir", str(net.dir), "--node", "3")
    _step("The others carry on. Lima raises the severity; Nairobi raises a new alert:")
    _rrn("alert", "update", short, "--home", net.home(1), "--severity", "extreme")
    second = _json(
        "alert",
        "raise",
        "--home",
        net.home(2),
        "--country",
        "KE",
        "--type",
        "judicial_harassment",
        "--severity",
        "moderate",
        "--urgency",
        "days",
        "--ask",
        "trial_monitoring:embassy",
        "--lang",
        "en",
        "--lang",
        "sw",
    )["id"][:12]
    _say(f"  raised alert {second}")
    _say(f"  Lima and Nairobi now hold {net.events(1)} events; Jakarta has {had}.")
    _wait("Lima noticing Jakarta is gone", lambda: _state(net, 1, net.org(3)) == "down")
    _say("  Lima notices the silence (no heartbeat for 3 intervals). Lima's view:")
    _say(_rrn("peers", "--home", net.home(1)).rstrip())
    return str(second)


def _recovery(net: _Net, short: str, second: str) -> None:
    _step("Jakarta comes back and catches up from its peers:")
    behind = net.events(1)
    _rrn("devnet", "start", "--dir", str(net.dir), "--node", "3")
    took = _wait("Jakarta catching up", lambda: net.events(3) >= behind and net.holds(3, second))
    _say(f"  Jakarta holds all {net.events(3)} events {took:.1f} s after it was back")
    _step("Nairobi's responder reports the defender relocated; the alert is resolved:")
    _rrn("alert", "resolve", short, "--home", net.home(2), "--outcome", "relocated")
    _wait("the resolution reaching Jakarta", lambda: _status(net, 3, short) == "resolved")
    _step("Every node audits the same signed history, offline:")
    for k in _NODES:
        _say(f"  {net.org(k):<11} " + _rrn("log", "verify", "--home", net.home(k)).strip())
    _timeline(net, short)
    _say("\nOpen alerts as Jakarta sees them:")
    _say(_rrn("alert", "list", "--home", net.home(3), show=False).rstrip())


def _up(net: _Net, k: int) -> bool:
    return all(p["state"] == "up" for p in _json("peers", "--home", net.home(k)))


def _state(net: _Net, k: int, peer: str) -> str:
    return str({p["org"]: p["state"] for p in _json("peers", "--home", net.home(k))}[peer])


def _status(net: _Net, k: int, alert: str) -> str:
    return str(_json("alert", "show", alert, "--home", net.home(k))["alert"]["status"])


def _clock(ms: int, tz: str) -> str:
    """'14:05:09 -05' style: the wall clock in that zone."""
    when = datetime.datetime.fromtimestamp(ms / 1000, zoneinfo.ZoneInfo(tz))
    return when.strftime("%H:%M:%S")


def _timeline(net: _Net, alert: str) -> None:
    detail = _json("alert", "show", alert, "--home", net.home(3))
    a = detail["alert"]
    zones = [tz for _, tz in _NODES.values()]
    _say(f"\n== alert {a['id'][:12]} as Jakarta holds it, in each member's local time ==")
    _say("  " + "  ".join(f"{z.split('/')[1]:<11}" for z in zones) + "  by          event")
    for e in detail["events"]:
        times = "  ".join(f"{_clock(e['wall_ms'], z):<11}" for z in zones)
        _say(f"  {times}  {e['origin']:<11} {e['kind']}")
    _say(
        f"  final: {a['status']} ({a['end_code']}), severity {a['severity']}, "
        f"claimed by {', '.join(a['claimants'])}"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
