"""Integrator accounts: who may read this node's feeds, each with its own password.

Owns HOME/keys/integrators/NAME.json (0600): an integrator's name, password, whether
it connects from another host over TLS, and when it was added. `rrn integrator
add|list|revoke` (node/cli/integrators.py) manages them; the embedded server's
configuration (node/natsd/conf.py) gives each one a user of its own in the
integrators' account, with the least it needs: read the feeds through consumers
named after it, answers only to its own inbox prefix `_INBOX_<name>`.

A home made before integrator accounts has keys/integrator.pass: it is read as the
integrator `integrator` (revoking it deletes the file).
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import Final

import msgspec

from rrn.node.home.keyfiles import read_secret, write_secret
from rrn.protocol.errors import ConfigError

__all__ = [
    "Integrator",
    "add_integrator",
    "inbox_prefix",
    "load_integrators",
    "revoke_integrator",
]

#: A NATS subject token, and a consumer name, as well as a file name.
_NAME: Final = re.compile(r"[a-z][a-z0-9-]{1,31}")
_LEGACY: Final = "integrator"
#: Names the node's own users or consumers use in the integrators' account.
_RESERVED: Final = frozenset({"rrn", "rrn-stream", "rrn-sys", "alertmanager"})


class Integrator(msgspec.Struct, frozen=True, kw_only=True):
    """One integrator's account."""

    name: str
    password: str
    #: It connects from another host, over TLS ([nats] tls).
    tls: bool = False
    created_ms: int = 0


def inbox_prefix(name: str) -> str:
    """Where the server answers this integrator, and the only place it may listen."""
    return f"_INBOX_{name}"


def _dir(keys_dir: Path) -> Path:
    return keys_dir / "integrators"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"integrator name {name!r}: use 2-32 lowercase letters, digits and '-', "
            "starting with a letter"
        )
    if name in _RESERVED or name.startswith("webhook-"):
        raise ConfigError(f"integrator name {name!r} is reserved for the node's own use")
    return name


def load_integrators(keys_dir: Path) -> list[Integrator]:
    """Every integrator account of this home, by name."""
    found: dict[str, Integrator] = {}
    legacy = keys_dir / f"{_LEGACY}.pass"
    if legacy.is_file():
        created = int(legacy.stat().st_mtime * 1000)
        password = read_secret(legacy).decode().strip()
        found[_LEGACY] = Integrator(name=_LEGACY, password=password, created_ms=created)
    directory = _dir(keys_dir)
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            made = msgspec.json.decode(read_secret(path), type=Integrator)
        except msgspec.DecodeError as exc:
            raise ConfigError(f"{path}: not an integrator account ({exc})") from exc
        if made.name != path.stem:
            raise ConfigError(f"{path}: names the integrator {made.name!r}, not {path.stem!r}")
        found[path.stem] = made
    return sorted(found.values(), key=lambda i: i.name)


def add_integrator(keys_dir: Path, name: str, *, tls: bool) -> Integrator:
    """A new integrator account with a fresh password (ConfigError if it exists)."""
    check_name(name)
    if any(i.name == name for i in load_integrators(keys_dir)):
        raise ConfigError(f"integrator {name!r} exists; revoke it first to make it anew")
    directory = _dir(keys_dir)
    directory.mkdir(mode=0o700, exist_ok=True)
    made = Integrator(
        name=name,
        password=secrets.token_urlsafe(24),
        tls=tls,
        created_ms=int(time.time() * 1000),
    )
    write_secret(directory / f"{name}.json", msgspec.json.encode(made))
    return made


def revoke_integrator(keys_dir: Path, name: str) -> None:
    """Delete an integrator's account (ConfigError if there is none)."""
    paths = [_dir(keys_dir) / f"{name}.json", keys_dir / f"{_LEGACY}.pass"]
    found = [p for p in paths[: 2 if name == _LEGACY else 1] if p.is_file()]
    if not found:
        raise ConfigError(f"no integrator {name!r} (see: rrn integrator list)")
    for path in found:
        path.unlink()
