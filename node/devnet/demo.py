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
and records an action. An embassy and two companies, asked for diplomacy and
business engagement, join a joint letter Lima proposes: nobody is named until
the threshold is met, then each learns the others at once. Jakarta's node then
goes down, the others carry on, and it comes back and catches up from its peers;
Jakarta resolves the alert and everyone can audit the same signed history.
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
from pathlib import Path

from rrn.node.devnet.demo_kit import (
    NODES,
    RESPONDERS,
    RRN,
    Net,
    alert_of,
    clock,
    peer_state,
    rrn,
    rrn_json,
    say,
    status_of,
    step,
    up,
    wait,
)
from rrn.node.devnet.demo_together import JOINERS, act_together
from rrn.node.devnet.screens import photograph

__all__ = ["main"]

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
    net = Net(root)
    try:
        say("== rrn demo: six members, one network, no central server ==")
        _found(net)
        _coverage(net, root)
        short = _first_alert(net)
        _escalation(net, short)
        act_together(net, short, root)
        second = _outage(net, short)
        _recovery(net, short, second)
        _console(net, short, second, args.screens)
        return 0
    finally:
        if args.keep:
            say(f"\ndemo network left running in {net.dir}; stop it with:")
            say(f"  rrn devnet down --dir {net.dir}")
        else:
            if net.dir.exists():
                subprocess.run(
                    [*RRN, "devnet", "down", "--dir", str(net.dir)],
                    capture_output=True,
                    check=False,
                )
            shutil.rmtree(root, ignore_errors=True)


def _found(net: Net) -> None:
    step("Lima, Nairobi and Jakarta each create a node and found a network together, with")
    say("   three supporters: an embassy and two companies with investments in the region")
    say("   (cards, a genesis roster all six sign, a nats-server each, TLS pinned to")
    say("   the roster). Jakarta's node is behind NAT: it can dial out, nobody can dial in.")
    say(f"   The roster sets the escalation policy; the demo's steps last {_STEP_S} s, not")
    say("   the default 10 minutes, so you can watch an alert climb.")
    rrn(
        *("devnet", "up", "--nodes", "6", "--dir", str(net.dir), "--escalation", _POLICY),
        *("--role", "4=embassy:NL", "--role", "5=company", "--role", "6=company", "--no-start"),
    )
    say("  Nairobi's node will page its people with a command ([notify] in config.toml);")
    say("  here the 'pager' just writes the notice to a file (so do the supporters').")
    pager = net.dir / "pager.py"
    pager.write_text(
        "import sys\nwith open(sys.argv[1], 'a') as f:\n    f.write(sys.stdin.read() + '\\n')\n"
    )
    for k in (2, *JOINERS):
        config = Path(net.home(k)) / "config.toml"
        command = [sys.executable, str(pager), str(net.pages(k))]
        config.write_text(
            config.read_text().replace("command = []", "command = " + json.dumps(command))
        )
    for k in NODES:
        rrn("devnet", "start", "--dir", str(net.dir), "--node", str(k), show=False)
    wait("the links", lambda: all(up(net, k) for k in NODES))
    step("How Jakarta sees its peers, and the network's escalation policy:")
    say(rrn("peers", "--home", net.home(3)).rstrip())
    status = rrn("status", "--home", net.home(3), show=False)
    say("  " + next(line for line in status.splitlines() if line.startswith("escalation")))


