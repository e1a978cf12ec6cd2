"""WAN devnets: the paths between nodes as real networks make them, and their faults.

Owns the profile of a WAN devnet (round trips, jitter, loss and bandwidth between
its cities: `rrn devnet up --wan [PROFILE]`, default node/devnet/wan-cities.toml),
the plan of proxied paths it implies (one per direct link, as the roster's rule
decides them: federation/topology.py), the state file DIR/wan.json that the
proxy process serves and `rrn devnet fault` edits, and that process itself
(`python -m rrn.node.devnet.wan DIR`: SIGHUP rereads the faults, SIGTERM stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta

from rrn.federation.topology import links
from rrn.node.devnet.faults import FaultProxy, Faults, ProxyPath
from rrn.node.devnet.netns import Lan
from rrn.protocol.errors import ConfigError
from rrn.protocol.roster import Roster

__all__ = [
    "LEAF_PORT",
    "Profile",
    "change_path",
    "load_paths",
    "load_profile",
    "path_between",
    "plan_paths",
    "proxy_pid",
    "save_paths",
    "signal_proxy",
    "start_proxy",
    "stop_proxy",
]

#: The leafnode port every node of a WAN devnet listens on (its own address).
LEAF_PORT: Final = 7422
DEFAULT_PROFILE: Final = Path(__file__).with_name("wan-cities.toml")
_FIRST_PROXY_PORT: Final = 30000


class LinkSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One path's faults, as a profile states them."""

    rtt_ms: Annotated[float, Meta(ge=0, le=10_000)] = 0.0
    jitter_ms: Annotated[float, Meta(ge=0, le=5_000)] = 0.0
    loss: Annotated[float, Meta(ge=0, le=0.5)] = 0.0
    reset: Annotated[float, Meta(ge=0, le=0.1)] = 0.0

    def faults(self) -> Faults:
        return Faults(
            delay_ms=self.rtt_ms / 2, jitter_ms=self.jitter_ms, loss=self.loss, reset=self.reset
        )


class LinkEntry(LinkSpec, forbid_unknown_fields=True, kw_only=True):
    between: Annotated[list[str], Meta(min_length=2, max_length=2)]


