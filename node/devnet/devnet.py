"""Local networks for trying and testing: `rrn devnet up|stop|start|down|status`.

Owns making N organisations on loopback in one directory — homes with keys and
TLS certificates, a genesis roster every founder signs (the same documents the
real founding commands exchange), some members behind NAT — and running their
daemons in the background. DIR/devnet.json records the nodes; each daemon's
output goes to DIR/<org>.log.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from rrn.node.devnet.daemons import log_tail, running_pid, start_daemon, stop_daemon
from rrn.node.devnet.netns import Lan, create_lan, lan_for, remove_lan
from rrn.node.devnet.wan import (
    LEAF_PORT,
    Profile,
    plan_paths,
    save_paths,
    start_proxy,
    stop_proxy,
)
from rrn.node.home.clock import Clock
from rrn.node.home.config import load_config, render_config
from rrn.node.home.layout import Home, open_home
from rrn.node.membership.founding import (
    adopt_network,
    card_document,
    certs_of,
    genesis_document,
    read_card,
    sign_document,
    write_document,
)
from rrn.node.membership.init import init_home
from rrn.protocol.errors import ConfigError
from rrn.protocol.policy import NetworkPolicy
from rrn.protocol.roster import Role, decode_cert, decode_roster

__all__ = ["Devnet", "DevnetNode", "create_devnet", "load_devnet"]

#: Organisations of a devnet, in order: follow-the-sun across regions.
PLACES: Final = (
    ("lima-hr", "Lima Human Rights Collective", "America/Lima"),
    ("nairobi-dl", "Nairobi Defenders League", "Africa/Nairobi"),
    ("jakarta-pb", "Jakarta Legal Aid", "Asia/Jakarta"),
    ("berlin-fd", "Berlin Defenders Fund", "Europe/Berlin"),
    ("manila-hrc", "Manila Human Rights Centre", "Asia/Manila"),
    ("bogota-cc", "Bogota Coalition", "America/Bogota"),
    ("kathmandu-ip", "Kathmandu Advocacy", "Asia/Kathmandu"),
    ("cdmx-dh", "Mexico City Defenders Network", "America/Mexico_City"),
)

#: Supporters of a devnet, by role: a node given one of these roles (and not
#: responder) takes the next name here instead of its place's.
SUPPORTERS: Final = {
    Role.COMPANY: (
        ("andes-mining", "Andes Mining", "America/Lima"),
        ("orbit-telecom", "Orbit Telecom", "Europe/Amsterdam"),
        ("pacific-agro", "Pacific Agro", "Asia/Singapore"),
    ),
    Role.EMBASSY: (
        ("nl-embassy", "Embassy of the Netherlands", "America/Lima"),
        ("ca-embassy", "Embassy of Canada", "America/Lima"),
    ),
    Role.INVESTOR: (("fjord-fund", "Fjord Pension Fund", "Europe/Oslo"),),
}


def _names(n: int, roles: dict[int, list[Role]]) -> list[tuple[str, str, str]]:
    """Each node's org id, name and time zone."""
    taken: dict[Role, int] = {}
    found = []
    for k in range(1, n + 1):
        mine = roles.get(k, [])
        first = mine[0] if mine and Role.RESPONDER not in mine else Role.RESPONDER
        names, used = SUPPORTERS.get(first, ()), taken.get(first, 0)
        found.append(names[used] if used < len(names) else PLACES[k - 1])
        taken[first] = used + 1
    return found


@dataclass(frozen=True)
class DevnetNode:
    """One organisation of a devnet."""

    index: int  # 1-based, as `--node K` names it
    org: str
    tz: str
    home: Path
    nat: bool

    def home_obj(self) -> Home:
        return open_home(self.home)


