"""Just enough of the NATS client protocol for the CLI to ask its own daemon.

Owns the CLI's connection to the node's NATS: connect (with the server's TLS
upgrade and the daemon user's password), subscribe to an inbox, publish a request
with a reply subject, read the answers, answer the server's pings. That is the
whole of what a command needs; nats-py, which the daemon uses, loads its
JetStream API with its client, and that import alone (about 80 ms) cost every
command more than the rest of its start-up. It blocks, on plain sockets: a
command asks one question and waits for its answer, and asyncio's import (about
45 ms here) would be a quarter of what every command pays before it does
anything. The protocol is NATS's client protocol
(https://docs.nats.io/reference/reference-protocols/nats-protocol), text lines
and counted payloads, with headers for the server's "no responders" status.
"""

from __future__ import annotations

import json
import secrets
import socket
import ssl
import time
from collections import deque
from typing import Final
from urllib.parse import unquote, urlsplit

import msgspec

__all__ = ["Connection", "Reply", "WireError"]

_CRLF: Final = b"\r\n"
#: The longest protocol line read (an INFO with many cluster URLs fits).
_LINE_LIMIT: Final = 1 << 20
_CHUNK: Final = 1 << 16
#: How long a write, or the rest of a message whose line has come, may take.
_IO_S: Final = 15.0


class WireError(Exception):
    """The connection failed, was refused or closed; the message says how."""


class Reply(msgspec.Struct, frozen=True):
    """A message received on an inbox: its data, and the server's status if it sent
    one instead (e.g. "503": nobody listens on the subject asked)."""

    data: bytes
    status: str | None = None


