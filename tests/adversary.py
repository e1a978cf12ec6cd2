"""A compromised member, driven from the files of its own node home on a real network.

It holds what a seized or coerced node holds: its keys, its store, its own
nats-server's credentials. It signs whatever it likes with its own key, chained
after its own chain as its store shows it, and publishes it on its own subjects
as its node would; its own daemon keeps running (and takes the events back as its
own when peers relay them).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import sqlite3
import threading
import time
from typing import Any

import nats

from rrn.node.home.layout import open_home
from rrn.node.natsd.conf import DAEMON_USER
from rrn.protocol import subjects
from rrn.protocol.envelope import Event, sign_event, wire_bytes
from rrn.protocol.messages import (
    MESSAGE_VERSION,
    HeadEntry,
    Heartbeat,
    RangeRequest,
    RangeResponse,
    encode_response,
    open_request,
    sign_heartbeat,
)
from tests.netkit import TestNetwork, network_id


class Adversary:
    """Member k of `net`, turned."""

    def __init__(self, net: TestNetwork, k: int) -> None:
        self.net = net
        self.k = k
        self.home = net.home(k)
        self.org = net.org(k)
        self.netid = network_id(net, k)
        keys = open_home(self.home).keys()
        self.epoch = keys.epoch
        self.key = keys.sign
        self.space = subjects.space(self.netid, self.org).removesuffix(".>")
        self.seq, self.prev, self.wall_ms = self._head()

    def _head(self) -> tuple[int, bytes | None, int]:
        with sqlite3.connect(f"file:{self.home / 'store.db'}?mode=ro", uri=True) as db:
            row = db.execute(
                "SELECT seq, id, wall_ms FROM heads WHERE origin = ? AND epoch = ?",
                (self.org, self.epoch),
            ).fetchone()
        return (0, None, 0) if row is None else (int(row[0]), bytes(row[1]), int(row[2]))

    def sign(
        self,
        kind: str,
        payload: bytes,
        *,
        wall_ms: int | None = None,
        seq: int | None = None,
        prev: bytes | None = None,
        roster_ver: int = 0,
        advance: bool = True,
    ) -> Event:
        """An event of its own chain: the next one, unless told otherwise."""
        at = max(self.wall_ms, int(time.time() * 1000)) if wall_ms is None else wall_ms
        event = sign_event(
            self.key,
            net=self.netid,
            origin=self.org,
            epoch=self.epoch,
            seq=self.seq + 1 if seq is None else seq,
            prev=self.prev if seq is None else prev,
            kind=kind,
            wall_ms=at,
            roster_ver=roster_ver,
            payload=payload,
        )
        if advance and seq is None:
            self.seq, self.prev, self.wall_ms = event.header.seq, event.id, max(self.wall_ms, at)
        return event

    def heartbeat(
        self, heads: list[HeadEntry], *, counter: int, boot: bytes | None = None
    ) -> bytes:
        """A heartbeat saying whatever it likes about what it holds."""
        hb = Heartbeat(
            v=MESSAGE_VERSION,
            net=self.netid,
            org=self.org,
            epoch=self.epoch,
            boot=boot or secrets.token_bytes(16),
            counter=counter,
            wall_ms=int(time.time() * 1000),
            roster_ver=0,
            heads=heads,
        )
        return sign_heartbeat(self.key, hb)

    def record(self, subject: str, seconds: float) -> list[bytes]:
        """What arrives on `subject` at its own server for a while (a peer's messages
        come in through their link)."""

        async def go() -> list[bytes]:
            info: dict[str, Any] = json.loads((self.home / "run" / "daemon.json").read_text())
            password = open_home(self.home).keys().nats_password
            nc = await nats.connect(info["nats_url"], user=DAEMON_USER, password=password)
            got: list[bytes] = []
            try:

                async def keep(msg: Any) -> None:
                    got.append(msg.data)

                await nc.subscribe(subject, cb=keep)
                await asyncio.sleep(seconds)
            finally:
                await nc.close()
            return got

        return asyncio.run(go())

    def publish(self, tail: str, *messages: bytes, rate_per_s: float | None = None) -> None:
        """Publish on its own subject `rrn.<net>.<org>.<tail>` as its node would."""
        asyncio.run(self._publish(f"{self.space}.{tail}", list(messages), rate_per_s))

    def events(self, *events: Event, rate_per_s: float | None = None) -> None:
        self.publish("ev", *(e.envelope() for e in events), rate_per_s=rate_per_s)

    async def _publish(self, subject: str, messages: list[bytes], rate: float | None) -> None:
        info: dict[str, Any] = json.loads((self.home / "run" / "daemon.json").read_text())
        password = open_home(self.home).keys().nats_password
        nc = await nats.connect(info["nats_url"], user=DAEMON_USER, password=password)
        try:
            for data in messages:
                await nc.publish(subject, data)
                if rate is not None:
                    await asyncio.sleep(1 / rate)
            await nc.flush()
        finally:
            await nc.close()


class LinkTap:
    """The turned member's own nats-server, reconfigured by it: a client of its own in
    the account that holds its link to member `peer`, and that link's permissions
    lifted. What the client hears is what the honest peer sends over the link; what it
    publishes goes wherever that server can make it go."""

    USER = "tap"

    def __init__(self, bad: Adversary, peer: str) -> None:
        conf = bad.home / "nats" / "nats-server.conf"
        account = "L_" + peer.replace("-", "_")
        text = conf.read_text()
        pattern = re.compile(rf"(  {account} {{\n    users: \[)\{{nkey: (\"[A-Z0-9]+\"), .*\]")
        password = secrets.token_hex(8)
        text, found = pattern.subn(
            rf'\1{{nkey: \2}}, {{user: "{self.USER}", password: "{password}"}}]', text
        )
        assert found == 1, f"{bad.org}'s server has no account accepting {peer}'s link"
        conf.write_text(text)
        log = bad.home / "nats" / "nats-server.log"
        seen = log.stat().st_size
        pid = int((bad.home / "run" / "nats-server.pid").read_text())
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while b"Reloaded server configuration" not in log.read_bytes()[seen:]:
            assert time.monotonic() < deadline, "the server did not reload its new config"
            time.sleep(0.1)
        info: dict[str, Any] = json.loads((bad.home / "run" / "daemon.json").read_text())
        self.subjects: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._nc: Any = self._run(self._connect(info["nats_url"], password))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _connect(self, url: str, password: str) -> Any:
        async def record(msg: Any) -> None:
            self.subjects.append(msg.subject)

        nc = await nats.connect(
            url, user=self.USER, password=password, allow_reconnect=False, no_echo=True
        )
        await nc.subscribe(">", cb=record)
        await nc.flush()
        return nc

    def publish(self, subject: str, data: bytes) -> None:
        async def go() -> None:
            await self._nc.publish(subject, data)
            await self._nc.flush()

        self._run(go())

    def stop(self) -> list[str]:
        self._run(self._nc.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        return self.subjects


class FalsePages:
    """The turned member's daemon frozen (SIGSTOP), and in its place, on its own server:
    heartbeats saying truly what its store holds, and an answer to every range request
    `requester` sends it made of the events asked for, each signature with one bit
    flipped. Its daemon goes on (SIGCONT) at `stop`."""

    def __init__(self, bad: Adversary, requester: str, *, key_for: Any) -> None:
        self.bad, self.requester, self.key_for = bad, requester, key_for
        self.answered = 0
        self._stop = threading.Event()
        self._pid = int(json.loads((bad.home / "run" / "daemon.json").read_text())["pid"])
        os.kill(self._pid, signal.SIGSTOP)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._task = asyncio.run_coroutine_threadsafe(self._run(), self._loop)

    def _heads(self) -> list[HeadEntry]:
        with sqlite3.connect(f"file:{self.bad.home / 'store.db'}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT origin, epoch, seq, id FROM heads").fetchall()
        return [HeadEntry(origin=o, epoch=e, seq=s, id=bytes(i)) for o, e, s, i in rows]

    def _page(self, req: RangeRequest) -> RangeResponse:
        with sqlite3.connect(f"file:{self.bad.home / 'store.db'}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT header, sig, payload FROM events WHERE origin = ? AND epoch = ? "
                "AND seq >= ? ORDER BY seq LIMIT ?",
                (req.origin, req.epoch, req.from_seq, req.limit),
            ).fetchall()
        forged = [wire_bytes(h, bytes([s[0] ^ 1]) + s[1:], p) for h, s, p in rows]
        return RangeResponse(req.nonce, req.origin, req.epoch, forged, False)

    async def _run(self) -> None:
        info: dict[str, Any] = json.loads((self.bad.home / "run" / "daemon.json").read_text())
        password = open_home(self.bad.home).keys().nats_password
        nc = await nats.connect(info["nats_url"], user=DAEMON_USER, password=password)
        net, me = self.bad.netid, self.bad.org

        async def answer(msg: Any) -> None:
            req = open_request(msg.data, net=net, key_for=self.key_for)
            await nc.publish(subjects.responses(net, me, req.requester), encode_response(
                self._page(req)))  # fmt: skip
            self.answered += 1

        await nc.subscribe(subjects.requests(net, self.requester, me), cb=answer)
        boot, counter = secrets.token_bytes(16), 0
        try:
            while not self._stop.is_set():
                counter += 1
                hb = self.bad.heartbeat(self._heads(), counter=counter, boot=boot)
                await nc.publish(f"{self.bad.space}.hb", hb)
                await asyncio.sleep(0.5)
        finally:
            await nc.close()

    def stop(self) -> int:
        """The daemon goes on; how many requests were answered falsely."""
        self._stop.set()
        self._task.result(10)  # its connection closed before its loop is
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        os.kill(self._pid, signal.SIGCONT)
        return self.answered
