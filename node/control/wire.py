"""Just enough of the NATS client protocol for the CLI to ask its own daemon.

Owns the CLI's connection to the node's NATS: connect (with the server's TLS
upgrade and the daemon user's password), subscribe to an inbox, publish a request
with a reply subject, read the answers, answer the server's pings. That is the
whole of what a command needs; nats-py, which the daemon uses, loads its
JetStream API with its client, and that import alone (about 80 ms) cost every
command more than the rest of its start-up. The protocol is NATS's client protocol
(https://docs.nats.io/reference/reference-protocols/nats-protocol), text lines
and counted payloads, with headers for the server's "no responders" status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import ssl
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

__all__ = ["Connection", "Reply", "WireError"]

_CRLF: Final = b"\r\n"
#: The longest protocol line read (an INFO with many cluster URLs fits).
_LINE_LIMIT: Final = 1 << 20


class WireError(Exception):
    """The connection failed, was refused or closed; the message says how."""


@dataclass(frozen=True)
class Reply:
    """A message received on an inbox: its data, and the server's status if it sent
    one instead (e.g. "503": nobody listens on the subject asked)."""

    data: bytes
    status: str | None = None


class Connection:
    """One client connection to a NATS server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._sids = 0
        #: Messages of each live subscription, and the connection's end (a WireError).
        self._inboxes: dict[int, asyncio.Queue[Reply | WireError]] = {}
        self._reading: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, url: str, *, user: str | None, password: str | None, tls: ssl.SSLContext | None
    ) -> Connection:
        """Connect and authenticate (WireError or OSError if that fails)."""
        where = urlsplit(url if "://" in url else f"nats://{url}")
        host, port = where.hostname or "127.0.0.1", where.port or 4222
        if user is None and where.username:
            user, password = unquote(where.username), unquote(where.password or "") or None
        reader, writer = await asyncio.open_connection(host, port, limit=_LINE_LIMIT)
        conn = cls(reader, writer)
        try:
            info = await conn._info()
            secure = bool(info.get("tls_required") or where.scheme == "tls" or tls)
            if secure:
                await conn._upgrade(info, tls or ssl.create_default_context(), host)
            await conn._hello(user, password, tls=secure)
        except BaseException:
            writer.close()
            raise
        conn._reading = asyncio.ensure_future(conn._read())
        return conn

    async def _info(self) -> dict[str, object]:
        line = await self._reader.readline()
        if not line.startswith(b"INFO "):
            raise WireError("not a NATS server" if line else "the server closed the connection")
        info = json.loads(line[5:])
        if not isinstance(info, dict):
            raise WireError("a NATS server's INFO that is not an object")
        return info

    async def _upgrade(self, info: dict[str, object], context: ssl.SSLContext, host: str) -> None:
        """TLS from here on (the server's INFO came in the clear)."""
        if not info.get("tls_required") and not info.get("tls_available"):
            raise WireError("the server does not offer TLS")
        await self._writer.start_tls(context, server_hostname=host)

    async def _hello(self, user: str | None, password: str | None, *, tls: bool) -> None:
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
        self._writer.write(b"CONNECT " + json.dumps(hello).encode() + _CRLF + b"PING" + _CRLF)
        await self._writer.drain()
        while True:
            line = (await self._reader.readline()).rstrip(_CRLF)
            if line == b"PONG":
                return
            if line == b"PING":
                self._writer.write(b"PONG" + _CRLF)
            elif line.startswith(b"-ERR"):
                raise WireError(f"the server refused the connection: {_said(line)}")
            elif not line:
                raise WireError("the server closed the connection")

    def new_inbox(self) -> str:
        return f"_INBOX.{secrets.token_hex(11)}"

    async def subscribe(self, subject: str) -> int:
        """Subscribe to `subject`; its sid, for `next` and `unsubscribe`."""
        self._sids += 1
        self._inboxes[self._sids] = asyncio.Queue()
        await self._send(f"SUB {subject} {self._sids}".encode() + _CRLF)
        return self._sids

    async def unsubscribe(self, sid: int) -> None:
        self._inboxes.pop(sid, None)
        await self._send(f"UNSUB {sid}".encode() + _CRLF)

    async def publish(self, subject: str, data: bytes, *, reply: str) -> None:
        head = f"PUB {subject} {reply} {len(data)}".encode()
        await self._send(head + _CRLF + data + _CRLF)

    async def next(self, sid: int) -> Reply:
        """The next message of subscription `sid` (WireError once the connection ends)."""
        got = await self._inboxes[sid].get()
        if isinstance(got, WireError):
            self._inboxes[sid].put_nowait(got)  # for whoever asks next
            raise got
        return got

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, WireError, OSError):
                await self._reading
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def _send(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise WireError("the connection is closed")
        self._writer.write(data)
        try:
            await self._writer.drain()
        except OSError as exc:
            raise WireError(f"the connection failed: {type(exc).__name__}") from exc

    async def _read(self) -> None:
        """Hand each message to its subscription and answer pings, until the end."""
        end = WireError("the server closed the connection")
        try:
            while line := (await self._reader.readline()).rstrip(_CRLF):
                if line == b"PING":
                    await self._send(b"PONG" + _CRLF)
                elif line.startswith((b"MSG ", b"HMSG ")):
                    sid, reply = await self._message(line)
                    if sid in self._inboxes:
                        self._inboxes[sid].put_nowait(reply)
                elif line.startswith(b"-ERR"):  # a CLI has no use for a connection after one
                    end = WireError(f"the server refused: {_said(line)}")
                    break
        except WireError as exc:
            end = exc
        except Exception as exc:
            end = WireError(f"the connection failed: {type(exc).__name__}")
        for inbox in self._inboxes.values():
            inbox.put_nowait(end)

    async def _message(self, line: bytes) -> tuple[int, Reply]:
        """MSG <subject> <sid> [reply] <bytes>, or HMSG ... <header bytes> <bytes>."""
        words = line.split()
        headers = int(words[-2]) if words[0] == b"HMSG" else 0
        body = await self._reader.readexactly(int(words[-1]) + 2)
        status = None
        if headers:
            first = body[: body.find(_CRLF)].split()  # NATS/1.0 [status [description]]
            status = first[1].decode() if len(first) > 1 else None
        return int(words[2]), Reply(body[headers:-2], status)


def _said(line: bytes) -> str:
    """What a server's -ERR line says (it names no defender: protocol errors only)."""
    return line[4:].strip().strip(b"'").decode(errors="replace")[:200]
