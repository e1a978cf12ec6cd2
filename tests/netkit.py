"""Real multi-node networks for integration tests (each node: own daemon and nats-server)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from rrn.node.control.client import call
from rrn.node.devnet.devnet import Devnet, create_devnet, remove_devnet
from rrn.node.devnet.wan import Profile
from rrn.node.home.clock import SystemClock
from rrn.node.home.layout import open_home
from rrn.node.membership.policy import changed_policy
from rrn.node.ops.types import AlertInfo, RaiseArgs
from rrn.protocol import subjects
from rrn.protocol.envelope import sign_event
from rrn.protocol.kinds import encode_payload
from rrn.protocol.policy import NetworkPolicy
from rrn.protocol.roster import Role
from rrn.protocol.vocabulary import IncidentType, Severity, Urgency
from tests.procs import rrn_json, rrn_ok, wait_until
from tests.support import raised

RAISE = RaiseArgs(
    country="KE",
    incident_types=[IncidentType.ARBITRARY_DETENTION],
    severity=Severity.SEVERE,
    urgency=Urgency.IMMEDIATE,
)


def _policy(escalation: str | None, limits: str | None, links: int | None) -> NetworkPolicy | None:
    """The network policy a test asks for, in `rrn network genesis` flag syntax."""
    return changed_policy(None, escalation, limits, str(links) if links else None)


class TestNetwork:
    """A devnet started for a test, with helpers to drive and inspect it."""

    __test__ = False  # not a test class

    def __init__(self, devnet: Devnet) -> None:
        self.devnet = devnet

    @classmethod
    def create(
        cls,
        directory: Path,
        n: int,
        *,
        nat: set[int] | None = None,
        threshold: int | None = None,
        start: bool = True,
        escalation: str | None = None,
        limits: str | None = None,
        links: int | None = None,
        roles: dict[int, list[Role]] | None = None,
        states: dict[int, str] | None = None,
        wan: Profile | None = None,
    ) -> TestNetwork:
        devnet = asyncio.run(
            create_devnet(
                directory,
                n,
                clock=SystemClock(),
                nat=nat,
                threshold=threshold,
                heartbeat_s=0.5,
                policy=_policy(escalation, limits, links),
                roles=roles,
                states=states,
                wan=wan,
            )
        )
        net = cls(devnet)
        if start:
            try:
                for node in devnet.nodes:
                    devnet.start(node.index)
            except BaseException:
                net.close()  # the nodes already started, and their servers
                raise
        return net

    def close(self) -> None:
        remove_devnet(self.devnet)

    # -- nodes ------------------------------------------------------------------

    @property
    def indexes(self) -> list[int]:
        return [n.index for n in self.devnet.nodes]

    def home(self, k: int) -> Path:
        return self.devnet.node(k).home

    def org(self, k: int) -> str:
        return self.devnet.node(k).org

    def cli(self, k: int, *args: str) -> str:
        return rrn_ok(*args, "--home", self.home(k))

    def cli_json(self, k: int, *args: str) -> Any:
        return rrn_json(*args, "--home", self.home(k))

    def edit_config(self, k: int, old: str, new: str) -> None:
        path = self.home(k) / "config.toml"
        text = path.read_text()
        assert old in text, f"{old!r} not in config"
        path.write_text(text.replace(old, new, 1))

    # -- traffic ----------------------------------------------------------------

    def raise_alert(self, k: int, *extra: str) -> str:
        """Raise an alert at node k with `rrn alert raise` (and these options); its id."""
        return str(
            self.cli_json(
                k,
                "alert",
                "raise",
                "--country",
                "PE",
                "--type",
                "raid",
                "--severity",
                "moderate",
                "--urgency",
                "days",
                *extra,
            )["id"]
        )

    def burst(self, k: int, n: int, *, concurrency: int = 50) -> list[str]:
        """Raise n alerts at node k through the control channel; their ids."""
        home = open_home(self.home(k))

        async def go() -> list[str]:
            ids: list[str] = []
            for start in range(0, n, concurrency):
                batch = [
                    call(home, "alert.raise", RAISE, AlertInfo)
                    for _ in range(min(concurrency, n - start))
                ]
                ids += [info.id for info in await asyncio.gather(*batch)]
            return ids

        return asyncio.run(go())

    # -- inspection (the stores themselves, read-only) ------------------------------

    def event_ids(self, k: int) -> set[str]:
        with sqlite3.connect(f"file:{self.home(k) / 'store.db'}?mode=ro", uri=True) as db:
            return {bytes(r[0]).hex() for r in db.execute("SELECT id FROM events")}

    def roster_version(self, k: int) -> int:
        with sqlite3.connect(f"file:{self.home(k) / 'store.db'}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT MAX(version) FROM rosters").fetchone()[0])

    def metric(self, k: int, name: str, **labels: str) -> float:
        info = json.loads((self.home(k) / "run" / "daemon.json").read_text())
        text = urllib.request.urlopen(info["metrics_url"], timeout=5).read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] != name:
                continue
            if all(f'{key}="{val}"' in head for key, val in labels.items()):
                total += float(value)
        return total

    def wait(self, predicate: Any, what: str, timeout: float = 60) -> None:
        wait_until(predicate, timeout, what, interval=0.2)

    def wait_holds(
        self, ids: set[str], nodes: list[int] | None = None, timeout: float = 60
    ) -> None:
        for k in nodes or self.indexes:
            self.wait(
                lambda k=k: ids <= self.event_ids(k), f"node {k} to hold {len(ids)} events", timeout
            )

    def wait_converged(self, nodes: list[int] | None = None, timeout: float = 90) -> set[str]:
        nodes = nodes or self.indexes

        def same() -> bool:
            sets = [self.event_ids(k) for k in nodes]
            return all(s == sets[0] for s in sets)

        self.wait(same, "every node to hold the same events", timeout)
        return self.event_ids(nodes[0])


async def publish_as(net: TestNetwork, k: int, subject: str, data: bytes) -> None:
    """Publish raw bytes on node k's own NATS server, in its own account (as node k would)."""
    import nats

    from rrn.node.natsd.conf import DAEMON_USER

    home = net.home(k)
    info = json.loads((home / "run" / "daemon.json").read_text())
    nc = await nats.connect(
        info["nats_url"], user=DAEMON_USER, password=open_home(home).keys().nats_password
    )
    try:
        await nc.publish(subject, data)
        await nc.flush()
    finally:
        await nc.close()


