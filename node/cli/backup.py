"""`rrn backup` and `rrn restore`: a consistent copy of a node home, and putting it back
(node/ops/backup.py)."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path
from typing import Any

from rrn.node.cli.common import get_home, home_arg, json_arg, run, show
from rrn.node.ops.backup import BackupInfo, restore_backup, write_backup
from rrn.protocol.errors import ConfigError

__all__ = ["add_backup_parsers"]


def add_backup_parsers(sub: Any) -> None:
    p = sub.add_parser("backup", help="copy the store and keys into one file (the daemon may run)")
    home_arg(p)
    json_arg(p)
    p.add_argument("--out", type=Path, required=True, help="the backup file to write")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser(
        "restore",
        help="make a node home from a backup (the node then signs nothing until peers "
        "confirm its own chain)",
    )
    home_arg(p)
    json_arg(p)
    p.add_argument("file", type=Path, help="a file written by rrn backup")
    p.set_defaults(func=cmd_restore)


def _text(what: str, info: BackupInfo) -> str:
    at = datetime.datetime.fromtimestamp(info.created_ms / 1000, datetime.UTC)
    heads = ", ".join(f"epoch {e} at seq {s}" for e, s in sorted(info.own_heads.items()))
    return (
        f"{what} {info.org} of network {info.network[:16]} as of {at:%Y-%m-%d %H:%M} UTC: "
        f"{info.events} events, own chain {heads or 'empty'}"
    )


def cmd_backup(args: argparse.Namespace) -> int:
    home = get_home(args)
    info = run(write_backup(home, args.out))
    return show(args, info, lambda: _text(f"wrote {args.out}: backup of", info))


def cmd_restore(args: argparse.Namespace) -> int:
    if args.home is None:
        raise ConfigError("--home is required (or set RRN_HOME): where to restore the node")
    if not args.file.is_file():
        raise ConfigError(f"no file at {args.file}")
    info = run(restore_backup(args.file, Path(args.home)))
    return show(
        args,
        info,
        lambda: (
            _text(f"restored into {args.home}:", info)
            + "\nstart it: it signs nothing until more than half of the other members have "
            "confirmed it holds its whole own chain (rrn status says how many)"
        ),
    )
