"""Logging setup of the daemon: HOME/logs/rrn.log (rotated) and the console.

Owns handlers and format. What is logged is decided where it happens, under one
rule: ids, org names, kinds and reasons only, never anything from a payload.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

__all__ = ["quiet_tls_eof", "setup_logging"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_dir: Path, *, verbose: bool = False, console: bool = True) -> None:
    """Send rrn's logs to a rotating file in `log_dir` and, optionally, stderr."""
    # Here: only `rrn run` logs to files, and the import cost every other command 4 ms.
    from logging.handlers import RotatingFileHandler  # noqa: PLC0415

    log_dir.mkdir(mode=0o700, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    file_handler = RotatingFileHandler(
        log_dir / "rrn.log", maxBytes=10 * 1024 * 1024, backupCount=5
    )
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(file_handler)
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(stream)
    # nats-py logs reconnect noise at ERROR with server details; keep it at WARNING.
    logging.getLogger("nats").setLevel(logging.WARNING)


class _TlsEofNoise(logging.Filter):
    """asyncio warns on every TLS connection nats-py closes (its protocol returns true
    from eof_received, which TLS ignores): noise on every command against a TLS port."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "eof_received()" not in record.getMessage()


_TLS_EOF_NOISE = _TlsEofNoise()


def quiet_tls_eof() -> None:
    """Drop asyncio's warning about eof_received on TLS connections (harmless); once,
    however often it is called."""
    logging.getLogger("asyncio").addFilter(_TLS_EOF_NOISE)
