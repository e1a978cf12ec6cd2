"""Console sessions, the login throttle and the record of what each person did.

Owns HOME/console.db's `sessions` and `actions` tables. A session cookie is 32
random bytes; only its SHA-256 is stored, so a copy of console.db opens no
session. Each session carries its own CSRF token. Sessions end after
`session_idle_minutes` without a request or `session_max_hours` in all.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import sqlite3
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Final, Protocol

__all__ = ["Action", "Session", "Sessions", "Throttle"]

#: Login attempts one address may make per minute, whatever the user name.
_PER_ADDRESS_PER_MINUTE: Final = 10
#: Addresses remembered at most (the least recent forgotten first).
_ADDRESSES: Final = 10_000


@dataclass(frozen=True)
class Session:
    token_hash: str
    name: str
    csrf: str
    created_ms: int


@dataclass(frozen=True)
class Action:
    at_ms: int
    name: str
    action: str
    alert: str | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PeopleLike(Protocol):
    def get(self, name: str) -> Any: ...


class Sessions:
    def __init__(self, db: sqlite3.Connection, *, idle_ms: int, max_ms: int):
        self._db = db
        self.idle_ms = idle_ms
        self.max_ms = max_ms

    def start(self, name: str, now_ms: int) -> tuple[str, Session]:
        """A new session: the cookie's token (given once) and the session."""
        token = secrets.token_urlsafe(32)
        s = Session(_hash(token), name, secrets.token_urlsafe(32), now_ms)
        self._db.execute(
            "INSERT INTO sessions(id, name, csrf, created_ms, seen_ms) VALUES (?, ?, ?, ?, ?)",
            (s.token_hash, name, s.csrf, now_ms, now_ms),
        )
        return token, s

    def find(self, token: str, now_ms: int) -> Session | None:
        """The live session of a cookie (touched), or None if unknown or expired."""
        row = self._db.execute(
            "SELECT id, name, csrf, created_ms, seen_ms FROM sessions WHERE id = ?",
            (_hash(token),),
        ).fetchone()
        if row is None:
            return None
        if now_ms - row[4] > self.idle_ms or now_ms - row[3] > self.max_ms:
            self._db.execute("DELETE FROM sessions WHERE id = ?", (row[0],))
            return None
        if now_ms - row[4] > 10_000:  # write at most every 10 s per session
            self._db.execute("UPDATE sessions SET seen_ms = ? WHERE id = ?", (now_ms, row[0]))
        return Session(row[0], row[1], row[2], row[3])

    def alive(self, token_hash: str, now_ms: int, people: PeopleLike) -> bool:
        """Whether a session (by its stored hash) is still live and its person enabled."""
        row = self._db.execute(
            "SELECT name, created_ms, seen_ms FROM sessions WHERE id = ?", (token_hash,)
        ).fetchone()
        if row is None or now_ms - row[2] > self.idle_ms or now_ms - row[1] > self.max_ms:
            return False
        person = people.get(row[0])
        return person is not None and not person.disabled

    def end(self, token_hash: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE id = ?", (token_hash,))

    def sweep(self, now_ms: int) -> None:
        self._db.execute(
            "DELETE FROM sessions WHERE seen_ms < ? OR created_ms < ?",
            (now_ms - self.idle_ms, now_ms - self.max_ms),
        )

    def record(self, name: str, action: str, alert: str | None, now_ms: int) -> None:
        """What a person did (claimed, opened sealed details…), kept on this node only."""
        self._db.execute(
            "INSERT INTO actions(at_ms, name, action, alert) VALUES (?, ?, ?, ?)",
            (now_ms, name, action, alert),
        )

    def actions(self, *, alert: str | None = None, limit: int = 200) -> list[Action]:
        where, args = ("WHERE alert = ?", (alert,)) if alert else ("", ())
        rows = self._db.execute(
            f"SELECT at_ms, name, action, alert FROM actions {where} "
            "ORDER BY at_ms DESC, rowid DESC LIMIT ?",
            (*args, limit),
        )
        return [Action(*r) for r in rows]


class Throttle:
    """Login attempts per client address (an IPv6 client per /64): ten a minute."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, address: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        key = _client(address)
        q = self._seen.pop(key, None) or deque()
        self._seen[key] = q  # the most recent last
        while len(self._seen) > _ADDRESSES:  # bounded: the least recent go first
            self._seen.popitem(last=False)
        while q and now - q[0] >= 60:
            q.popleft()
        if len(q) >= _PER_ADDRESS_PER_MINUTE:
            return False
        q.append(now)
        return True


def _client(address: str) -> str:
    """One key per client: an IPv4 address, or the /64 an IPv6 host holds whole."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
