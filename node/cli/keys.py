"""`rrn key …`: protecting the node's private keys, and rotating them.

Owns the key subcommands. `protect` works on the files, with the daemon
stopped; the passphrase in force is read from the file RRN_PASSPHRASE_FILE
names, a new one from --passphrase-file or typed twice. `rotate` asks the
running daemon, which holds the keys (node/ops/keys.py).
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import Any

from rrn.node.cli.common import Parser, get_home, home_arg, json_arg, show, stopped
from rrn.node.cli.documents import KeysProtected
from rrn.node.control.client import ask
from rrn.node.home.keyfiles import PASSPHRASE_ENV, passphrase_from_env
from rrn.node.home.keys import protect_keys
from rrn.node.ops.keys import RotatedInfo
from rrn.protocol.errors import ConfigError

__all__ = ["add_key_parsers"]


def add_key_parsers(sub: Any) -> None:
    """Register `rrn key`."""
    key = sub.add_parser("key", help="protect or rotate the node's private keys")
    inner = key.add_subparsers(dest="key_command", required=True, parser_class=Parser)
    p = inner.add_parser(
        "protect",
        help="encrypt the signing, sealing and link keys with a passphrase (or change it)",
    )
    home_arg(p)
    json_arg(p)
    p.add_argument(
        "--passphrase-file",
        type=Path,
        help="read the new passphrase from this file (default: type it twice)",
    )
    p.add_argument("--remove", action="store_true", help="store the keys unencrypted again")
    p.set_defaults(func=cmd_protect)
    p = inner.add_parser(
        "rotate",
        help="move to new signing and sealing keys, announced in this node's chain "
        "(signed by the old key and the new); the daemon must be running",
    )
    home_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_rotate)


def cmd_protect(args: argparse.Namespace) -> int:
    home = get_home(args)
    old = passphrase_from_env()
    if args.remove:
        new = None
    elif args.passphrase_file is not None:
        try:
            new = args.passphrase_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read {args.passphrase_file}: {exc.strerror}") from exc
    else:
        first = getpass.getpass("new passphrase: ")
        if first != getpass.getpass("again: "):
            raise ConfigError("the two passphrases differ; nothing changed")
        new = first.encode()
    with stopped(home, "rrn key protect", "the daemon holds the keys it loaded"):
        count = protect_keys(home.keys_dir, old, new)
    done = KeysProtected(keys=count, protected=new is not None)
    if new is None:
        return show(
            args, done, lambda: f"{count} private keys stored unencrypted (file mode 0600 only)"
        )
    return show(
        args,
        done,
        lambda: (
            f"{count} private keys encrypted; start the node with {PASSPHRASE_ENV} naming "
            "a file that holds the passphrase (e.g. a systemd credential)"
        ),
    )


def cmd_rotate(args: argparse.Namespace) -> int:
    home = get_home(args)
    info = ask(home, "key.rotate", {}, RotatedInfo)

    def text() -> str:
        new, old = info.epoch, info.from_epoch
        lines = [
            f"{info.org} now signs with key epoch {new}: rotation {info.event_id[:12]} ends "
            f"epoch {old} at seq {info.seq}, and members seal to the new key as soon as they "
            f"hold it. Back up keys/sign-{new}.pem and keys/enc-{new}.pem."
        ]
        if info.roster_epoch != new:
            lines.append(
                f"Roster approvals stay signed with epoch {info.roster_epoch} (keep "
                f"keys/sign-{info.roster_epoch}.pem) until a roster version lists the new key "
                "(docs/OPERATIONS.md, 'Rotating keys')."
            )
        return " ".join(lines)

    return show(args, info, text)
