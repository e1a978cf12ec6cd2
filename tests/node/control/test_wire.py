"""The CLI's own NATS client (node/control/wire.py) against a real nats-server, with a
responder on nats-py as the daemon has: a request answered (also after the server's
pings on a quiet connection), nobody listening, a wrong password, pinned TLS and a
server that goes away, each ending in an answer or a clear error."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rrn.node.control.wire import Connection, WireError
from rrn.node.home.certs import self_signed
from rrn.node.home.tls import pinned_context
from rrn.node.natsd.binary import find_binary
from tests.procs import free_port, wait_until

pytestmark = pytest.mark.integration


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    cert: Path | None


def _cert(directory: Path, name: str) -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    cert, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(self_signed(key, name, []).public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


@contextlib.contextmanager
def _server(directory: Path, *, tls: bool = False) -> Iterator[Server]:
    port = free_port()
    conf = [
        f"listen: 127.0.0.1:{port}",
        'authorization { users: [{user: "cli", password: "secret"}] }',
        "ping_interval: 1s",
        "ping_max: 2",
    ]
    cert = None
    if tls:
        cert, key = _cert(directory, "server")
        conf.append(f'tls {{ cert_file: "{cert}", key_file: "{key}" }}')
    (directory / "server.conf").write_text("\n".join(conf) + "\n")
    process = subprocess.Popen(
        [str(find_binary()), "-c", str(directory / "server.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _listening(port), 20, "nats-server to listen")
        yield Server(f"nats://127.0.0.1:{port}", process, cert)
    finally:
        process.terminate()
        process.wait(10)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.asynccontextmanager
async def _responder(server: Server) -> AsyncIterator[None]:
    """Answers each request on "ctl" with "re:" and what it asked (as a daemon would)."""
    tls = pinned_context(server.cert) if server.cert else None
    url = server.url.replace("nats://", "tls://") if tls else server.url
    nc = await nats.connect(url, user="cli", password="secret", tls=tls)

    async def answer(msg: Any) -> None:
        await msg.respond(b"re:" + msg.data)

    await nc.subscribe("ctl", cb=answer)
    await nc.flush()
    try:
        yield
    finally:
        await nc.close()


async def _ask(conn: Connection, data: bytes, subject: str = "ctl") -> tuple[bytes, str | None]:
    inbox = conn.new_inbox()
    sid = await conn.subscribe(inbox)
    await conn.publish(subject, data, reply=inbox)
    async with asyncio.timeout(10):
        reply = await conn.next(sid)
    await conn.unsubscribe(sid)
    return reply.data, reply.status


def test_a_request_is_answered_also_after_the_servers_pings(tmp_path: Path) -> None:
    async def go(server: Server) -> None:
        async with _responder(server):
            conn = await Connection.open(server.url, user="cli", password="secret", tls=None)
            try:
                assert await _ask(conn, b"one") == (b"re:one", None)
                await asyncio.sleep(3.5)  # 3 pings; unanswered, the server would cut us at 2
                assert await _ask(conn, b"two" * 50_000) == (b"re:" + b"two" * 50_000, None)
                assert (await _ask(conn, b"x", subject="nobody"))[1] == "503"
            finally:
                await conn.close()

    with _server(tmp_path) as server:
        asyncio.run(go(server))


def test_a_wrong_password_is_refused_in_words(tmp_path: Path) -> None:
    with _server(tmp_path) as server, pytest.raises(WireError, match="Authorization Violation"):
        asyncio.run(Connection.open(server.url, user="cli", password="guess", tls=None))


def test_pinned_tls_reaches_only_the_pinned_server(tmp_path: Path) -> None:
    other, _ = _cert(tmp_path, "other")

    async def go(server: Server) -> None:
        assert server.cert is not None
        async with _responder(server):
            pinned = pinned_context(server.cert)
            conn = await Connection.open(server.url, user="cli", password="secret", tls=pinned)
            try:
                assert await _ask(conn, b"over tls") == (b"re:over tls", None)
            finally:
                await conn.close()
            with pytest.raises(ssl.SSLError):
                await Connection.open(
                    server.url, user="cli", password="secret", tls=pinned_context(other)
                )

    with _server(tmp_path, tls=True) as server:
        asyncio.run(go(server))


def test_a_server_that_goes_away_ends_the_wait_with_an_error(tmp_path: Path) -> None:
    async def go(server: Server) -> None:
        conn = await Connection.open(server.url, user="cli", password="secret", tls=None)
        inbox = conn.new_inbox()
        sid = await conn.subscribe(inbox)  # an answer on its way, as far as it knows
        server.process.kill()
        with pytest.raises(WireError, match=r"closed|failed"):
            async with asyncio.timeout(10):
                await conn.next(sid)
        await conn.close()

    with _server(tmp_path) as server:
        asyncio.run(go(server))


def test_a_line_it_cannot_read_ends_the_wait_at_once() -> None:
    """A server (a stand-in speaking the protocol's first lines) that sends a message
    line with no size: the request gets an error, not a wait for its answer."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id": "x", "max_payload": 1048576}\r\n')
        await reader.readline()  # CONNECT
        await reader.readline()  # PING
        writer.write(b"PONG\r\nMSG broken\r\n")
        await writer.drain()
        await reader.read()  # until the client hangs up
        writer.close()
        await writer.wait_closed()
        served.set()

    served = asyncio.Event()

    async def go() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            conn = await Connection.open(f"nats://127.0.0.1:{port}", user=None, password=None,
                                         tls=None)  # fmt: skip
            sid = await conn.subscribe(conn.new_inbox())
            with pytest.raises(WireError, match="failed"):
                async with asyncio.timeout(5):
                    await conn.next(sid)
            await conn.close()
            await asyncio.wait_for(served.wait(), 5)

    asyncio.run(go())