@dataclass(frozen=True)
class Devnet:
    """A devnet directory and its nodes."""

    dir: Path
    nodes: list[DevnetNode]
    #: A WAN devnet's namespaces (node/devnet/netns.py); None on loopback.
    lan: Lan | None = None

    def node(self, k: int) -> DevnetNode:
        for n in self.nodes:
            if n.index == k:
                return n
        raise ConfigError(f"this devnet has nodes 1..{len(self.nodes)}; there is no node {k}")

    @property
    def log_dir(self) -> Path:
        return self.dir

    def start(self, k: int, env: dict[str, str] | None = None) -> int:
        """Start node K's daemon in the background (with these environment variables
        added); its pid once it is ready."""
        node = self.node(k)
        enter: list[str] = []
        if self.lan is not None and running_pid(node.home) is None:
            start_proxy(self.dir)
            enter = self.lan.enter(k)
        return start_daemon(node.home, self.dir / f"{node.org}.log", enter=enter, env=env)

    def stop(self, k: int, *, kill: bool = False) -> bool:
        """Stop node K (SIGTERM, or SIGKILL of daemon and nats-server); False if not
        running. A daemon still running after the stop grace period is stopped hard,
        its tasks' stacks left in its log first, and the stop raises ConfigError."""
        node = self.node(k)
        return stop_daemon(node.home, self.dir / f"{node.org}.log", kill=kill)

    def running(self) -> dict[int, int | None]:
        return {n.index: running_pid(n.home) for n in self.nodes}


#: Ports this process handed out: each is bound only when its node starts, so a port
#: free now may already be promised to another node (two nodes of one devnet once
#: drew the same port, and the second could not start).
_GIVEN: set[int] = set()


def free_port() -> int:
    """A loopback port free right now and never handed out before by this process, for
    a devnet's leafnode listener.

    It is chosen below the kernel's ephemeral range (32768 and up on Linux): the
    listener binds it only when its node starts, and meanwhile the outgoing
    connections of the nodes already running take ephemeral ports, which could
    be this one (a node then failed to start, seen once in a benchmark).
    """
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20_000, 32_000)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise ConfigError("no free loopback port between 20000 and 32000 for a devnet node")


def load_devnet(directory: Path) -> Devnet:
    """The devnet recorded in `directory`."""
    try:
        doc: dict[str, Any] = json.loads((directory / "devnet.json").read_text())
        nodes = [
            DevnetNode(n["index"], n["org"], n["tz"], Path(n["home"]), n["nat"])
            for n in doc["nodes"]
        ]
        wan = bool(doc.get("wan"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"no devnet in {directory} (make one with 'rrn devnet up')") from exc
    return Devnet(directory, nodes, lan_for(directory) if wan else None)


async def create_devnet(
    directory: Path,
    n: int,
    *,
    clock: Clock,
    nat: set[int] | None = None,
    threshold: int | None = None,
    heartbeat_s: float = 1.0,
    policy: NetworkPolicy | None = None,
    roles: dict[int, list[Role]] | None = None,
    states: dict[int, str] | None = None,
    wan: Profile | None = None,
) -> Devnet:
    """Make N organisations on loopback that found one network together.

    By default every third node (3, 6, …) is behind NAT: it accepts no links and
    dials the others. Nodes are responders unless `roles` says otherwise;
    `states` records the state of nodes that are embassies. With `wan`, each node
    gets its own network namespace and address, and its links go through the fault
    proxy as the profile says (node/devnet/wan.py).
    """
    if not 1 <= n <= len(PLACES):
        raise ConfigError(f"a devnet has 1 to {len(PLACES)} nodes")
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"{directory} already exists and is not empty")
    directory.mkdir(parents=True, exist_ok=True)
    nat = {k for k in range(1, n + 1) if k % 3 == 0} if nat is None else nat
    lan = lan_for(directory) if wan is not None else None
    nodes = []
    for k, (org, name, tz) in enumerate(_names(n, roles or {}), start=1):
        here = f"127.0.0.1:{free_port()}" if lan is None else f"{lan.ip(k)}:{LEAF_PORT}"
        advertise = [] if k in nat else [here]
        home = await init_home(
            directory / org,
            org=org,
            name=name,
            tz=tz,
            clock=clock,
            nats_port=0,
            metrics_port=0,
            console_port=0,
            advertise=advertise,
            listen=advertise[0] if advertise else None,
            # Peers dial through the fault proxy on the bridge: the name they check.
            tls_names=[lan.gateway] if lan is not None else None,
            roles=(roles or {}).get(k),
        )
        _set_heartbeat(home.config_path, heartbeat_s)
        nodes.append(DevnetNode(k, org, tz, home.path, k in nat))
    by_org = {nodes[k - 1].org: cc for k, cc in (states or {}).items()}
    await _found(directory, nodes, threshold=threshold, clock=clock, policy=policy, states=by_org)
    if lan is not None and wan is not None:
        _lay_wan(directory, nodes, lan, wan)
    doc = {"nodes": [n.__dict__ | {"home": str(n.home)} for n in nodes], "wan": lan is not None}
    (directory / "devnet.json").write_text(json.dumps(doc, indent=2))
    return Devnet(directory, nodes, lan)


