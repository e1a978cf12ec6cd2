"""The chaos soak: a WAN devnet under a seeded schedule of faults while alerts are
raised, escalated, claimed and resolved on every side; then every fault is healed
and an invariant checker proves the network whole (node/devnet/wan.py, the fault
proxy, and the real daemons and nats-servers).

    python -m tests.chaos --duration 600 --seed 7 --out soak-report   (make soak)

Faults: kill -9 of a daemon with its nats-server, kill -9 of a nats-server alone,
partitions between groups of nodes, a cut link, a path slowed to a 1-2 s round
trip, a node restarted with its clock minutes off, and a full disk (the last
node's home is on a small tmpfs, filled to the last byte, emptied later). The report (JSON) counts
them, the alerts, what was lost and forked, and the worst delivery and escalation
delays; delivery.svg plots delivery latency over the run. `tests/node/devnet/
test_soak.py` runs it for 90 s as part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from rrn.node.control.client import call
from rrn.node.devnet.wan import load_profile
from rrn.node.home.clock import OFFSET_ENV
from rrn.node.home.layout import open_home
from rrn.node.ops.types import AlertInfo, ClaimArgs, RaiseArgs, ResolveArgs
from rrn.protocol.alerts import AlertEscalated
from rrn.protocol.errors import RrnError
from rrn.protocol.kinds import decode_payload
from rrn.protocol.vocabulary import IncidentType, Outcome, Severity, Urgency
from tests.chaos_report import check, write_plot
from tests.netkit import TestNetwork
from tests.procs import rrn_json

__all__ = ["STEP_S", "Soak", "SoakReport", "main"]

#: Seconds an unclaimed alert waits at each step (the genesis policy of the soak).
STEP_S: Final = 10
NODES: Final = 4
#: Seconds an escalation may come after its deadline (stagger, kills, partitions).
BOUND_S: Final = 20.0
_FAULTS: Final = ("kill", "kill-server", "partition", "cut", "slow", "clock", "disk")
#: The node whose home sits on a small tmpfs, so that its disk can fill up.
DISK_NODE: Final = NODES


@dataclass
class SoakReport:
    """What a soak did and what the checker found."""

    seed: int
    duration_s: float
    nodes: int
    faults: list[dict[str, Any]] = field(default_factory=list)
    alerts: int = 0
    claims: int = 0
    resolved: int = 0
    refused_ops: int = 0
    lost: int = 0
    forks: int = 0
    views_differ: int = 0
    same_signer_same_level: int = 0
    escalations: int = 0
    worst_escalation_delay_s: float = 0.0
    stuck: int = 0
    worst_delivery_s: float = 0.0
    p50_delivery_s: float = 0.0
    p99_delivery_s: float = 0.0
    converged_after_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    deliveries: list[tuple[float, float, str]] = field(default_factory=list)


class Soak:
    """One soak run over a WAN devnet it makes in `directory`."""

    def __init__(self, directory: Path, seed: int, duration_s: float) -> None:
        self.rng = random.Random(seed)
        self.duration_s = duration_s
        self.report = SoakReport(seed=seed, duration_s=duration_s, nodes=NODES)
        self.net = TestNetwork.create(
            directory,
            NODES,
            wan=load_profile(None),
            escalation=f"immediate={STEP_S}s,days={STEP_S}s,weeks={STEP_S}s,direct=2",
        )
        self.small_disk = self.net.home(DISK_NODE)
        self._move_to_small_disk()
        self.start = time.monotonic()
        self.acked: dict[str, str] = {}  # alert id -> the node that raised it
        self.claimed: dict[str, int] = {}  # alert id -> claimant node
        self.down: dict[int, float] = {}  # stopped node -> when to start it again
        self.skewed: set[str] = set()
        self.heals: list[tuple[float, list[str]]] = []

    def close(self) -> None:
        try:
            self.net.close()
        finally:
            subprocess.run(["umount", "-l", str(self.small_disk)], check=False)
            shutil.rmtree(self.small_disk, ignore_errors=True)

    def _move_to_small_disk(self) -> None:
        """Node DISK_NODE's home onto a 256 MB tmpfs (stopped while it moves)."""
        home = self.small_disk
        self.net.devnet.stop(DISK_NODE)
        aside = home.with_name(home.name + ".moving")
        home.rename(aside)
        home.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(home)], check=True)
        subprocess.run(["cp", "-a", f"{aside}/.", str(home)], check=True)
        shutil.rmtree(aside)
        self.net.devnet.start(DISK_NODE)

    # -- the run ------------------------------------------------------------------

    def run(self) -> SoakReport:
        next_fault = self.start + self.rng.uniform(5, 10)
        while (now := time.monotonic()) < self.start + self.duration_s:
            if now >= next_fault:
                # One clock fault a run: a skewed node's times are left out of the delays.
                kinds = [f for f in _FAULTS if f != "clock" or not self.skewed]
                self._fault(self.rng.choice(kinds))
                next_fault = now + self.rng.uniform(6, 14)
            self._heal_due(now)
            self._work()
            time.sleep(self.rng.uniform(0.1, 0.6))
        self._heal_all()
        converging = time.monotonic()
        self.net.wait_converged(timeout=180)
        self.report.converged_after_s = round(time.monotonic() - converging, 1)
        check(self, settled=False)  # lost, forks, escalations: before anything stops them
        self._claim_the_rest()
        self.net.wait_converged(timeout=120)
        check(self, settled=True)  # nothing moves now: every node must show the same
        return self.report

    def _claim_the_rest(self) -> None:
        """Stop the ladders: the first node claims every alert still open, so the views
        stop moving and can be compared."""
        k = self.net.indexes[0]
        for a in self.net.cli_json(k, "alert", "list", "--all"):
            if a["status"] in ("open", "escalated"):
                try:
                    self._call(k, "alert.claim", ClaimArgs(alert=a["id"]), AlertInfo)
                except RrnError:
                    self.report.problems.append(f"could not claim {a['id'][:12]} at the end")

    def _live(self) -> list[int]:
        return [k for k in self.net.indexes if k not in self.down]

    def _fault(self, kind: str) -> None:
        live = self._live()
        if len(live) < 3:
            return  # keep a majority up: what is checked is recovery, not a dead net
        k = self.rng.choice(live)
        at = round(time.monotonic() - self.start, 1)
        fault: dict[str, Any] = {"at_s": at, "kind": kind, "node": self.net.org(k)}
        if kind == "disk":
            k = DISK_NODE if DISK_NODE in live else k
            fault["node"] = self.net.org(k)
            if k == DISK_NODE:
                self._fill_disk()
        elif kind in ("kill", "kill-server"):
            self._kill(k, server_only=kind == "kill-server")
        elif kind == "clock":
            offset = self.rng.choice((-1, 1)) * self.rng.randint(120, 300)
            self.net.devnet.stop(k)
            self.net.devnet.start(k, env={OFFSET_ENV: str(offset)})
            self.skewed.add(self.net.org(k))
            fault["offset_s"] = offset
        else:
            fault |= self._path_fault(kind, k, live)
        self.report.faults.append(fault)

    def _fill_disk(self) -> None:
        """Fill node DISK_NODE's disk to the last byte; it is emptied (and the node,
        which stops when it cannot write, started again) after a while."""
        filler = self.small_disk / "filler"
        with filler.open("wb") as f, contextlib.suppress(OSError):
            while True:
                f.write(bytes(1 << 20))
                f.flush()
        self.down[DISK_NODE] = time.monotonic() + self.rng.uniform(8, 14)

    def _kill(self, k: int, *, server_only: bool) -> None:
        home = self.net.home(k)
        if server_only:
            pid = int((home / "run" / "nats-server.pid").read_text())
            os.kill(pid, signal.SIGKILL)
        else:
            self.net.devnet.stop(k, kill=True)
        self.down[k] = time.monotonic() + self.rng.uniform(4, 8)

    def _path_fault(self, kind: str, k: int, live: list[int]) -> dict[str, Any]:
        until = time.monotonic() + self.rng.uniform(5, 12)
        if kind == "partition":
            others = [j for j in self.net.indexes if j != k]
            side = [k, *self.rng.sample(others, self.rng.randint(0, 1))]
            rest = [j for j in self.net.indexes if j not in side]
            args = ["partition", ",".join(map(str, side)), ",".join(map(str, rest))]
            self._fault_cli(*args)
            self.heals.append((until, ["heal", "--all"]))
            return {"sides": [side, rest]}
        paths = self._fault_cli("show")["paths"]
        path = self.rng.choice(paths)
        a, b = path["name"].split(">")
        if kind == "cut":
            self._fault_cli("cut", a, b)
            self.heals.append((until, ["heal", a, b]))
            return {"path": path["name"]}
        rtt = self.rng.randint(1000, 2000)
        self._fault_cli("shape", a, b, "--rtt-ms", str(rtt))
        was = str(round(2 * path["forward"]["delay_ms"]))
        self.heals.append((until, ["shape", a, b, "--rtt-ms", was]))
        return {"path": path["name"], "rtt_ms": rtt}

    def _fault_cli(self, *args: str) -> Any:
        return rrn_json("devnet", "fault", *args, "--dir", self.net.devnet.dir)

    def _heal_due(self, now: float) -> None:
        for k, when in list(self.down.items()):
            if now >= when:
                self._restart(k)
        for item in [h for h in self.heals if h[0] <= now]:
            self.heals.remove(item)
            self._fault_cli(*item[1])

    def _restart(self, k: int) -> None:
        """Start node k again (a daemon whose nats-server was killed may still run: it
        is stopped first, as its supervisor would)."""
        self.net.devnet.stop(k, kill=True)
        (self.net.home(k) / "filler").unlink(missing_ok=True)
        org = self.net.org(k)
        env = {OFFSET_ENV: "0"} if org not in self.skewed else None
        self.net.devnet.start(k, env=env)
        self.down.pop(k, None)

    def _heal_all(self) -> None:
        for k in list(self.down):
            self._restart(k)
        for _, args in sorted(self.heals):
            self._fault_cli(*args)
        self.heals.clear()
        self._fault_cli("heal", "--all")

    # -- the workload ---------------------------------------------------------------

    def _work(self) -> None:
        live = self._live()
        k = self.rng.choice(live)
        roll = self.rng.random()
        try:
            if roll < 0.45 or not self.acked:
                info = self._call(k, "alert.raise", _raise(self.rng), AlertInfo)
                self.acked[info.id] = self.net.org(k)
                self.report.alerts += 1
            elif roll < 0.8:
                alert = self.rng.choice(sorted(set(self.acked) - set(self.claimed)) or [""])
                if alert:
                    self._call(k, "alert.claim", ClaimArgs(alert=alert), AlertInfo)
                    self.claimed[alert] = k
                    self.report.claims += 1
            elif self.claimed:
                alert, j = self.rng.choice(sorted(self.claimed.items()))
                if j in live:
                    args = ResolveArgs(alert=alert, outcome=Outcome.SAFE)
                    self._call(j, "alert.resolve", args, AlertInfo)
                    del self.claimed[alert]
                    self.report.resolved += 1
        except (RrnError, OSError, TimeoutError):
            self.report.refused_ops += 1  # a node away, or an alert it does not hold yet

    def _call(self, k: int, op: str, args: object, result: type[AlertInfo]) -> AlertInfo:
        home = open_home(self.net.home(k))
        return asyncio.run(asyncio.wait_for(call(home, op, args, result), 10))

    # -- what the stores hold ---------------------------------------------------------

    def escalations(self, k: int) -> list[tuple[str, int, int, str]]:
        """(alert, level, wall_ms, signer) of every escalation node k holds."""
        with sqlite3.connect(f"file:{self.net.home(k) / 'store.db'}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT origin, wall_ms, payload FROM events "
                "WHERE kind = 'alert.escalated' AND payload IS NOT NULL"
            ).fetchall()
        found = []
        for origin, wall_ms, payload in rows:
            p = decode_payload("alert.escalated", bytes(payload))
            assert isinstance(p, AlertEscalated)
            found.append((p.alert.hex(), p.level, int(wall_ms), str(origin)))
        return found

    def raises(self, k: int) -> dict[str, tuple[str, int, dict[str, int]]]:
        """Each raise node k holds: its origin, its wall_ms, and when each node got it."""
        found: dict[str, tuple[str, int, dict[str, int]]] = {}
        for j in self.net.indexes:
            home = self.net.home(j)
            with sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True) as db:
                rows = db.execute(
                    "SELECT id, origin, wall_ms, received_ms FROM events "
                    "WHERE kind = 'alert.raised'"
                ).fetchall()
            for eid, origin, wall_ms, received_ms in rows:
                entry = found.setdefault(bytes(eid).hex(), (str(origin), int(wall_ms), {}))
                entry[2][self.net.org(j)] = int(received_ms)
        return found


def _raise(rng: random.Random) -> RaiseArgs:
    return RaiseArgs(
        country=rng.choice(("PE", "KE", "ID", "BR", "DE")),
        incident_types=[rng.choice(list(IncidentType))],
        severity=rng.choice(list(Severity)),
        urgency=rng.choice(list(Urgency)),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of chaos")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("soak-report"))
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the soak puts nodes in network namespaces: run it as root", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="rrn-soak-") as tmp:
        soak = Soak(Path(tmp) / "net", args.seed, args.duration)
        try:
            report = soak.run()
        finally:
            soak.close()
    args.out.mkdir(parents=True, exist_ok=True)
    doc = asdict(report)
    doc.pop("deliveries")
    (args.out / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_plot(report, args.out / "delivery.svg")
    print(json.dumps(doc, indent=2))
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
