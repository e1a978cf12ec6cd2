"""Test hosts on one machine: each devnet node in its own Linux network namespace.

Owns the namespaces, the bridge that joins them and the kernel's bandwidth limits
(`tbf`, which every kernel here has) of a WAN devnet (`rrn devnet up --wan`).
Node k lives in namespace `rrn-<tag>-<k>` with address 10.231.<net>.<10+k> on
its `eth0`; the bridge `rrn<tag>` in the host's namespace holds 10.231.<net>.1,
where the fault proxy (node/devnet/faults.py) listens for the links between
nodes. Nothing leaves the machine: the namespaces have no route but the bridge,
and their own /etc/hosts and an empty resolv.conf (/etc/netns/<ns>/, which `ip
netns exec` mounts), so a name lookup answers at once instead of waiting on a
DNS server it cannot reach. Needs root and iproute2's `ip` and `tc`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rrn.protocol.errors import ConfigError

#: Files `ip netns exec` puts in place of /etc's inside a namespace.
_ETC: Final = Path("/etc/netns")

__all__ = ["Lan", "check_lan_tools", "create_lan", "lan_for", "limit", "remove_lan"]


@dataclass(frozen=True)
class Lan:
    """The addresses and names of one WAN devnet's namespaces."""

    tag: str  # four hex digits from the devnet's directory
    net: int  # the third octet of its /24

    @property
    def bridge(self) -> str:
        return f"rrn{self.tag}"

    @property
    def gateway(self) -> str:
        return f"10.231.{self.net}.1"

    def ip(self, k: int) -> str:
        return f"10.231.{self.net}.{10 + k}"

    def ns(self, k: int) -> str:
        return f"rrn-{self.tag}-{k}"

    def veth(self, k: int) -> str:
        return f"rrn{self.tag}v{k}"

    def enter(self, k: int) -> list[str]:
        """The command prefix that runs a program inside node k's namespace."""
        return [_tool("ip"), "netns", "exec", self.ns(k)]


def lan_for(directory: Path) -> Lan:
    """The namespaces of the devnet in `directory` (names derived from its path)."""
    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()
    return Lan(tag=digest[:4], net=1 + int(digest[4:6], 16) % 254)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"a WAN devnet needs `{name}` (Debian package iproute2)")
    return found


def check_lan_tools() -> None:
    """Refuse early, naming what is missing, where namespaces cannot be made."""
    if os.geteuid() != 0:
        raise ConfigError(
            "a WAN devnet puts each node in its own network namespace, which needs root: "
            "run it as root (or with sudo)"
        )
    for tool in ("ip", "tc"):
        _tool(tool)


def _ip(*args: str) -> None:
    done = subprocess.run([_tool("ip"), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConfigError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def create_lan(lan: Lan, nodes: int, kbit_s: dict[int, float]) -> None:
    """The bridge and one namespace per node; `kbit_s` limits some nodes' links."""
    check_lan_tools()
    if Path(f"/sys/class/net/{lan.bridge}").exists():
        raise ConfigError(
            f"network bridge {lan.bridge} exists already: another WAN devnet in this "
            "directory is up (rrn devnet down --dir ... removes it)"
        )
    _ip("link", "add", lan.bridge, "type", "bridge")
    _ip("addr", "add", f"{lan.gateway}/24", "dev", lan.bridge)
    _ip("link", "set", lan.bridge, "up")
    for k in range(1, nodes + 1):
        ns = lan.ns(k)
        _ip("netns", "add", ns)
        _ip("link", "add", lan.veth(k), "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", lan.veth(k), "master", lan.bridge, "up")
        _ip("-n", ns, "addr", "add", f"{lan.ip(k)}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "route", "add", "default", "via", lan.gateway)
        _etc(lan, k, nodes)
        if k in kbit_s:
            limit(lan, k, kbit_s[k])


def _etc(lan: Lan, k: int, nodes: int) -> None:
    etc = _ETC / lan.ns(k)
    etc.mkdir(parents=True, exist_ok=True)
    names = "".join(f"{lan.ip(j)}\t{lan.ns(j)}\n" for j in range(1, nodes + 1))
    (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n{lan.gateway}\t{lan.bridge}\n{names}")
    (etc / "resolv.conf").write_text("# no DNS inside a WAN devnet\n")


def limit(lan: Lan, k: int, kbit_s: float) -> None:
    """Node k's link to the others carries at most `kbit_s` each way (tbf)."""
    rate = ["root", "tbf", "rate", f"{kbit_s:g}kbit", "burst", "32kbit", "latency", "2s"]
    for prefix, dev in (([], lan.veth(k)), (lan.enter(k), "eth0")):
        done = subprocess.run(
            [*prefix, _tool("tc"), "qdisc", "replace", "dev", dev, *rate],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ConfigError(f"tc on {dev} of node {k}: {done.stderr.strip()}")


def remove_lan(lan: Lan, nodes: int) -> None:
    """Delete the namespaces (their veths go with them) and the bridge; what is gone
    already is fine."""
    ip = shutil.which("ip")
    if ip is None:
        return
    for k in range(1, nodes + 1):
        subprocess.run([ip, "netns", "del", lan.ns(k)], capture_output=True, check=False)
        shutil.rmtree(_ETC / lan.ns(k), ignore_errors=True)
    subprocess.run([ip, "link", "del", lan.bridge], capture_output=True, check=False)
