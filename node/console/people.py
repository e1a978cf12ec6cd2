"""The organisation's people who use the console: accounts, roles, passwords, TOTP.

Owns HOME/console.db's `people` table: `rrn user add|list|disable|reset` write
it (the daemon may be running: sqlite in WAL mode), the console reads it at each
login. Passwords are kept as Argon2id PHC strings (memory-hard, from
cryptography); a person's TOTP secret (RFC 6238) is kept in the clear beside it,
as any TOTP server must. Nothing here ever holds a defender's details.
"""

from __future__ import annotations

import base64
import enum
import re
import secrets
import sqlite3
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidKey, InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from rrn.protocol.errors import ConfigError

__all__ = [
    "LANGUAGES",
    "MIN_PASSWORD",
    "People",
    "Person",
    "Role",
    "hash_password",
    "open_db",
    "totp_uri",
    "verify_password",
]

#: The console's languages (node/console/locale/).
LANGUAGES: Final = ("en", "es", "fr", "pt")
MIN_PASSWORD: Final = 12
_NAME: Final = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")
#: Argon2id with 64 MiB and 3 passes (RFC 9106's second option, one lane: OWASP's
#: advice is met several times over).
_KDF_MEMORY_KIB: Final = 64 * 1024
#: One derivation at a time: OpenSSL's Argon2 (cryptography 50) deadlocks when two
#: run at once with several lanes, and 64 MiB each is enough memory to spend.
_KDF_LOCK: Final = threading.Lock()
_TOTP_STEP: Final = 30

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS people(
  name TEXT PRIMARY KEY, role TEXT NOT NULL, pw TEXT NOT NULL,
  must_change INTEGER NOT NULL, totp TEXT, totp_last INTEGER NOT NULL DEFAULT 0,
  disabled INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
  locked_until_ms INTEGER NOT NULL DEFAULT 0, lang TEXT NOT NULL DEFAULT 'en',
  tz TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(
  id TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL,
  created_ms INTEGER NOT NULL, seen_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS failures(
  name TEXT NOT NULL, address TEXT NOT NULL, count INTEGER NOT NULL,
  locked_until_ms INTEGER NOT NULL, PRIMARY KEY (name, address));
CREATE TABLE IF NOT EXISTS actions(
  at_ms INTEGER NOT NULL, name TEXT NOT NULL, action TEXT NOT NULL, alert TEXT);
"""


class Role(enum.StrEnum):
    """What a person may do in the console (docs/CONSOLE.md has the table)."""

    ADMIN = "admin"
    COORDINATOR = "coordinator"
    RESPONDER = "responder"
    LIAISON = "liaison"
    VIEWER = "viewer"


@dataclass(frozen=True)
class Person:
    name: str
    role: Role
    must_change: bool
    totp: bool
    disabled: bool
    locked_until_ms: int
    lang: str
    tz: str
    created_ms: int


def open_db(path: Path) -> sqlite3.Connection:
    """HOME/console.db, made 0600 on first use."""
    path.touch(mode=0o600, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db


def hash_password(password: str) -> str:
    kdf = Argon2id(
        salt=secrets.token_bytes(16), length=32, iterations=3, lanes=1, memory_cost=_KDF_MEMORY_KIB
    )
    with _KDF_LOCK:
        return kdf.derive_phc_encoded(password.encode())


def verify_password(password: str, phc: str) -> bool:
    try:
        with _KDF_LOCK:
            Argon2id.verify_phc_encoded(password.encode(), phc)
    except (InvalidKey, ValueError, MemoryError):
        return False
    return True


def _totp(secret: str) -> TOTP:
    # SHA-1 is what authenticator apps compute (RFC 6238 default), HMAC keeps it sound.
    return TOTP(base64.b32decode(secret), 6, hashes.SHA1(), _TOTP_STEP, enforce_key_length=False)  # noqa: S303


def totp_code(secret: str, at_s: float) -> str:
    """The code an authenticator app shows at `at_s` (tests use it as a person's phone)."""
    return _totp(secret).generate(int(at_s)).decode()


def totp_uri(secret: str, name: str, issuer: str) -> str:
    """The otpauth:// address an authenticator app takes."""
    return _totp(secret).get_provisioning_uri(name, issuer)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"user name {name!r} is not valid: 1-32 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter"
        )
    return name


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD} characters")


class People:
    """The people table (and the TOTP check, which must remember the last step used)."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def get(self, name: str) -> Person | None:
        row = self._db.execute(
            "SELECT name, role, must_change, totp IS NOT NULL, disabled, MAX(locked_until_ms, "
            "(SELECT IFNULL(MAX(f.locked_until_ms), 0) FROM failures f WHERE f.name = ?)), "
            "lang, tz, created_ms FROM people WHERE name = ?",
            (name, name),
        ).fetchone()
        if row is None:
            return None
        return Person(row[0], Role(row[1]), bool(row[2]), bool(row[3]), bool(row[4]), *row[5:])

    def all(self) -> list[Person]:
        names = [r[0] for r in self._db.execute("SELECT name FROM people ORDER BY name")]
        return [p for n in names if (p := self.get(n)) is not None]

    def add(self, name: str, role: Role, now_ms: int) -> str:
        """A new person with a one-time password, returned (they choose their own at login)."""
        check_name(name)
        if self.get(name) is not None:
            raise ConfigError(
                f"user {name} exists already (rrn user reset {name} for a new password)"
            )
        once = secrets.token_urlsafe(12)
        self._db.execute(
            "INSERT INTO people(name, role, pw, must_change, created_ms) VALUES (?, ?, ?, 1, ?)",
            (name, str(role), hash_password(once), now_ms),
        )
        return once

    def reset(self, name: str, *, totp: bool) -> str:
        """A new one-time password (and, with `totp`, no second factor until set again);
        the person's sessions end."""
        self._need(name)
        once = secrets.token_urlsafe(12)
        self._db.execute(
            "UPDATE people SET pw = ?, must_change = 1, failures = 0, locked_until_ms = 0"
            + (", totp = NULL" if totp else "")
            + " WHERE name = ?",
            (hash_password(once), name),
        )
        self._db.execute("DELETE FROM failures WHERE name = ?", (name,))
        self.end_sessions(name)
        return once

    def set_disabled(self, name: str, disabled: bool) -> None:
        self._need(name)
        self._db.execute("UPDATE people SET disabled = ? WHERE name = ?", (int(disabled), name))
        self.end_sessions(name)

    def set_role(self, name: str, role: Role) -> None:
        self._need(name)
        self._db.execute("UPDATE people SET role = ? WHERE name = ?", (str(role), name))

    def end_sessions(self, name: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE name = ?", (name,))

    def password_hash(self, name: str) -> str | None:
        row = self._db.execute("SELECT pw FROM people WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_password(self, name: str, phc: str) -> None:
        self._db.execute("UPDATE people SET pw = ?, must_change = 0 WHERE name = ?", (phc, name))

    def locked(self, name: str, address: str, now_ms: int) -> bool:
        """Whether logins of `name` from `address` wait (or the whole account does)."""
        row = self._db.execute(
            "SELECT MAX(p.locked_until_ms, IFNULL((SELECT f.locked_until_ms FROM failures f "
            "WHERE f.name = p.name AND f.address = ?), 0)) FROM people p WHERE p.name = ?",
            (address, name),
        ).fetchone()
        return row is not None and row[0] > now_ms

    def failed(self, name: str, address: str, now_ms: int, max_failures: int, lock_ms: int) -> bool:
        """Count a wrong password from `address`; True when that locks a login.

        `max_failures` in a row from one address lock that address out of the account
        (someone elsewhere, the person on duty, still gets in); four times as many
        from anywhere lock the account itself.
        """
        self._db.execute(
            "INSERT INTO failures(name, address, count, locked_until_ms) VALUES (?, ?, 1, 0) "
            "ON CONFLICT(name, address) DO UPDATE SET count = count + 1",
            (name, address),
        )
        self._db.execute("UPDATE people SET failures = failures + 1 WHERE name = ?", (name,))
        here = self._db.execute(
            "SELECT count FROM failures WHERE name = ? AND address = ?", (name, address)
        ).fetchone()[0]
        total = self._db.execute("SELECT failures FROM people WHERE name = ?", (name,)).fetchone()
        locked = False
        if here >= max_failures:
            self._db.execute(
                "UPDATE failures SET count = 0, locked_until_ms = ? WHERE name = ? AND address = ?",
                (now_ms + lock_ms, name, address),
            )
            locked = True
        if total is not None and total[0] >= 4 * max_failures:
            self._db.execute(
                "UPDATE people SET failures = 0, locked_until_ms = ? WHERE name = ?",
                (now_ms + lock_ms, name),
            )
            locked = True
        rows = self._db.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
        if rows > 10_000:  # bounded: forget the oldest unlocked rows
            self._db.execute(
                "DELETE FROM failures WHERE locked_until_ms < ? AND rowid IN "
                "(SELECT rowid FROM failures ORDER BY rowid LIMIT 1000)",
                (now_ms,),
            )
        return locked

    def succeeded(self, name: str, address: str) -> None:
        self._db.execute("UPDATE people SET failures = 0 WHERE name = ?", (name,))
        self._db.execute("DELETE FROM failures WHERE name = ? AND address = ?", (name, address))

    def set_prefs(self, name: str, lang: str, tz: str) -> None:
        self._db.execute("UPDATE people SET lang = ?, tz = ? WHERE name = ?", (lang, tz, name))

    def new_totp_secret(self) -> str:
        return base64.b32encode(secrets.token_bytes(20)).decode()

    def set_totp(self, name: str, secret: str | None) -> None:
        # totp_last stays: the code that turned it on must not log in again.
        self._db.execute("UPDATE people SET totp = ? WHERE name = ?", (secret, name))

    def check_totp(self, name: str, code: str, now_s: float, secret: str | None = None) -> bool:
        """Whether `code` is this person's current (or adjacent) code, never one used before."""
        row = self._db.execute(
            "SELECT totp, totp_last FROM people WHERE name = ?", (name,)
        ).fetchone()
        secret = secret or (row[0] if row else None)
        if not secret or not re.fullmatch(r"[0-9]{6}", code):
            return False
        step = int(now_s) // _TOTP_STEP
        for s in (step, step - 1, step + 1):
            if s <= (row[1] if row else 0):
                continue
            try:
                _totp(secret).verify(code.encode(), s * _TOTP_STEP)
            except (InvalidToken, InvalidSignature, struct.error):
                continue
            self._db.execute("UPDATE people SET totp_last = ? WHERE name = ?", (s, name))
            return True
        return False

    def _need(self, name: str) -> None:
        if self.get(name) is None:
            raise ConfigError(f"no user {name} on this node (rrn user list)")