def _coverage(net: Net, root: Path) -> None:
    step("Each member declares when it is on duty, in its own time zone:")
    hour = int(time.time() // 3600)
    for k, (start, end, regions, languages, capabilities) in _SHIFTS.items():
        org, tz = NODES[k]
        first, last = _local_hour(hour + start, tz), _local_hour(hour + end, tz)
        path = root / f"{org}-coverage.toml"
        path.write_text(
            f'tz = "{tz}"\n\n[[window]]\n'
            'days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
            f'start = "{first}"\nend = "{last}"\nregions = {regions}\n'
            f"languages = {languages}\ncapabilities = {capabilities}\n"
        )
        say(f"  {org:<11} {first}-{last} {tz:<15} languages {languages}")
        rrn("coverage", "declare", "--home", net.home(k), "--file", str(path), show=False)
    say("  (the demo sets the hours around the current time so that, whenever you run")
    say("  it, it is night in Lima and Nairobi and Jakarta are on duty)")
    wait(
        "every node holding the three declarations",
        lambda: all(
            len(rrn_json("coverage", "show", "--home", net.home(k))["members"]) == 3 for k in NODES
        ),
    )
    step("Every node computes the same coverage. The week as Lima sees it (anywhere, and")
    say("   Spanish speakers); a digit is members on duty in that hour, '.' a gap:")
    grid = rrn("coverage", "show", "--home", net.home(1)).rstrip()
    blocks = grid.split("\n\n")
    shown = [b for b in blocks[1:] if b.startswith(("region anywhere", "language es"))]
    say("\n\n".join(["  " + b.replace("\n", "\n  ") for b in [blocks[0], *shown]]))


def _local_hour(utc_hour: int, tz: str) -> str:
    when = datetime.datetime.fromtimestamp(utc_hour * 3600, zoneinfo.ZoneInfo(tz))
    return f"{when.hour:02d}:00"


def _first_alert(net: Net) -> str:
    step("Night in Lima. The case officer on call raises an alert: a land defender in")
    say("   Loreto got a death threat. Only coarse, routable fields travel; the defender")
    say("   has a pseudonym.")
    alert = rrn_json(
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
        "--ask",
        "business_partner_engagement:company",
        "--lang",
        "es",
        "--consent",
        "network",
        "--consent",
        "embassies",
        "--consent",
        "companies",
        "--consent-by",
        "defender",
    )
    short = str(alert["id"][:12])
    say(f"  raised alert {short} for {alert['pseudonym']}")
    for k in (2, 3):
        took = wait(f"{net.org(k)} receiving the alert", functools.partial(net.holds, k, short))
        say(f"  {net.org(k)} holds it, verified (seen there {took * 1000:.0f} ms later)")
    return short


def _escalation(net: Net, short: str) -> None:
    step("No dispatcher: every node computes the same ladder. Lima is off duty; Nairobi")
    say("   is on duty, speaks Spanish and does legal work, so it is asked first:")
    say(rrn("alert", "list", "--home", net.home(1)).rstrip())
    pages = net.pages(2)
    wait("Nairobi's pager", lambda: pages.exists() and short in pages.read_text())
    page = json.loads(pages.read_text().splitlines()[0])
    say(f"  Nairobi's pager got: {json.dumps(page)}")
    step(f"Nobody in Nairobi claims it within {_STEP_S} s (a busy night). Any live node may")
    say("   publish the escalation; duplicates would merge. It climbs to Jakarta:")
    wait(
        "the escalation",
        lambda: alert_of(net, 3, short)["level"] >= 1,
        timeout=_STEP_S * 4,
    )
    a = alert_of(net, 3, short)
    say(f"  level {a['level']} ({a['cause']}): asks {', '.join(a['asked'])}")
    step("Jakarta's responder claims it for two hours and starts legal aid:")
    rrn("alert", "claim", short, "--home", net.home(3), "--for", "120")
    rrn("alert", "act", short, "--home", net.home(3), "--action", "legal_aid")
    wait("the claim at Lima", lambda: status_of(net, 1, short) == "claimed")
    say(rrn("alert", "list", "--home", net.home(1)).rstrip())


def _outage(net: Net, short: str) -> str:
    step("Jakarta's node goes down (a power cut):")
    had = net.events(3)
    rrn("devnet", "stop", "--dir", str(net.dir), "--node", "3")
    step("The others carry on. Lima raises the severity; Nairobi raises a new alert:")
    rrn("alert", "update", short, "--home", net.home(1), "--severity", "extreme")
    second = rrn_json(
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
    say(f"  raised alert {second}")
    say(f"  Lima and Nairobi now hold {net.events(1)} events; Jakarta has {had}.")
    wait("Lima noticing Jakarta is gone", lambda: peer_state(net, 1, net.org(3)) == "down")
    say("  Lima notices the silence (no heartbeat for 3 intervals). Lima's view:")
    say(rrn("peers", "--home", net.home(1)).rstrip())
    return str(second)


def _recovery(net: Net, short: str, second: str) -> None:
    step("Jakarta comes back and catches up from its peers:")
    behind = net.events(1)
    rrn("devnet", "start", "--dir", str(net.dir), "--node", "3")
    took = wait("Jakarta catching up", lambda: net.events(3) >= behind and net.holds(3, second))
    say(f"  Jakarta holds all {net.events(3)} events {took:.1f} s after it was back")
    step("Jakarta's responder reports the defender relocated; the alert is resolved:")
    rrn("alert", "resolve", short, "--home", net.home(3), "--outcome", "relocated")
    wait("the resolution reaching Lima", lambda: status_of(net, 1, short) == "resolved")
    step("Every node audits the same signed history, offline:")
    for k in NODES:
        say(f"  {net.org(k):<14} " + rrn("log", "verify", "--home", net.home(k)).strip())
    _timeline(net, short)
    say("\nOpen alerts as Jakarta sees them:")
    say(rrn("alert", "list", "--home", net.home(3), show=False).rstrip())


def _console(net: Net, first: str, second: str, out: Path) -> None:
    step("The same story in each organisation's web console (rrn user add; docs/CONSOLE.md):")
    a, b = alert_of(net, 1, first)["id"], alert_of(net, 1, second)["id"]
    lima, jakarta = Path(net.home(1)), Path(net.home(3))
    saved = photograph(
        [
            (lima, NODES[1][1], ["/", f"/alerts/{b}", "/coverage", "/network"]),
            (jakarta, NODES[3][1], [f"/alerts/{a}"]),
        ],
        out,
    )
    if isinstance(saved, str):
        say(f"  (no pictures: {saved})")
        return
    for file in saved:
        say(f"  {file}")


def _timeline(net: Net, alert: str) -> None:
    detail = rrn_json("alert", "show", alert, "--home", net.home(3))
    a = detail["alert"]
    zones = [NODES[k][1] for k in RESPONDERS]
    say(f"\n== alert {a['id'][:12]} as Jakarta holds it, in each member's local time ==")
    say("  " + "  ".join(f"{z.split('/')[1]:<11}" for z in zones) + "  by             event")
    for e in detail["events"]:
        times = "  ".join(f"{clock(e['wall_ms'], z):<11}" for z in zones)
        say(f"  {times}  {e['origin']:<14} {e['kind']}")
    claimed = next(e["wall_ms"] for e in detail["events"] if e["kind"] == "alert.claimed")
    say(
        f"  final: {a['status']} ({a['end_code']}), severity {a['severity']}, "
        f"claimed by {', '.join(a['claimants'])} at level {a['level']}, "
        f"{(claimed - a['raised_ms']) / 1000:.0f} s after the raise"
    )
    say("  (rrn_alert_time_to_claim_seconds on every node's /metrics, from signed times)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
