"""`rrn log verify|export|import`: audit the signed history, and carry it offline."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from rrn.node.cli.common import (
    Parser,
    get_home,
    home_arg,
    json_arg,
    run,
    show,
    stopped,
)
from rrn.node.cli.documents import LogExported, LogVerified
from rrn.node.control.channel import to_json
from rrn.node.ops.log import import_envelopes, read_export
from rrn.node.store.audit import PROGRESS_EVERY, export_lines, verify_store
from rrn.protocol.errors import ConfigError

__all__ = ["add_log_parsers"]


def add_log_parsers(log: argparse.ArgumentParser) -> None:
    sub = log.add_subparsers(dest="log_command", required=True, parser_class=Parser)
    p = sub.add_parser("verify", help="re-verify every stored event and chain link")
    home_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_log_verify)
    p = sub.add_parser("export", help="signed events as JSON lines")
    home_arg(p)
    json_arg(p)
    p.add_argument("--out", type=Path, help="write to this file (default: stdout)")
    p.set_defaults(func=cmd_log_export)
    p = sub.add_parser("import", help="verify and store events from an export (daemon stopped)")
    home_arg(p)
    json_arg(p)
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_log_import)


def _progress(done: str) -> Callable[[int], None]:
    """Progress of long work over a large store, on stderr."""
    return lambda n: print(f"{done} {n} events…", file=sys.stderr, flush=True)


def cmd_log_verify(args: argparse.Namespace) -> int:
    home = get_home(args)
    report = run(verify_store(home.store_path, progress=_progress("verified")))
    if args.json:
        print(to_json(LogVerified(**report.__dict__, ok=report.ok)))
    elif report.ok:
        print(
            f"ok: {report.events} events in {report.chains} chain(s) and {report.rosters} "
            "roster version(s) verified"
        )
    else:
        print(f"FAILED after {report.events} events: {report.first_bad}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_log_export(args: argparse.Namespace) -> int:
    home = get_home(args)

    async def export() -> int:
        n = 0
        with contextlib.ExitStack() as stack:
            out = sys.stdout
            if args.out is not None:
                fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                out = stack.enter_context(os.fdopen(fd, "w"))
            report = _progress("exported")
            async for line in export_lines(home.store_path):
                out.write(line + "\n")
                n += 1
                if n % PROGRESS_EVERY == 0:
                    report(n)
        return n

    n = run(export())
    if args.out is not None:
        show(
            args,
            LogExported(lines=n, file=str(args.out)),
            lambda: f"exported {n} line(s) to {args.out}",
        )
    return 0


def _imported(n: int) -> None:
    print(f"  {n} events read and settled…", file=sys.stderr, flush=True)


def cmd_log_import(args: argparse.Namespace) -> int:
    home = get_home(args)
    if not args.file.is_file():
        raise ConfigError(f"no file at {args.file}")
    with stopped(home, "rrn log import", "an import writes to the store it uses"):
        report = run(import_envelopes(home, read_export(args.file), progress=_imported))
    rejected = ", ".join(f"{n} {r}" for r, n in sorted(report.rejected.items())) or "none"
    show(
        args,
        report,
        lambda: (
            f"read {report.read} events: {report.appended} new, {report.duplicates} "
            f"already held, {report.held} waiting for earlier events; rejected: {rejected}"
        ),
    )
    return 1 if report.rejected else 0