class Capture:
    """Every message node k's NATS server carries in its account (subject, headers, data),
    recorded from a wildcard subscription until `stop` — what a wiretap on the server sees."""

    def __init__(self, net: TestNetwork, k: int) -> None:
        self.messages: list[bytes] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._nc: Any = asyncio.run_coroutine_threadsafe(self._start(net, k), self._loop).result(15)

    async def _start(self, net: TestNetwork, k: int) -> Any:
        import nats

        from rrn.node.natsd.conf import DAEMON_USER

        home = net.home(k)
        info = json.loads((home / "run" / "daemon.json").read_text())
        password = open_home(home).control_secrets().nats_password
        nc = await nats.connect(info["nats_url"], user=DAEMON_USER, password=password)

        async def record(msg: Any) -> None:
            headers = json.dumps(msg.headers or {}).encode()
            self.messages.append(msg.subject.encode() + b"\n" + headers + b"\n" + msg.data)

        await nc.subscribe(">", cb=record)
        await nc.flush()
        return nc

    def stop(self) -> list[bytes]:
        """Stop recording; what was seen."""
        asyncio.run_coroutine_threadsafe(self._nc.close(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        return self.messages


def network_id(net: TestNetwork, k: int) -> bytes:
    with sqlite3.connect(f"file:{net.home(k) / 'store.db'}?mode=ro", uri=True) as db:
        return bytes(db.execute("SELECT value FROM meta WHERE key = 'net'").fetchone()[0])


def signed_by(tnet: TestNetwork, k: int, **fields: object) -> bytes:
    """An event signed with node k's real key of that epoch (as a thief or a liar would)."""
    base: dict[str, object] = {
        "net": network_id(tnet, k),
        "origin": tnet.org(k),
        "epoch": 1,
        "seq": 1,
        "prev": None,
        "kind": "alert.raised",
        "wall_ms": int(time.time() * 1000),
        "roster_ver": 0,
        "payload": encode_payload(raised(5)),
    }
    base.update(fields)
    key = open_home(tnet.home(k)).keys().signing_keys()[base["epoch"]]  # type: ignore[index]
    return sign_event(key, **base).envelope()  # type: ignore[arg-type]


def inject(net: TestNetwork, k: int, tail: str, data: bytes) -> None:
    """Publish raw bytes as node k on its own subject `rrn.<net>.<org>.<tail>`."""
    subject = f"rrn.{subjects.net_token(network_id(net, k))}.{net.org(k)}.{tail}"
    asyncio.run(publish_as(net, k, subject, data))


def rejected(net: TestNetwork, k: int, peer: str, reason: str) -> float:
    """How many of `peer`'s messages node k refused for `reason`."""
    return net.metric(k, "rrn_peer_rejected_total", peer=peer, reason=reason)
