"""`make demo`: three organisations on three continents run one network, follow the sun.

Owns the scripted walk-through a newcomer sees first. Every step is a real `rrn`
command run as a subprocess against real daemons, each with its own nats-server,
store and keys (`rrn devnet`); what the timeline shows is read back from the
nodes (`alert show --json`, `peers --json`, `status --json`), not made up here.

The scenario: Lima, Nairobi and Jakarta found a network whose escalation steps
last 20 seconds (minutes in real life) and declare their on-duty hours; the
coverage grid shows the sun being followed. At night in Lima, Lima raises an
alert: it goes to Nairobi, on duty and the best match; Nairobi's pager is called
but nobody claims it in time, so the alert escalates to Jakarta, which claims it
and records an action. Jakarta's node then goes down, the others carry on, and
it comes back and catches up from its peers; Jakarta resolves the alert and
everyone can audit the same signed history.
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

from rrn.node.devnet.screens import photograph

__all__ = ["main"]

_RRN = [sys.executable, "-m", "rrn.node.cli"]
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


#: Escalation policy of the demo network: seconds instead of the default minutes.
_POLICY = "immediate=20s,days=2h,weeks=12h,direct=3"
_STEP_S = 20
#: On-duty shifts as UTC hours relative to now, so the story holds whenever the
#: demo runs: Nairobi and Jakarta are on duty now, Lima (night) is not. Together
#: they cover the whole day.
_SHIFTS = {
    1: (10, 22, '["*"]', '["es", "en"]', '["legal"]'),
    2: (-2, 10, '["*"]', '["en", "sw", "es"]', '["legal", "relocation"]'),
    3: (-6, 6, '["*"]', '["en", "id"]', '["digital_security"]'),
}


def main(argv: list[str] | None = None) -> int:
    """Run the demo; keeps its network running with --keep."""
    parser = argparse.ArgumentParser(prog="python -m node.demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the demo network running")
    parser.add_argument(
        "--screens", type=Path, default=Path("demo-screens"), help="where the console's pages go"
    )
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="rrn-demo-"))
    net = _Net(root)
    try:
        _say("== rrn demo: three organisations, one network, no central server ==")
        _found(net)
        _coverage(net, root)
        short = _first_alert(net)
        _escalation(net, short)
        second = _outage(net, short)
        _recovery(net, short, second)
        _console(net, short, second, args.screens)
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
    _say(f"   The roster sets the escalation policy; the demo's steps last {_STEP_S} s, not")
    _say("   the default 10 minutes, so you can watch an alert climb.")
    _rrn(
        "devnet", "up", "--nodes", "3", "--dir", str(net.dir), "--escalation", _POLICY, "--no-start"
    )
    _say("  Nairobi's node will page its people with a command ([notify] in config.toml);")
    _say("  here the 'pager' just writes the notice to a file.")
    pager = net.dir / "nairobi-pager.py"
    pager.write_text(
        "import sys\n"
        f"with open({str(net.dir / 'nairobi-pages.jsonl')!r}, 'a') as f:\n"
        "    f.write(sys.stdin.read() + '\\n')\n"
    )
    config = Path(net.home(2)) / "config.toml"
    config.write_text(
        config.read_text().replace(
            "command = []", "command = " + json.dumps([sys.executable, str(pager)])
        )
    )
    for k in _NODES:
        _rrn("devnet", "start", "--dir", str(net.dir), "--node", str(k), show=False)
    _wait("the links", lambda: all(_up(net, k) for k in _NODES))
    _step("How Jakarta sees its peers, and the network's escalation policy:")
    _say(_rrn("peers", "--home", net.home(3)).rstrip())
    status = _rrn("status", "--home", net.home(3), show=False)
    _say("  " + next(line for line in status.splitlines() if line.startswith("escalation")))


def _coverage(net: _Net, root: Path) -> None:
    _step("Each member declares when it is on duty, in its own time zone:")
    hour = int(time.time() // 3600)
    for k, (start, end, regions, languages, capabilities) in _SHIFTS.items():
        org, tz = _NODES[k]
        first, last = _local_hour(hour + start, tz), _local_hour(hour + end, tz)
        path = root / f"{org}-coverage.toml"
        path.write_text(
            f'tz = "{tz}"\n\n[[window]]\n'
            'days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
            f'start = "{first}"\nend = "{last}"\nregions = {regions}\n'
            f"languages = {languages}\ncapabilities = {capabilities}\n"
        )
        _say(f"  {org:<11} {first}-{last} {tz:<15} languages {languages}")
        _rrn("coverage", "declare", "--home", net.home(k), "--file", str(path), show=False)
    _say("  (the demo sets the hours around the current time so that, whenever you run")
    _say("  it, it is night in Lima and Nairobi and Jakarta are on duty)")
    _wait(
        "every node holding the three declarations",
        lambda: all(
            len(_json("coverage", "show", "--home", net.home(k))["members"]) == 3 for k in _NODES
        ),
    )
    _step("Every node computes the same coverage. The week as Lima sees it (anywhere, and")
    _say("   Spanish speakers); a digit is members on duty in that hour, '.' a gap:")
    grid = _rrn("coverage", "show", "--home", net.home(1)).rstrip()
    blocks = grid.split("\n\n")
    shown = [b for b in blocks[1:] if b.startswith(("region anywhere", "language es"))]
    _say("\n\n".join(["  " + b.replace("\n", "\n  ") for b in [blocks[0], *shown]]))


def _local_hour(utc_hour: int, tz: str) -> str:
    when = datetime.datetime.fromtimestamp(utc_hour * 3600, zoneinfo.ZoneInfo(tz))
    return f"{when.hour:02d}:00"


def _first_alert(net: _Net) -> str:
    _step("Night in Lima. The case officer on call raises an alert: a land defender in")
    _say("   Loreto got a death threat. Only coarse, routable fields travel; the defender")
    _say("   has a pseudonym.")
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
        "--consent",
        "network",
        "--consent",
        "embassies",
        "--consent-by",
        "defender",
    )
    short = str(alert["id"][:12])
    _say(f"  raised alert {short} for {alert['pseudonym']}")
    for k in (2, 3):
        took = _wait(f"{net.org(k)} receiving the alert", functools.partial(net.holds, k, short))
        _say(f"  {net.org(k)} holds it, verified (seen there {took * 1000:.0f} ms later)")
    return short


def _escalation(net: _Net, short: str) -> None:
    _step("No dispatcher: every node computes the same ladder. Lima is off duty; Nairobi")
    _say("   is on duty, speaks Spanish and does legal work, so it is asked first:")
    _say(_rrn("alert", "list", "--home", net.home(1)).rstrip())
    pages = net.dir / "nairobi-pages.jsonl"
    _wait("Nairobi's pager", lambda: pages.exists() and short in pages.read_text())
    page = json.loads(pages.read_text().splitlines()[0])
    _say(f"  Nairobi's pager got: {json.dumps(page)}")
    _step(f"Nobody in Nairobi claims it within {_STEP_S} s (a busy night). Any live node may")
    _say("   publish the escalation; duplicates would merge. It climbs to Jakarta:")
    _wait(
        "the escalation",
        lambda: _alert(net, 3, short)["level"] >= 1,
        timeout=_STEP_S * 4,
    )
    a = _alert(net, 3, short)
    _say(f"  level {a['level']} ({a['cause']}): asks {', '.join(a['asked'])}")
    _step("Jakarta's responder claims it for two hours and starts legal aid:")
    _rrn("alert", "claim", short, "--home", net.home(3), "--for", "120")
    _rrn("alert", "act", short, "--home", net.home(3), "--action", "legal_aid")
    _wait("the claim at Lima", lambda: _status(net, 1, short) == "claimed")
    _say(_rrn("alert", "list", "--home", net.home(1)).rstrip())


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
        "--consent",
        "network",
        "--consent",
        "embassies",
        "--consent-by",
        "defender",
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
    _step("Jakarta's responder reports the defender relocated; the alert is resolved:")
    _rrn("alert", "resolve", short, "--home", net.home(3), "--outcome", "relocated")
    _wait("the resolution reaching Lima", lambda: _status(net, 1, short) == "resolved")
    _step("Every node audits the same signed history, offline:")
    for k in _NODES:
        _say(f"  {net.org(k):<11} " + _rrn("log", "verify", "--home", net.home(k)).strip())
    _timeline(net, short)
    _say("\nOpen alerts as Jakarta sees them:")
    _say(_rrn("alert", "list", "--home", net.home(3), show=False).rstrip())


def _console(net: _Net, first: str, second: str, out: Path) -> None:
    _step("The same story in each organisation's web console (rrn user add; docs/CONSOLE.md):")
    a, b = _alert(net, 1, first)["id"], _alert(net, 1, second)["id"]
    lima, jakarta = Path(net.home(1)), Path(net.home(3))
    saved = photograph(
        [
            (lima, _NODES[1][1], ["/", f"/alerts/{b}", "/coverage", "/network"]),
            (jakarta, _NODES[3][1], [f"/alerts/{a}"]),
        ],
        out,
    )
    if isinstance(saved, str):
        _say(f"  (no pictures: {saved})")
        return
    for file in saved:
        _say(f"  {file}")


def _up(net: _Net, k: int) -> bool:
    return all(p["state"] == "up" for p in _json("peers", "--home", net.home(k)))


def _state(net: _Net, k: int, peer: str) -> str:
    return str({p["org"]: p["state"] for p in _json("peers", "--home", net.home(k))}[peer])


def _alert(net: _Net, k: int, alert: str) -> dict[str, Any]:
    return dict(_json("alert", "show", alert, "--home", net.home(k))["alert"])


def _status(net: _Net, k: int, alert: str) -> str:
    return str(_alert(net, k, alert)["status"])


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
    claimed = next(e["wall_ms"] for e in detail["events"] if e["kind"] == "alert.claimed")
    _say(
        f"  final: {a['status']} ({a['end_code']}), severity {a['severity']}, "
        f"claimed by {', '.join(a['claimants'])} at level {a['level']}, "
        f"{(claimed - a['raised_ms']) / 1000:.0f} s after the raise"
    )
    _say("  (rrn_alert_time_to_claim_seconds on every node's /metrics, from signed times)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