def _lay_wan(directory: Path, nodes: list[DevnetNode], lan: Lan, profile: Profile) -> None:
    """Each node on its own address (its client and metrics ports too, so commands run
    from this host reach it; the client port then needs TLS), its links through the
    fault proxy, and the namespaces made."""
    genesis = directory / "founding" / "genesis.json"
    cert = decode_cert(certs_of(json.loads(genesis.read_text()), genesis)[0])
    orgs = [n.org for n in nodes]
    paths = plan_paths(decode_roster(cert.roster), orgs, lan, profile)
    for k, node in enumerate(nodes, start=1):
        path = node.home / "config.toml"
        config = load_config(path)
        config = msgspec.structs.replace(
            config,
            nats=msgspec.structs.replace(config.nats, host=lan.ip(k), tls=True),
            metrics=msgspec.structs.replace(config.metrics, host=lan.ip(k)),
        )
        overrides = [
            f'"{p.name.split(">")[1]}" = "{p.listen[0]}:{p.listen[1]}"'
            for p in paths
            if p.name.startswith(node.org + ">")
        ]
        table = "\n[federation.dial_overrides]\n" + "\n".join(overrides) + "\n"
        path.write_text(render_config(config) + (table if overrides else ""))
    save_paths(directory, profile.seed, paths)
    kbit = {orgs.index(e.org) + 1: e.kbit_s for e in profile.node if e.org in orgs and e.kbit_s}
    try:
        create_lan(lan, len(nodes), kbit)
    except BaseException:
        remove_lan(lan, len(nodes))
        raise


def _set_heartbeat(config_path: Path, seconds: float) -> None:
    text = config_path.read_text()
    config_path.write_text(text.replace("heartbeat_s = 2.0", f"heartbeat_s = {seconds}"))


async def _found(
    directory: Path,
    nodes: list[DevnetNode],
    *,
    threshold: int | None,
    clock: Clock,
    policy: NetworkPolicy | None,
    states: dict[str, str],
) -> None:
    """What founders do by hand, done in order: cards, genesis, signatures, adoption."""
    cards_dir = directory / "founding"
    cards_dir.mkdir()
    homes = [open_home(n.home) for n in nodes]
    for home in homes:
        write_document(
            cards_dir / f"{home.config.node.org}.card", card_document(home, home.keys(), clock)
        )
    first = homes[0]
    others = [read_card(cards_dir / f"{h.config.node.org}.card") for h in homes[1:]]
    genesis = cards_dir / "genesis.json"
    doc = genesis_document(
        first, first.keys(), others, threshold=threshold, clock=clock, policy=policy, states=states
    )
    write_document(genesis, doc)
    for home in homes[1:]:
        doc = json.loads(genesis.read_text())
        write_document(genesis, sign_document(doc, genesis, home, home.keys()))
    certs = certs_of(json.loads(genesis.read_text()), genesis)
    for home in homes:
        await adopt_network(home, home.keys(), certs, clock=clock)


def remove_devnet(devnet: Devnet) -> None:
    """Stop every node (hard if need be) and delete the directory."""
    for node in devnet.nodes:
        try:
            devnet.stop(node.index)
        except ConfigError as exc:  # it hung and was killed: say so, with its stacks
            tail = log_tail(devnet.dir / f"{node.org}.log", 80)
            print(f"warning: {exc}\n{tail}", file=sys.stderr)
        except OSError:
            pass
    if devnet.lan is not None:
        stop_proxy(devnet.dir)
        remove_lan(devnet.lan, len(devnet.nodes))
    shutil.rmtree(devnet.dir, ignore_errors=True)
