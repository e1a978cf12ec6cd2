"""The control channel against a real daemon: a request runs at most once, its answer goes
only where its MAC says, and a retry after a restart gets the first answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from rrn.node.control.channel import decode_reply, make_request, now_ms
from rrn.node.home.layout import open_home
from rrn.node.natsd.conf import DAEMON_USER
from rrn.node.ops.types import AlertInfo, RaiseArgs
from rrn.protocol import subjects
from rrn.protocol.vocabulary import IncidentType, Severity, Urgency
from tests.procs import Daemon, init, rrn_json

pytestmark = pytest.mark.integration

ARGS = RaiseArgs(
    country="KE",
    incident_types=[IncidentType.RAID],
    severity=Severity.MINOR,
    urgency=Urgency.DAYS,
)


@asynccontextmanager
async def _connection(home: Path) -> AsyncIterator[NatsClient]:
    info = json.loads((home / "run" / "daemon.json").read_text())
    nc = await nats.connect(
        info["nats_url"], user=DAEMON_USER, password=open_home(home).keys().nats_password
    )
    try:
        yield nc
    finally:
        await nc.close()


async def _send(home: Path, data: bytes, reply: str, wait_s: float = 5) -> bytes | None:
    """Publish request bytes with answer subject `reply`; the answer there, if any."""
    async with _connection(home) as nc:
        got: asyncio.Queue[bytes] = asyncio.Queue()

        async def cb(msg: Msg) -> None:
            await got.put(msg.data)

        await nc.subscribe(reply, cb=cb)
        await nc.publish(subjects.control("lima-hr", "request"), data, reply=reply)
        try:
            return await asyncio.wait_for(got.get(), wait_s)
        except TimeoutError:
            return None


def test_a_repeated_request_raises_one_alert_even_across_a_restart(tmp_path: Path) -> None:
    home = init(tmp_path / "lima", "lima-hr")
    daemon = Daemon(home).start()
    try:
        key = open_home(home).control_secrets().control
        reply = "_INBOX.test-retry"
        data = make_request(key, "alert.raise", ARGS, now_ms(), reply)
        first = asyncio.run(_send(home, data, reply))
        again = asyncio.run(_send(home, data, reply))
        assert first is not None and again == first, "a retry gets the first answer"
        info = decode_reply(first, AlertInfo)
        daemon.stop()
        daemon.start()
        after_restart = asyncio.run(_send(home, data, reply))
        assert after_restart == first
        alerts = rrn_json("alert", "list", "--home", home)
        assert [a["id"] for a in alerts] == [info.id], "one alert, however often it was asked"
    finally:
        daemon.close()


def test_an_answer_goes_only_to_the_subject_the_mac_covers(tmp_path: Path) -> None:
    """A copy of a request published with another answer subject (someone else's inbox)
    is refused unanswered, and runs nothing."""
    home = init(tmp_path / "lima", "lima-hr")
    daemon = Daemon(home).start()
    try:
        key = open_home(home).control_secrets().control
        data = make_request(key, "alert.raise", ARGS, now_ms(), "_INBOX.the-cli")
        assert asyncio.run(_send(home, data, "_INBOX.a-thief")) is None
        assert rrn_json("alert", "list", "--home", home) == []
        forged = msgspec.msgpack.encode([b"\x90", bytes(32)])
        assert asyncio.run(_send(home, forged, "_INBOX.a-thief", wait_s=2)) is None
    finally:
        daemon.close()
