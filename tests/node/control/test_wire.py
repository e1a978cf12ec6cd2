"""The CLI's own NATS client (node/control/wire.py, blocking) against a real nats-server,
with a responder on nats-py as the daemon has: a request answered (also after the
server's pings on a quiet connection), nobody listening, a wrong password, pinned TLS,
a wait that times out, a server that goes away and one that speaks wrongly, each
ending in an answer or a clear error."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import threading
import time
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

    async def answer_late(msg: Any) -> None:
        await asyncio.sleep(3.5)  # 3 pings meanwhile; unanswered, the server cuts at 2
        await msg.respond(b"re:" + msg.data)

    await nc.subscribe("ctl", cb=answer)
    await nc.subscribe("slow", cb=answer_late)
    await nc.flush()
    try:
        yield
    finally:
        await nc.close()


def _ask(conn: Connection, data: bytes, subject: str = "ctl") -> tuple[bytes, str | None]:
    inbox = conn.new_inbox()
    sid = conn.subscribe(inbox)
    conn.publish(subject, data, reply=inbox)
    reply = conn.next(sid, 10)
    conn.unsubscribe(sid)
    return reply.data, reply.status


@contextlib.contextmanager
def _answered(server: Server) -> Iterator[None]:
    """A responder on nats-py, on its own thread's loop, while the blocking client asks."""
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        async with _responder(server):
            ready.set()
            await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(20), "the responder did not start"
        yield
    finally:
        stop.set()
        thread.join(10)


def test_a_request_is_answered_also_after_the_servers_pings(tmp_path: Path) -> None:
    """A daemon slow to answer: the client answers the server's pings while it waits."""
    with _server(tmp_path) as server, _answered(server):
        conn = Connection.open(server.url, user="cli", password="secret", tls=None)
        try:
            assert _ask(conn, b"one") == (b"re:one", None)
            assert _ask(conn, b"late", subject="slow") == (b"re:late", None)
            assert _ask(conn, b"two" * 50_000) == (b"re:" + b"two" * 50_000, None)
            assert _ask(conn, b"x", subject="nobody")[1] == "503"
        finally:
            conn.close()


def test_a_wrong_password_is_refused_in_words(tmp_path: Path) -> None:
    with _server(tmp_path) as server, pytest.raises(WireError, match="Authorization Violation"):
        Connection.open(server.url, user="cli", password="guess", tls=None)


def test_pinned_tls_reaches_only_the_pinned_server(tmp_path: Path) -> None:
    other, _ = _cert(tmp_path, "other")
    with _server(tmp_path, tls=True) as server, _answered(server):
        assert server.cert is not None
        pinned = pinned_context(server.cert)
        conn = Connection.open(server.url, user="cli", password="secret", tls=pinned)
        try:
            assert _ask(conn, b"over tls") == (b"re:over tls", None)
        finally:
            conn.close()
        with pytest.raises(ssl.SSLError):
            Connection.open(server.url, user="cli", password="secret", tls=pinned_context(other))


def test_a_server_that_goes_away_ends_the_wait_with_an_error(tmp_path: Path) -> None:
    with _server(tmp_path) as server:
        conn = Connection.open(server.url, user="cli", password="secret", tls=None)
        sid = conn.subscribe(conn.new_inbox())  # an answer on its way, as far as it knows
        server.process.kill()
        with pytest.raises(WireError, match=r"closed|failed"):
            conn.next(sid, 10)
        with pytest.raises(WireError):  # and every call after it
            conn.publish("ctl", b"again", reply="x")
        conn.close()


def test_an_unanswered_wait_ends_at_its_time_and_the_connection_still_serves(
    tmp_path: Path,
) -> None:
    """The client's retry (node/control/client.py) waits again on the same connection."""
    with _server(tmp_path) as server:
        conn = Connection.open(server.url, user="cli", password="secret", tls=None)
        try:
            sid = conn.subscribe(conn.new_inbox())
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                conn.next(sid, 0.5)
            assert time.monotonic() - started < 5
            with _answered(server):
                assert _ask(conn, b"after") == (b"re:after", None)
        finally:
            conn.close()


def _stand_in(replies: bytes) -> tuple[socket.socket, threading.Thread]:
    """A server speaking the protocol's first lines, then `replies`; it waits for the
    client to hang up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        peer, _ = listener.accept()
        with peer, peer.makefile("rb") as reader:
            peer.sendall(b'INFO {"server_id": "x", "max_payload": 1048576}\r\n')
            reader.readline()  # CONNECT
            reader.readline()  # PING
            peer.sendall(b"PONG\r\n" + replies)
            with contextlib.suppress(OSError):
                while peer.recv(1 << 16):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_a_line_it_cannot_read_ends_the_wait_at_once() -> None:
    """A message line with no size: the request gets an error, not a wait for its
    answer."""
    listener, served = _stand_in(b"MSG broken\r\n")
    with listener:
        port = listener.getsockname()[1]
        conn = Connection.open(f"nats://127.0.0.1:{port}", user=None, password=None, tls=None)
        sid = conn.subscribe(conn.new_inbox())
        started = time.monotonic()
        with pytest.raises(WireError, match="failed"):
            conn.next(sid, 5)
        assert time.monotonic() - started < 2
        conn.close()
        served.join(5)
        assert not served.is_alive()


def test_a_message_cut_short_ends_the_connection_not_the_next_answer() -> None:
    """A message whose body stops coming: waiting on, the next read would start in the
    middle of it; the connection ends instead, and says so."""
    listener, served = _stand_in(b"MSG _INBOX.x 1 100\r\nonly part")
    with listener:
        port = listener.getsockname()[1]
        conn = Connection.open(f"nats://127.0.0.1:{port}", user=None, password=None, tls=None)
        sid = conn.subscribe(conn.new_inbox())
        with pytest.raises(WireError, match="middle of a message"):
            conn.next(sid, 1)
        with pytest.raises(WireError, match="middle of a message"):
            conn.next(sid, 1)
        conn.close()
        served.join(5)