class NodeEntry(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    org: str
    #: Its link to everyone carries at most this much each way (0: no limit).
    kbit_s: Annotated[float, Meta(ge=0)] = 0.0


class Profile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A WAN profile file."""

    seed: int = 0
    default: LinkSpec = msgspec.field(default_factory=LinkSpec)
    link: list[LinkEntry] = []
    node: list[NodeEntry] = []

    def spec(self, a: str, b: str) -> LinkSpec:
        for entry in self.link:
            if set(entry.between) == {a, b}:
                return entry
        return self.default


def load_profile(path: Path | None) -> Profile:
    """A WAN profile (the cities' one when no path is given), or a ConfigError."""
    path = path or DEFAULT_PROFILE
    try:
        return msgspec.toml.decode(path.read_bytes(), type=Profile)
    except OSError as exc:
        raise ConfigError(f"cannot read WAN profile {path}: {exc.strerror}") from exc
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def plan_paths(roster: Roster, orgs: list[str], lan: Lan, profile: Profile) -> list[ProxyPath]:
    """One proxied path per direct link (`orgs[k-1]` is node k), faulted as the profile
    says."""
    index = {org: k for k, org in enumerate(orgs, start=1)}
    paths: list[ProxyPath] = []
    for org in orgs:
        for link in links(roster, org):
            if not link.dial:
                continue
            peer = link.peer.org
            faults = profile.spec(org, peer).faults()
            paths.append(
                ProxyPath(
                    name=f"{org}>{peer}",
                    listen=(lan.gateway, _FIRST_PROXY_PORT + len(paths)),
                    target=(lan.ip(index[peer]), LEAF_PORT),
                    forward=faults,
                    back=faults,
                )
            )
    return paths


def save_paths(directory: Path, seed: int, paths: list[ProxyPath]) -> None:
    doc = {
        "seed": seed,
        "paths": [
            {
                "name": p.name,
                "listen": list(p.listen),
                "target": list(p.target),
                "forward": asdict(p.forward),
                "back": asdict(p.back),
            }
            for p in paths
        ],
    }
    tmp = directory / "wan.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(directory / "wan.json")


def load_paths(directory: Path) -> tuple[int, list[ProxyPath]]:
    try:
        doc: dict[str, Any] = json.loads((directory / "wan.json").read_text())
        paths = [
            ProxyPath(
                name=p["name"],
                listen=(p["listen"][0], int(p["listen"][1])),
                target=(p["target"][0], int(p["target"][1])),
                forward=Faults(**p["forward"]),
                back=Faults(**p["back"]),
            )
            for p in doc["paths"]
        ]
        return int(doc["seed"]), paths
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"no WAN devnet in {directory} (rrn devnet up --wan makes one)") from exc


def path_between(paths: list[ProxyPath], a: str, b: str) -> tuple[ProxyPath, str, str]:
    """The path of the direct link between a and b, and which of its directions carries
    a→b and which b→a ("forward" is dialler to acceptor)."""
    for path in paths:
        if path.name == f"{a}>{b}":
            return path, "forward", "back"
        if path.name == f"{b}>{a}":
            return path, "back", "forward"
    raise ConfigError(
        f"{a} and {b} have no direct link (two members behind NAT do not): what passes "
        "between them goes through others"
    )


def change_path(
    paths: list[ProxyPath], a: str, b: str, *, one_way: bool = False, **changes: Any
) -> None:
    """Change what the path between a and b does to traffic from a to b (and from b to
    a unless `one_way`): any field of Faults, or `rtt_ms` for both delays."""
    path, there, back = path_between(paths, a, b)
    if "rtt_ms" in changes:
        changes["delay_ms"] = changes.pop("rtt_ms") / 2
    for direction in (there,) if one_way else (there, back):
        setattr(path, direction, replace(getattr(path, direction), **changes))


# -- the proxy process ------------------------------------------------------------


def proxy_pid(directory: Path) -> int | None:
    try:
        pid = int((directory / "wan.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


#: Proxies this process started, kept to be reaped when stopped.
_started: dict[int, subprocess.Popen[bytes]] = {}


def start_proxy(directory: Path) -> int:
    """Start the proxy of the devnet in `directory` unless it runs; its pid once it
    listens."""
    pid = proxy_pid(directory)
    if pid is not None:
        return pid
    with (directory / "wan.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rrn.node.devnet.wan", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    _started[proc.pid] = proc
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"the WAN proxy did not start; see {directory / 'wan.log'}")
        if proxy_pid(directory) == proc.pid:
            return proc.pid
        time.sleep(0.05)
    raise ConfigError("the WAN proxy did not start listening within 20 s")


def signal_proxy(directory: Path) -> None:
    """Make the running proxy take the faults now in wan.json."""
    pid = proxy_pid(directory)
    if pid is None:
        raise ConfigError(f"the WAN proxy of {directory} is not running")
    os.kill(pid, signal.SIGHUP)


def stop_proxy(directory: Path) -> None:
    pid = proxy_pid(directory)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    proc = _started.pop(pid, None)
    if proc is not None:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proxy_pid(directory) == pid:
        time.sleep(0.05)
    (directory / "wan.pid").unlink(missing_ok=True)


async def _serve(directory: Path) -> None:
    seed, paths = load_paths(directory)
    proxy = FaultProxy(paths, seed=seed)
    await proxy.start()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def reload() -> None:
        _, fresh = load_paths(directory)
        for p in fresh:
            if p.name in proxy.paths:
                proxy.update(p.name, forward=p.forward, back=p.back)

    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGTERM, done.set)
    (directory / "wan.pid").write_text(str(os.getpid()))
    try:
        await done.wait()
    finally:
        await proxy.stop()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m rrn.node.devnet.wan DEVNET_DIR", file=sys.stderr)
        return 2
    asyncio.run(_serve(Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
