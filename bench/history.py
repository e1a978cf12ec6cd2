"""Years of history (issue 20): a node holding N real signed events, and one joining late.

Builds a three-member devnet and years of alert life cycles between two of them
(Lima, node 1, and Jakarta, node 3): each alert raised by one, claimed by the other
(no expiry), updated and — three in four — resolved by its origin; an alert
resolved more than `[retention] closed_days` (365) ago carries the tombstone its
origin's retention signed then. Signed times spread over `--years` up to now, in
each chain's order. The events are written as an export file (PROTOCOL.md §7) and
`rrn log import`ed into node 1 (its peak RSS measured), so they go through the
node's own ingest pipeline. Then:

  * node 1 starts alone: `ready_s` from `rrn run` to `rrn status` answering; after
    `--idle-s` (past the 60 s a node waits alone before acting on its alerts) its
    longest event-loop stall (`rrn_event_loop_stall_seconds_max`) and RSS;
  * CLI latencies against node 1: `rrn version`, `rrn alert list [--all]`, and
    `--raises` alerts raised back to back;
  * node 2, empty, starts and catches up over NATS: events/s over the first and the
    last 10 %, peak RSS of both nodes, and its own longest stall; and, over the same
    tenths, node 2's CPU per event (daemon and workers) and how fast the machine was
    (a fixed piece of work timed in CPU, `probe_ms_*`; the share of the CPU the
    hypervisor took, `steal_*`), so a rate that fell with the machine's speed on a
    shared VM is told apart from one the node slowed (`catchup_flatness_same_speed`:
    the rates' ratio times the probe's; `catchup_cpu_flatness`: its CPU per event over
    the first tenth ÷ over the last); how long after its last event it began to act on
    what it holds (`catchup_acting_s`: it waits while it catches up), and its stall
    includes 30 s after that (its first look at every open alert). For each node's
    longest logged stall (100 ms or more): its loop's own CPU in it and how busy the
    machine was (`stall_catchup_*`, `stall_source_*`), which tell the node's work from
    a wait for one of the machine's cores.

Node 3 never runs (a member whose node is down). The network serves each member
`--sync-pages-per-min` sync pages a minute (the default policy's 120, which caps a
catch-up from one peer at ~4,000 events/s after its first 116 pages; more lets the
serving node take the joining node's share of this machine's two cores). Prints
progress on stderr and one JSON line on stdout.

    python bench/history.py [--events 1000000] [--out DIR | --reuse DIR [--reimport]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.history_build import HOLDER, JOINER, log, write_history
from bench.history_probes import (
    Pace,
    bucket_records,
    held,
    pids,
    received,
    rss_mb,
    stall_ms,
    worst_stall,
)  # fmt: skip
from rrn.federation.escalation import DEFAULT_POLICY
from rrn.federation.limits import DEFAULT_LIMITS
from rrn.node.devnet.daemons import running_pid
from rrn.node.devnet.devnet import Devnet, create_devnet, load_devnet
from rrn.node.home.clock import SystemClock
from rrn.protocol.errors import ConfigError
from rrn.protocol.messages import MAX_RANGE_EVENTS

#: How long node 2 runs on once it acts, inside the window its stall is read over.
_AFTER_S: Final = 30.0

# -- processes and measurements -------------------------------------------------------


def rrn_argv() -> list[str]:
    script = Path(sys.executable).with_name("rrn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rrn.node.cli"]


def cli(home: Path | None, *args: str) -> float:
    """Run `rrn ARGS [--home HOME]`; its wall time. A failure ends the benchmark."""
    argv = [*rrn_argv(), *args, *(["--home", str(home)] if home else [])]
    start = time.perf_counter()
    proc = subprocess.run(
        argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    took = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"rrn {' '.join(args)} failed: {proc.stderr.strip()}")
    return took


def import_history(home: Path, path: Path) -> dict[str, float]:
    """`rrn log import` of the export into a stopped node: wall time and peak RSS."""
    start = time.perf_counter()
    argv = [*rrn_argv(), "log", "import", str(path), "--home", str(home)]
    proc = subprocess.Popen(argv, stdout=sys.stderr)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"rrn log import exited {proc.returncode}")
    return {
        "import_s": round(time.perf_counter() - start, 1),
        "import_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
    }


def python_floor() -> float:
    """Wall time of this Python importing the libraries every rrn command needs."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _FLOOR], check=True)
    return time.perf_counter() - start


