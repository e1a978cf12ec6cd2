"""Backups that cannot fork: a consistent copy of a node home, and putting one back.

Owns the backup archive: a gzip'd tar of the store (copied with sqlite's online
backup, so the daemon can run meanwhile), the key files as they are at rest
(still under their passphrase if `rrn key protect` was used), config.toml, and a
manifest. Restoring marks the store as restored: the daemon then signs nothing of
its own until peers confirm it holds its whole own chain
(node/peering/restored.py), since a store from yesterday does not know what the
node signed since, and signing again at those positions would fork its chain.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Final

import msgspec

from rrn.node.home.layout import Home, open_home
from rrn.node.peering.restored import RESTORED_META
from rrn.node.store.audit import verify_store
from rrn.node.store.db import open_store
from rrn.protocol.errors import ConfigError

__all__ = ["BackupInfo", "restore_backup", "write_backup"]

FORMAT: Final = "rrn/backup/v1"
MANIFEST: Final = "rrn-backup.json"
_FILES: Final = ("config.toml", "store.db")
_CONSOLE: Final = "console.db"


class BackupInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a backup holds."""

    format: str
    org: str
    network: str
    created_ms: int
    #: The last seq of this node's own chain in the copy, by key epoch.
    own_heads: dict[str, int]
    events: int
    files: list[str]


async def write_backup(home: Home, out: Path) -> BackupInfo:
    """Write a consistent backup of `home` to `out` (0600; replaced atomically)."""
    if out.exists() and out.is_dir():
        raise ConfigError(f"{out} is a directory: give the backup file's path")
    with tempfile.TemporaryDirectory(prefix=".rrn-backup-", dir=out.parent) as tmp:
        copy = Path(tmp) / "store.db"
        await asyncio.to_thread(_copy_store, home.store_path, copy)
        people = Path(tmp) / _CONSOLE
        with_people = home.console_db.is_file()  # the console's people: optional
        if with_people:
            await asyncio.to_thread(_copy_store, home.console_db, people)
        info = _describe(home, copy)
        partial = Path(tmp) / "backup.tar.gz"
        with tarfile.open(partial, "w:gz") as tar:
            _add_bytes(tar, MANIFEST, msgspec.json.encode(info))
            tar.add(home.config_path, "config.toml")
            tar.add(copy, "store.db")
            if with_people:
                tar.add(people, _CONSOLE)
            for key in sorted(home.keys_dir.iterdir()):
                if key.is_file():
                    tar.add(key, f"keys/{key.name}")
        partial.chmod(0o600)
        os.replace(partial, out)
    files = [*_FILES, *([_CONSOLE] if with_people else []), "keys/"]
    return msgspec.structs.replace(info, files=files)


def _copy_store(source: Path, target: Path) -> None:
    """sqlite's online backup: a consistent copy while the daemon writes."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _describe(home: Home, store: Path) -> BackupInfo:
    org = home.config.node.org
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        net = db.execute("SELECT value FROM meta WHERE key = 'net'").fetchone()
        heads = db.execute("SELECT epoch, seq FROM heads WHERE origin = ?", (org,)).fetchall()
        events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    return BackupInfo(
        format=FORMAT,
        org=org,
        network=bytes(net[0]).hex() if net else "",
        created_ms=int(time.time() * 1000),
        own_heads={str(e): int(s) for e, s in heads},
        events=int(events),
        files=[],
    )


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    member.mode = 0o600
    tar.addfile(member, io.BytesIO(data))


async def restore_backup(archive: Path, path: Path) -> BackupInfo:
    """Put the backup in `archive` in place as the home at `path` (which must not exist
    or be empty), verify its store, and mark it restored."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(
            f"{path} is not empty: move the current home aside first (mv {path} {path}.old)"
        )
    info, members = _read(archive)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.restore-", dir=path.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in members:
                _extract(tar, member, staging)
        for sub in ("nats", "run", "logs"):
            (staging / sub).mkdir(mode=0o700, exist_ok=True)
        await _check_and_mark(staging, info)
        if path.exists():
            path.rmdir()
        os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info


async def _check_and_mark(staging: Path, info: BackupInfo) -> None:
    """The restored store must verify and belong to the member the manifest names; then
    it is marked, so the daemon waits for its peers before it signs."""
    report = await verify_store(staging / "store.db")
    if not report.ok:
        raise ConfigError(f"the backup's store does not verify: {report.first_bad}")
    home = open_home(staging)
    if home.config.node.org != info.org:
        raise ConfigError("the backup's manifest and config name different members")
    async with open_store(home.store_path) as store:
        mark = {"at_ms": int(time.time() * 1000), "own_heads": info.own_heads}
        await store.set_meta(RESTORED_META, json.dumps(mark).encode())


def _read(archive: Path) -> tuple[BackupInfo, list[tarfile.TarInfo]]:
    """The manifest and the members to extract: only the names a backup holds."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            manifest = tar.extractfile(MANIFEST) if MANIFEST in tar.getnames() else None
            data = manifest.read() if manifest is not None else b""
    except (OSError, tarfile.TarError) as exc:
        raise ConfigError(f"{archive} is not an rrn backup: {exc}") from exc
    try:
        info = msgspec.json.decode(data, type=BackupInfo)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{archive} is not an rrn backup (no readable manifest)") from exc
    if info.format != FORMAT:
        raise ConfigError(f"{archive} is a backup of format {info.format!r}, not {FORMAT!r}")
    wanted = []
    for m in members:
        if m.name == MANIFEST:
            continue
        if not _allowed(m):
            raise ConfigError(f"{archive} holds {m.name!r}, which no rrn backup holds")
        wanted.append(m)
    names = {m.name for m in wanted}
    if not set(_FILES) <= names or not any(n.startswith("keys/") for n in names):
        raise ConfigError(f"{archive} lacks the store, the config or the keys")
    return info, wanted


def _allowed(m: tarfile.TarInfo) -> bool:
    if not m.isfile():
        return False
    if m.name in (*_FILES, _CONSOLE):
        return True
    folder, _, name = m.name.partition("/")
    return folder == "keys" and bool(name) and "/" not in name and not name.startswith(".")


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, into: Path) -> None:
    source = tar.extractfile(member)
    assert source is not None
    target = into / member.name
    target.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        shutil.copyfileobj(source, f)
    if member.name == "config.toml" or member.name.endswith((".crt", ".pub")):
        target.chmod(0o644)
