"""`make demo`: a real node (its own nats-server, store and keys) through a scenario.

Owns the scripted walk-through a newcomer sees first. Every step is a real `rrn`
command run as a subprocess against a real daemon; the timeline printed at the
end is read back from the node (`rrn alert show --json`), not made up here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from node.output import fmt_time

__all__ = ["main"]

_RRN = [sys.executable, "-m", "node.cli"]


def _say(text: str) -> None:
    print(text, flush=True)


def _rrn(*args: str, show: bool = True) -> str:
    if show:
        _say(f"  $ rrn {' '.join(args)}")
    done = subprocess.run([*_RRN, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"demo step failed: rrn {' '.join(args)}\n{done.stderr.strip()}")
    return done.stdout


def _rrn_json(*args: str) -> Any:
    return json.loads(_rrn(*args, "--json"))


def _start(home: Path) -> subprocess.Popen[bytes]:
    log = (home.parent / f"{home.name}.log").open("ab")
    proc = subprocess.Popen([*_RRN, "run", "--home", str(home)], stdout=log, stderr=log)
    info = home / "run" / "daemon.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the node did not start; see {log.name}")
        if info.exists() and json.loads(info.read_text()).get("pid") == proc.pid:
            return proc
        time.sleep(0.1)
    raise SystemExit("the node did not become ready within 60 s")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; keeps its files with --keep."""
    parser = argparse.ArgumentParser(prog="python -m node.demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the demo's node home")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="rrn-demo-"))
    home = root / "lima-hr"
    proc: subprocess.Popen[bytes] | None = None
    try:
        _say("== rrn demo: one node, one alert life cycle ==\n")
        _say("1. An organisation in Lima creates its node (config, keys, store):")
        _rrn(
            "init",
            "--home",
            str(home),
            "--org",
            "lima-hr",
            "--tz",
            "America/Lima",
            "--name",
            "Lima Human Rights Collective",
            "--nats-port",
            "0",
            "--metrics-port",
            "0",
        )
        _say("\n2. It starts the node: an embedded nats-server, the store, /metrics.")
        _say(f"  $ rrn run --home {home} &")
        proc = _start(home)
        status = _rrn_json("status", "--home", str(home))
        _say(f"  node ready: nats {status['nats_url']}, metrics {status['metrics_url']}")
        _say("\n3. A case officer raises an alert: a land defender in Loreto got a death threat.")
        _say("   Only coarse, routable fields; the defender appears under a minted pseudonym.")
        alert = _rrn_json(
            "alert",
            "raise",
            "--home",
            str(home),
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
        short = alert["id"][:12]
        _say(f"  raised alert {short} for {alert['pseudonym']}")
        _say("\n4. The on-duty responder claims it for two hours:")
        _rrn("alert", "claim", short, "--home", str(home), "--for", "120")
        _say("\n5. New information: the threat escalated; severity goes up.")
        _rrn("alert", "update", short, "--home", str(home), "--severity", "extreme")
        _say("\n6. The node is restarted (nothing is lost) ...")
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        proc = _start(home)
        _say("\n7. ... and the response ends: relocated to safety.")
        _rrn("alert", "resolve", short, "--home", str(home), "--outcome", "relocated")
        _say("\n8. Anyone can audit the signed history, offline:")
        _say("  " + _rrn("log", "verify", "--home", str(home)).strip())
        detail = _rrn_json("alert", "show", short, "--home", str(home))
        _timeline(detail)
        _say("\nOpen alerts now:")
        _say(_rrn("alert", "list", "--home", str(home), "--all", show=False))
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        if args.keep:
            _say(f"demo files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _timeline(detail: dict[str, Any]) -> None:
    a = detail["alert"]
    _say(f"\n== timeline of alert {a['id'][:12]} (times in America/Lima) ==")
    for e in detail["events"]:
        _say(f"  {fmt_time(e['wall_ms'], 'America/Lima')}  {e['origin']:<8} {e['kind']}")
    _say(
        f"  final: {a['status']} ({a['end_code']}), severity {a['severity']}, "
        f"claimed by {', '.join(a['claimants'])}"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
