"""What this install runs: rrn, the protocol, nats-server, the tz database, the lock.

Owns `installed()` (what `rrn version` and `rrn status` report) and `pin_tz_database()`:
every node must compute the same shifts and escalation steps from the same signed
declarations, so rrn reads time zones from the `tzdata` package its lock pins, never
from the host's database, which differs from host to host.
"""

from __future__ import annotations

import hashlib
import re
import sys
import zoneinfo
from pathlib import Path
from typing import Final

import msgspec

__all__ = [
    "Versions",
    "announced",
    "installed",
    "lock_path",
    "pin_tz_database",
    "rrn_version",
    "tz_database",
]


def _version(package: str) -> str | None:
    """The installed version of a distribution, None if none is installed.

    importlib.metadata is loaded here, not with this module: it costs every CLI
    command ~15 ms to import (main pins the tz database from this module)."""
    from importlib import metadata  # noqa: PLC0415

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def rrn_version() -> str:
    """The installed version of rrn."""
    return _version("rapid-response-network") or "0+unknown"


_PIN: Final = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", re.M)


class Versions(msgspec.Struct, frozen=True, kw_only=True):
    """`rrn version --json`."""

    rrn: str
    protocol: int
    python: str
    nats_server: str
    #: The IANA tz database release rrn computes times with, and where it comes from.
    tz_database: str
    tz_source: str
    #: SHA-256 of the runtime lock this install ships (deploy/lock/runtime.txt), or "".
    lock_sha256: str = ""
    #: Installed packages whose version differs from the lock's pin ("name have≠pinned").
    lock_differs: list[str] = []


def pin_tz_database() -> None:
    """Read zones from the pinned `tzdata` package from now on (call before any zone)."""
    zoneinfo.reset_tzpath(to=[])


def tz_database() -> tuple[str, str]:
    """(release, source) of the tz database zoneinfo reads."""
    for folder in zoneinfo.TZPATH:
        release = _release(Path(folder) / "tzdata.zi")
        if release:
            return release, f"the host's {folder}"
    # Loaded here, not with the module: every CLI command pins the tz database
    # (`pin_tz_database`) and few ask which it is.
    from importlib.resources import files  # noqa: PLC0415

    try:
        release = _release(Path(str(files("tzdata") / "zoneinfo" / "tzdata.zi")))
    except ModuleNotFoundError:
        return "unknown", "none found"
    return release or "unknown", f"the tzdata package {_version('tzdata') or 'unknown'} (pinned)"


def _release(zi: Path) -> str:
    try:
        with zi.open() as f:
            first = f.readline()
    except OSError:
        return ""
    return first.removeprefix("# version").strip() if first.startswith("# version") else ""


def lock_path() -> Path | None:
    """The runtime lock: inside the wheel (rrn/lock/runtime.txt), or in a checkout."""
    node = Path(__file__).resolve().parent.parent
    for candidate in (
        node.parent / "lock" / "runtime.txt",
        node.parent / "deploy/lock/runtime.txt",
    ):
        if candidate.is_file():
            return candidate
    return None


def installed() -> Versions:
    from rrn.node.natsd.binary import server_version  # noqa: PLC0415 (see tz_database)
    from rrn.protocol.envelope import PROTOCOL_VERSION  # noqa: PLC0415

    release, source = tz_database()
    lock = lock_path()
    digest, differs = "", []
    if lock is not None:
        text = lock.read_bytes()
        digest = hashlib.sha256(text).hexdigest()
        for name, pinned in _PIN.findall(text.decode()):
            have = _version(name)
            if have is None:
                continue  # a pin for another platform (its marker does not apply here)
            if have != pinned:
                differs.append(f"{name} {have}≠{pinned}")
    return Versions(
        rrn=rrn_version(),
        protocol=PROTOCOL_VERSION,
        python=".".join(map(str, sys.version_info[:3])),
        nats_server=server_version(),
        tz_database=release,
        tz_source=source,
        lock_sha256=digest,
        lock_differs=differs,
    )


def announced(v: Versions) -> tuple[tuple[str, int, str, str, str], str]:
    """What peers are told this node runs (PROTOCOL.md 10.1a), and its tz database."""
    told = (v.rrn, v.protocol, v.nats_server, v.tz_database, v.lock_sha256)
    return told, v.tz_database