class Connection:
    """One client connection to a NATS server, used by one thread."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._sids = 0
        #: Messages of each live subscription not yet asked for.
        self._inboxes: dict[int, deque[Reply]] = {}
        #: How the connection ended, once it has: every later call raises it.
        self._end: WireError | None = None

    @classmethod
    def open(
        cls,
        url: str,
        *,
        user: str | None,
        password: str | None,
        tls: ssl.SSLContext | None,
        timeout: float = 15.0,
    ) -> Connection:
        """Connect and authenticate within `timeout` seconds (WireError or OSError if
        that fails; TimeoutError if it takes longer)."""
        where = urlsplit(url if "://" in url else f"nats://{url}")
        host, port = where.hostname or "127.0.0.1", where.port or 4222
        if user is None and where.username:
            user, password = unquote(where.username), unquote(where.password or "") or None
        deadline = time.monotonic() + timeout
        conn = cls(socket.create_connection((host, port), timeout=timeout))
        try:
            # A command is a few small writes (SUB, then PUB) each awaited by a reply:
            # Nagle's algorithm would hold the second for the server's delayed ACK.
            conn._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            info = conn._info(deadline)
            secure = bool(info.get("tls_required") or where.scheme == "tls" or tls)
            if secure:
                conn._upgrade(info, tls or ssl.create_default_context(), host, deadline)
            conn._hello(user, password, tls=secure, deadline=deadline)
        except BaseException:
            conn._sock.close()
            raise
        return conn

    def _info(self, deadline: float) -> dict[str, object]:
        line = self._line(deadline)
        if not line.startswith(b"INFO "):
            raise WireError("not a NATS server")
        info = json.loads(line[5:])
        if not isinstance(info, dict):
            raise WireError("a NATS server's INFO that is not an object")
        return info

    def _upgrade(
        self, info: dict[str, object], context: ssl.SSLContext, host: str, deadline: float
    ) -> None:
        """TLS from here on (the server's INFO came in the clear, and nothing after it)."""
        if not info.get("tls_required") and not info.get("tls_available"):
            raise WireError("the server does not offer TLS")
        if self._buffer:
            raise WireError("the server spoke before the TLS handshake")
        self._sock.settimeout(max(0.001, deadline - time.monotonic()))  # the handshake's
        self._sock = context.wrap_socket(self._sock, server_hostname=host)

    def _hello(self, user: str | None, password: str | None, *, tls: bool, deadline: float) -> None:
        """CONNECT, then a PING the server answers once it has accepted us."""
        hello: dict[str, object] = {
            "verbose": False,
            "pedantic": False,
            "tls_required": tls,
            "name": "rrn-cli",
            "lang": "python-rrn",
            "version": "1",
            "protocol": 1,
            "headers": True,
            "no_responders": True,
        }
        if user is not None and password is not None:
            hello |= {"user": user, "pass": password}
        elif user is not None:
            hello["auth_token"] = user
        self._send(b"CONNECT " + json.dumps(hello).encode() + _CRLF + b"PING" + _CRLF)
        while True:
            line = self._line(deadline)
            if line == b"PONG":
                return
            if line == b"PING":
                self._send(b"PONG" + _CRLF)
            elif line.startswith(b"-ERR"):
                raise WireError(f"the server refused the connection: {_said(line)}")

    def new_inbox(self) -> str:
        return f"_INBOX.{secrets.token_hex(11)}"

    def subscribe(self, subject: str) -> int:
        """Subscribe to `subject`; its sid, for `next` and `unsubscribe`."""
        self._sids += 1
        self._inboxes[self._sids] = deque()
        self._send(f"SUB {subject} {self._sids}".encode() + _CRLF)
        return self._sids

    def unsubscribe(self, sid: int) -> None:
        self._inboxes.pop(sid, None)
        self._send(f"UNSUB {sid}".encode() + _CRLF)

    def publish(self, subject: str, data: bytes, *, reply: str) -> None:
        head = f"PUB {subject} {reply} {len(data)}".encode()
        self._send(head + _CRLF + data + _CRLF)

    def next(self, sid: int, timeout: float) -> Reply:
        """The next message of subscription `sid`, reading the connection (and answering
        the server's pings) until it comes: TimeoutError after `timeout` seconds,
        WireError once the connection has ended."""
        deadline = time.monotonic() + timeout
        while not self._inboxes[sid]:
            self._one(deadline)
        return self._inboxes[sid].popleft()

    def close(self) -> None:
        self._end = self._end or WireError("the connection is closed")
        self._sock.close()

    def _one(self, deadline: float) -> None:
        """Read and handle one protocol line (with its message, if it starts one)."""
        try:
            line = self._line(deadline)
            if line == b"PING":
                self._send(b"PONG" + _CRLF)
            elif line.startswith((b"MSG ", b"HMSG ")):
                sid, reply = self._message(line, deadline)
                if sid in self._inboxes:
                    self._inboxes[sid].append(reply)
            elif line.startswith(b"-ERR"):  # a CLI has no use for a connection after one
                self._end = WireError(f"the server refused: {_said(line)}")
        except WireError as exc:
            self._end = exc
            raise
        except (ValueError, IndexError) as exc:
            self._end = WireError(f"the connection failed: {type(exc).__name__}")
            raise self._end from exc
        if self._end is not None:
            raise self._end

    def _message(self, line: bytes, deadline: float) -> tuple[int, Reply]:
        """MSG <subject> <sid> [reply] <bytes>, or HMSG ... <header bytes> <bytes>."""
        words = line.split()
        headers = int(words[-2]) if words[0] == b"HMSG" else 0
        try:  # a reply that began in time may take its time to end
            body = self._exactly(int(words[-1]) + 2, max(deadline, time.monotonic() + _IO_S))
        except TimeoutError:  # its line is read: the rest of it cannot be told apart
            raise WireError("the connection stalled in the middle of a message") from None
        status = None
        if headers:
            first = body[: body.find(_CRLF)].split()  # NATS/1.0 [status [description]]
            status = first[1].decode() if len(first) > 1 else None
        return int(words[2]), Reply(body[headers:-2], status)

    def _send(self, data: bytes) -> None:
        if self._end is not None:
            raise self._end
        try:
            self._sock.settimeout(_IO_S)  # not what the last read had left
            self._sock.sendall(data)
        except OSError as exc:
            self._end = WireError(f"the connection failed: {type(exc).__name__}")
            raise self._end from exc

    def _line(self, deadline: float) -> bytes:
        """The next protocol line, without its CRLF."""
        while (end := self._buffer.find(_CRLF)) < 0:
            if len(self._buffer) > _LINE_LIMIT:
                raise WireError("the server sent a line too long to be NATS's")
            self._fill(deadline)
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _exactly(self, n: int, deadline: float) -> bytes:
        while len(self._buffer) < n:
            self._fill(deadline)
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def _fill(self, deadline: float) -> None:
        """Read what the server sent (TimeoutError at `deadline`)."""
        if self._end is not None:
            raise self._end
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self._sock.settimeout(left)
        try:
            data = self._sock.recv(_CHUNK)
        except TimeoutError:
            raise
        except OSError as exc:
            self._end = WireError(f"the connection failed: {type(exc).__name__}")
            raise self._end from exc
        if not data:
            self._end = WireError("the server closed the connection")
            raise self._end
        self._buffer += data


def _said(line: bytes) -> str:
    """What a server's -ERR line says (it names no defender: protocol errors only)."""
    return line[4:].strip().strip(b"'").decode(errors="replace")[:200]