_FLOOR: Final = "import ssl, msgspec, cryptography.hazmat.primitives.asymmetric.ed25519"


def median_time(home: Path | None, n: int, *args: str) -> float:
    return round(statistics.median(cli(home, *args) for _ in range(n)), 3)


def p99(values: list[float]) -> float:
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, int(0.99 * len(ranked)))]


# -- the phases -------------------------------------------------------------------------

_RAISE: Final = ("alert", "raise", "--country", "PE", "--type", "raid", "--severity",
                 "moderate", "--urgency", "weeks", "--lang", "es")  # fmt: skip


#: Daemons of node 1 this run started (a node filling its alert bucket may take longer
#: to become ready than `rrn devnet start` waits).
_LAUNCHED: list[subprocess.Popen[bytes]] = []


def time_to_ready(devnet: Devnet) -> float:
    """Start node 1: seconds from `rrn run` to the first `rrn status` that answers."""
    node = devnet.node(HOLDER)
    start = time.perf_counter()
    with (devnet.dir / f"{node.org}.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rrn.node.cli", "run", "--home", str(node.home)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    _LAUNCHED.append(proc)
    while True:
        try:
            if running_pid(node.home) == proc.pid:  # its daemon file is written: ask it
                cli(node.home, "status")
                return time.perf_counter() - start
        except SystemExit:
            pass
        if proc.poll() is not None or time.perf_counter() - start > 1800:
            raise SystemExit(f"node 1 did not start; see {devnet.dir / node.org}.log")
        time.sleep(0.1)


def start_holder(devnet: Devnet, idle_s: float) -> dict[str, Any]:
    """Node 1 started once after the import until it has filled its integrators' alert
    bucket (minutes at a million), then restarted, as a node holding years of history
    restarts: time to ready, and after idling its longest stall and RSS."""
    home = devnet.node(HOLDER).home
    first = time_to_ready(devnet)
    records = bucket_records(home)
    devnet.stop(HOLDER)
    ready = time_to_ready(devnet)
    log(f"node 1 ready in {first:.1f} s after the import, {ready:.1f} s restarted; "
        f"{records:,} records in its alert bucket; idle for {idle_s:.0f} s")  # fmt: skip
    time.sleep(idle_s)
    daemon, nats = pids(home)
    return {
        "first_ready_s": round(first, 2),
        "ready_s": round(ready, 2),
        "stall_start_ms": stall_ms(home),
        "daemon_rss_idle_mb": round(rss_mb(daemon), 1),
        "nats_rss_idle_mb": round(rss_mb(nats), 1),
        "bucket_records": records,
    }


def cli_times(devnet: Devnet, samples: int, raises: int) -> dict[str, float]:
    """CLI wall times against node 1 (it runs, alone)."""
    home = devnet.node(HOLDER).home
    cli(None, "alert", "list", "--help")  # its bytecode written, as an install has it
    times = {
        # Start-up alone: the parser and what the alert commands import, no work.
        "cli_start_s": median_time(None, samples, "alert", "list", "--help"),
        "cli_version_s": median_time(None, samples, "version"),
        # What any command must import (TLS to its NATS, its messages, its signature),
        # with nothing of rrn: the floor under cli_start_s on this machine at this moment.
        "cli_floor_s": round(statistics.median(python_floor() for _ in range(samples)), 3),
        "alert_list_s": median_time(home, samples, "alert", "list"),
        "alert_list_all_s": median_time(home, max(1, samples // 2), "alert", "list", "--all"),
    }
    raised = [cli(home, *_RAISE) for _ in range(raises)]
    times |= {
        "raise_p50_s": round(statistics.median(raised), 3),
        "raise_p99_s": round(p99(raised), 3),
    }
    log("CLI: " + ", ".join(f"{k} {v}" for k, v in times.items()))
    return times


def catch_up(devnet: Devnet, timeout_s: float, after_s: float) -> dict[str, Any]:
    """Node 2, empty, pulls node 1's history: rates over its first and last tenth,
    peak RSS of both nodes meanwhile."""
    one, two = devnet.node(HOLDER).home, devnet.node(JOINER).home
    me = devnet.node(JOINER).org
    target = held(one, me)
    started_ms = time.time() * 1000
    devnet.start(JOINER)
    procs = {"": pids(two), "source_": pids(one)}
    peak: dict[str, float] = {}
    last_log = time.monotonic()
    pace = Pace(procs[""][0])
    while (n := held(two, me)) < target:
        pace.sample()
        for prefix, (daemon, nats) in procs.items():
            for name, pid in (("daemon", daemon), ("nats", nats)):
                key = f"{prefix}{name}_rss_catchup_mb"
                peak[key] = max(peak.get(key, 0.0), round(rss_mb(pid), 1))
        if time.monotonic() - last_log > 15:
            last_log = time.monotonic()
            log(f"node 2 holds {n:,} of {target:,}")
        if time.time() * 1000 - started_ms > timeout_s * 1000:
            raise SystemExit(f"node 2 held {n} of {target} events after {timeout_s:.0f} s")
        time.sleep(0.5)
    at = received(two, me)
    acting_s = first_pass(two, at[-1], after_s)
    tenth = max(1, len(at) // 10)
    first = tenth / max(0.001, (at[tenth] - at[0]) / 1000)
    last = tenth / max(0.001, (at[-1] - at[-1 - tenth]) / 1000)
    log(f"node 2 caught up {len(at):,} events in {(at[-1] - started_ms) / 1000:.1f} s")
    return (
        peak
        | pace.tenths(at, tenth, last / first)
        | {
            "catchup_events": len(at),
            "catchup_startup_s": round((at[0] - started_ms) / 1000, 2),
            "catchup_s": round((at[-1] - at[0]) / 1000, 1),
            "catchup_rate": round(len(at) / max(0.001, (at[-1] - at[0]) / 1000)),
            "catchup_rate_first": round(first),
            "catchup_rate_last": round(last),
            "catchup_flatness": round(last / first, 3),
            "catchup_acting_s": acting_s,
            "stall_catchup_ms": stall_ms(two),
            "stall_source_ms": stall_ms(one),
        }
        | worst_stall(devnet.dir / f"{me}.log", "stall_catchup")
        | worst_stall(devnet.dir / f"{devnet.node(HOLDER).org}.log", "stall_source")
    )


def first_pass(home: Path, last_ms: float, after_s: float) -> float:
    """Seconds from the last event node 2 took in to its acting on what it holds (it
    waits while it catches up, node/peering/peers.py); then `after_s` more, so that
    its first look at every open alert falls within the stall it reports."""
    deadline = time.monotonic() + 120
    while True:
        out = subprocess.run([*rrn_argv(), "status", "--json", "--home", str(home)],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        if json.loads(out)["acting"]:
            acting_s = round(time.time() - last_ms / 1000, 1)
            break
        if time.monotonic() > deadline:
            raise SystemExit("node 2 caught up, and did not act within 120 s")
        time.sleep(0.5)
    log(f"node 2 acts {acting_s} s after its last event; watching it {after_s:.0f} s more")
    time.sleep(after_s)
    return acting_s


# -- building, keeping and re-using a history ---------------------------------------------


def clone(src: Path, dst: Path) -> Devnet:
    """A copy of the devnet in `src` at `dst` (its record names its homes' paths)."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, symlinks=True)
    record = dst / "devnet.json"
    record.write_text(record.read_text().replace(str(src), str(dst)))
    return load_devnet(dst)


def build(root: Path, events: int, years: float, tombs: bool, pages: int) -> dict[str, Any]:
    """root/net0: a new devnet; root/history.jsonl: the export; root/net: the devnet
    with the history imported into node 1; root/build.json: what was built."""
    log(f"building {events:,} events in {root}")
    limits = msgspec.structs.replace(DEFAULT_LIMITS, sync_pages_per_min=pages)
    policy = msgspec.structs.replace(DEFAULT_POLICY, limits=limits)
    devnet = asyncio.run(
        create_devnet(
            root / "net0", 3, clock=SystemClock(), nat=set(), heartbeat_s=2.0, policy=policy
        )
    )
    if not tombs:  # every member keeps closed alerts longer than the history goes back
        for node in devnet.nodes:
            config = node.home / "config.toml"
            days = f"closed_days = {int(years * 365) + 30}.0"
            config.write_text(config.read_text().replace("closed_days = 365.0", days))
    export = root / "history.jsonl"
    start = time.perf_counter()
    made: dict[str, Any] = write_history(devnet, export, events, years, tombs)
    log(f"signed {made['events']:,} events in {time.perf_counter() - start:.0f} s; importing")
    net = clone(root / "net0", root / "net")
    made |= import_history(net.node(HOLDER).home, export)
    made |= {
        "years": years,
        "with_tombstones": tombs,
        "sync_pages_per_min": pages,
        "built": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (root / "build.json").write_text(json.dumps(made))
    log(f"imported in {made['import_s']} s, peak RSS {made['import_peak_rss_mb']} MB")
    return made


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    mem = Path("/proc/meminfo").read_text().split()[1]
    return f"{model}, {os.cpu_count()} cpu, {int(mem) / 2**20:.0f} GiB, {platform.machine()}"


@dataclass
class Args:
    events: int
    years: float
    out: Path | None
    reuse: Path | None
    reimport: bool
    tombstones: bool
    idle_s: float | None
    samples: int
    raises: int
    sync_pages_per_min: int


def parse_args() -> Args:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--years", type=float, default=3.0, help="how far back the history goes")
    p.add_argument("--out", type=Path, help="build here and keep it for --reuse")
    p.add_argument("--reuse", type=Path, help="measure a history built with --out")
    p.add_argument("--reimport", action="store_true", help="with --reuse: import it again")
    p.add_argument(
        "--tombstones",
        action="store_true",
        help="alerts closed over a year ago carry their retention tombstones (default: "
        "the members keep closed alerts for the whole history instead)",
    )
    p.add_argument("--idle-s", type=float, help="node 1 alone before measuring (75 s at 100k+)")
    p.add_argument("--samples", type=int, default=5, help="runs of each CLI command timed")
    p.add_argument("--raises", type=int, default=20, help="alerts raised back to back")
    p.add_argument(
        "--sync-pages-per-min",
        type=int,
        default=DEFAULT_LIMITS.sync_pages_per_min,
        help="the network's sync page limit (its policy's)",
    )
    a = p.parse_args()
    return Args(
        a.events,
        a.years,
        a.out,
        a.reuse,
        a.reimport,
        a.tombstones,
        a.idle_s,
        a.samples,
        a.raises,
        a.sync_pages_per_min,
    )


def measure(root: Path, args: Args, built: dict[str, Any]) -> dict[str, Any]:
    devnet = clone(root / ("net0" if args.reimport else "net"), root / "run")
    result = dict(built)
    try:
        if args.reimport:
            result |= import_history(devnet.node(HOLDER).home, root / "history.jsonl")
        idle = args.idle_s if args.idle_s is not None else (75 if built["events"] >= 1e5 else 10)
        result |= start_holder(devnet, idle)
        result |= cli_times(devnet, args.samples, args.raises)
        after = _AFTER_S if built["events"] >= 1e5 else 3
        result |= catch_up(devnet, timeout_s=max(600, built["events"] / 100), after_s=after)
        # The most node 1 serves node 2 once the budget's burst is spent: a last tenth at
        # this rate was paced by the serving member, not slowed by the joining node.
        result["catchup_budget_rate"] = round(built["sync_pages_per_min"] * MAX_RANGE_EVENTS / 60)
    finally:
        for k in (JOINER, HOLDER):
            try:
                devnet.stop(k)
            except ConfigError as exc:  # it hung and was killed: its stacks are in its log
                log(f"warning: {exc}")
        for proc in _LAUNCHED:  # one stopped before it was ready
            if proc.poll() is None:
                proc.terminate()
            proc.wait(60)
    stalls = [s for s in (result["stall_start_ms"], result["stall_catchup_ms"],
                          result["stall_source_ms"]) if s is not None]  # fmt: skip
    return result | {"max_stall_ms": max(stalls) if stalls else None}


def main() -> None:
    args = parse_args()
    # Time rrn as installed: pip compiles its bytecode, and a host that forbids writing
    # it (this one's environment did) made every CLI run compile ~70 modules (~0.1 s).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.reuse is not None:
        root = args.reuse
        built = json.loads((root / "build.json").read_text())
    else:
        root = args.out or Path(tempfile.mkdtemp(prefix="rrn-history-"))
        root.mkdir(parents=True, exist_ok=True)
        built = build(root, args.events, args.years, args.tombstones, args.sync_pages_per_min)
    try:
        result = measure(root, args, built)
    finally:
        if args.out is None and args.reuse is None:
            shutil.rmtree(root, ignore_errors=True)
    head = {
        "bench": "history",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    print(json.dumps(head | result))


if __name__ == "__main__":
    main()
