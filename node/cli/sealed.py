"""What the alert and defender commands seal to their daemon and open from it.

Owns reading an alert's details from a file or stdin, sealing them (or a
defender's identity) to the running daemon, and the one-request key a sealed
reply is opened with. Only the commands that seal load this module, and through
it the AEAD and X25519 code: `rrn alert list` and every other command start
without them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.node.control.client import daemon_info
from rrn.node.control.transit import open_reply, seal_request
from rrn.node.home.layout import Home
from rrn.protocol.encoding import redact
from rrn.protocol.errors import ConfigError
from rrn.protocol.sealing import DETAIL_FIELDS, Details, decode_details, encode_details

__all__ = ["OneTimeKey", "opened_details", "read_details", "seal_to_daemon"]


def seal_to_daemon(home: Home, plaintext: bytes) -> bytes:
    """`plaintext` sealed to the daemon of `home`: never on NATS in the clear."""
    return seal_request(plaintext, daemon_info(home))


def read_details(home: Home, source: str) -> bytes:
    """An alert's details from a file or stdin ("-"), checked and sealed to the daemon."""
    return seal_to_daemon(home, encode_details(_details(source)))


class OneTimeKey:
    """The key one request's sealed reply is opened with, used once and forgotten."""

    def __init__(self) -> None:
        self._key = X25519PrivateKey.generate()
        self.public: bytes = self._key.public_key().public_bytes_raw()

    def open(self, home: Home, sealed: bytes) -> bytes:
        """A reply the daemon of `home` sealed to this key (ControlError if it does not open)."""
        net = bytes.fromhex(str(daemon_info(home)["net"]))
        return open_reply(sealed, self._key, home.config.node.org, net)


def opened_details(home: Home, sealed: bytes, key: OneTimeKey) -> dict[str, str]:
    """An alert's details the daemon resealed to `key`, as fields."""
    return decode_details(key.open(home, sealed)).fields()


class _StrictDetails(Details, frozen=True, forbid_unknown_fields=True):
    """Details as typed by a person: a misspelt field is an error, not dropped."""


def _details(source: str) -> Details:
    """Sealed details from a JSON file or stdin; errors never repeat the text."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read --details {source}: {exc.strerror}") from exc
    try:
        details = Details(**msgspec.structs.asdict(msgspec.json.decode(text, type=_StrictDetails)))
    except msgspec.ValidationError as exc:
        raise ConfigError(f"--details: {redact(exc)} (fields: {', '.join(DETAIL_FIELDS)})") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError("--details is not a JSON object") from exc
    if not details.fields():
        raise ConfigError(f"--details is empty: give one of {', '.join(DETAIL_FIELDS)}")
    return details
