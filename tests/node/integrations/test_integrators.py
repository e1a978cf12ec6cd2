"""Integrator accounts on a real node: each integrator reads the feeds with its own
password, and is tried at what it must not do (overhear another's answers or the
CLI's, publish into a feed, take over, ack or delete another's consumer, reach the
control channel); a revoked one is cut off at once; with [nats] tls the client
port takes pinned TLS only."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from rrn.node.client import connect
from rrn.node.natsd.conf import MIRROR_USER
from tests.netkit import TestNetwork
from tests.node.cli.test_schemas import _valid
from tests.procs import rrn

pytestmark = pytest.mark.integration
ALL = DeliverPolicy.ALL


def _add(net: TestNetwork, k: int, name: str, *extra: str) -> dict[str, Any]:
    made: dict[str, Any] = net.cli_json(k, "integrator", "add", name, *extra)
    return made


class _Raw:
    """An integrator's own NATS connection, recording what the server refused."""

    def __init__(self, account: dict[str, Any]) -> None:
        self.account = account
        self.refused: list[str] = []
        self.nc: Any = None
        self.cut = asyncio.Event()

    async def __aenter__(self) -> _Raw:
        async def error(exc: Exception) -> None:
            self.refused.append(str(exc))

        async def disconnected() -> None:
            self.cut.set()

        a = self.account
        self.nc = await nats.connect(
            a["url"], user=a["user"], password=a["password"], inbox_prefix=a["inbox_prefix"],
            error_cb=error, disconnected_cb=disconnected, max_reconnect_attempts=0,
        )  # fmt: skip
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()

    async def refuses(self, what: str, attempt: Any) -> None:
        """`attempt` is refused by the server (a permissions violation naming `what`)."""
        before = len(self.refused)
        with contextlib.suppress(NatsError, TimeoutError):  # a denied request: no answer
            await attempt()
        await self.nc.flush()
        await asyncio.sleep(0.3)
        said = " ".join(self.refused[before:]).lower()
        assert "permissions violation" in said and what.lower() in said, (what, said)


def test_each_integrator_reads_its_feeds_and_nothing_of_anyone_else(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    try:
        desk, pager = _add(net, 1, "case-desk"), _add(net, 1, "pager")
        _valid("integrator", desk)
        listed = net.cli_json(1, "integrator", "list")
        _valid("integrators", listed)
        assert [i["name"] for i in listed] == ["case-desk", "pager"]
        assert pager["password"] not in net.cli(1, "integrator", "list"), "never shown again"
        assert desk["live"] and desk["url"].startswith("nats://127.0.0.1:")
        first = net.raise_alert(2)
        net.wait_holds({first})
        network = net.cli_json(1, "status")["network"]
        asyncio.run(_scenario(net, desk, pager, network, first))
    finally:
        net.close()


async def _read_to(account: dict[str, Any], network: str, alert: str) -> list[str]:
    """Read the events as this integrator up to `alert`'s; their ids. Every one but
    the last is acknowledged (the client acknowledges when asked for the next)."""
    seen: list[str] = []
    async with connect(
        account["url"], user=account["user"], password=account["password"], network=network
    ) as node:
        async with asyncio.timeout(30):
            async for event in node.events():
                seen.append(event.id)
                if event.id == alert:
                    return seen
    raise AssertionError("the events ended")


async def _pushes_reach_nobody(raw: _Raw, other: dict[str, Any]) -> None:
    """A consumer the server pushes to another integrator's inbox, or onto a notice
    subject, delivers nothing there, while one pushing to its own inbox delivers."""
    heard: list[str] = []
    own: list[str] = []

    async def got(msg: Any) -> None:
        heard.append(msg.subject)

    async def mine(msg: Any) -> None:
        own.append(msg.subject)

    mailbox = f"{raw.account['inbox_prefix']}.push"
    await raw.nc.subscribe(mailbox, cb=mine)

    async with _Raw(other) as victim:
        await victim.nc.subscribe(f"{other['inbox_prefix']}.>", cb=got)
        await victim.nc.flush()
        js = raw.nc.jetstream()
        for target in (f"{other['inbox_prefix']}.x", "rrn.local.alerts.targeted.fake", mailbox):
            with contextlib.suppress(NatsError):
                await js.add_consumer(
                    "KV_RRN_ALERTS", ConsumerConfig(deliver_subject=target, deliver_policy=ALL)
                )
        await asyncio.sleep(2)
    assert own, "a push consumer works where its maker listens"
    assert heard == [], heard
    with pytest.raises(NotFoundError):
        await js.get_last_msg("RRN_NOTICES", "rrn.local.alerts.targeted.fake")


async def _replies_land_nowhere(raw: _Raw, alert: str) -> None:
    """NATS does not check a request's reply subject: the server's answers sent onto
    a feed's subjects must not land in the feed (the feeds are mirrors: no subjects)."""
    js = raw.nc.jetstream()
    kv = await js.key_value("RRN_ALERTS")
    before = await kv.get(alert)
    counts = {s: (await js.stream_info(s)).state.messages for s in ("RRN_NOTICES", "KV_RRN_ALERTS")}
    for stream, reply in (
        ("RRN_NOTICES", f"rrn.local.alerts.targeted.{alert}"),
        ("KV_RRN_ALERTS", f"$KV.RRN_ALERTS.{alert}"),
        ("KV_RRN_NETWORK", "$KV.RRN_NETWORK.roster.1"),
    ):
        await raw.nc.publish(f"$JS.API.STREAM.INFO.{stream}", b"", reply=reply)
        ask = json.dumps({"seq": 1}).encode()
        await raw.nc.publish(f"$JS.API.DIRECT.GET.{stream}", ask, reply=reply)
    await raw.nc.flush()
    await asyncio.sleep(1)
    after = {s: (await js.stream_info(s)).state.messages for s in counts}
    assert after == counts, (counts, after)
    now = await kv.get(alert)
    assert (now.revision, now.value) == (before.revision, before.value)


async def _scenario(
    net: TestNetwork, desk: dict[str, Any], pager: dict[str, Any], network: str, first: str
) -> None:
    before = await _read_to(pager, network, first)
    org = net.org(1)
    async with _Raw(desk) as raw:
        nc = raw.nc
        await raw.refuses("_INBOX.>", lambda: nc.subscribe("_INBOX.>"))
        await raw.refuses("_INBOX_pager.>", lambda: nc.subscribe("_INBOX_pager.>"))
        await raw.refuses("rrn.local.alerts.>", lambda: nc.subscribe("rrn.local.alerts.>"))
        fake = json.dumps({"type": "targeted", "alert": first}).encode()
        await raw.refuses(
            "rrn.local.alerts.targeted", lambda: nc.publish(f"rrn.local.alerts.targeted.{first}", fake)
        )  # fmt: skip
        await raw.refuses(
            f"rrn.local.ctl.{org}.request",
            lambda: nc.request(f"rrn.local.ctl.{org}.request", b"{}", timeout=1),
        )
        for stream in ("RRN_EVENTS", "RRN_NOTICES"):
            await raw.refuses(
                f"CONSUMER.DELETE.{stream}.pager",
                lambda s=stream: nc.request(f"$JS.API.CONSUMER.DELETE.{s}.pager", b"", timeout=1),
            )
            await raw.refuses(
                f"CONSUMER.INFO.{stream}.pager",
                lambda s=stream: nc.request(f"$JS.API.CONSUMER.INFO.{s}.pager", b"", timeout=1),
            )
            await raw.refuses(
                f"CONSUMER.DURABLE.CREATE.{stream}.pager",
                lambda s=stream: nc.request(
                    f"$JS.API.CONSUMER.DURABLE.CREATE.{s}.pager", b"{}", timeout=1
                ),
            )
            await raw.refuses(
                f"CONSUMER.MSG.NEXT.{stream}.pager",
                lambda s=stream: nc.request(
                    f"$JS.API.CONSUMER.MSG.NEXT.{s}.pager", b"1", timeout=1
                ),
            )
            await raw.refuses(
                f"$JS.ACK.{stream}.pager",
                lambda s=stream: nc.publish(f"$JS.ACK.{s}.pager.1.1.1.0.0", b"+ACK"),
            )
            # The server-named create takes a name from the request and would update
            # that consumer (another integrator's, or the node's own webhook's).
            body = {"stream_name": stream, "config": {"name": "pager", "ack_wait": 10**9}}
            await raw.refuses(
                f"CONSUMER.CREATE.{stream}",
                lambda s=stream, b=body: nc.request(
                    f"$JS.API.CONSUMER.CREATE.{s}", json.dumps(b).encode(), timeout=1
                ),
            )
        js = nc.jetstream()
        notices = (await js.stream_info("RRN_NOTICES")).state.messages
        await _pushes_reach_nobody(raw, pager)
        await _replies_land_nowhere(raw, first)
    async with _Raw(pager) as own:
        info = await own.nc.jetstream().consumer_info("RRN_EVENTS", "pager")
        assert (info.config.durable_name, info.config.ack_wait) == ("pager", 60.0)

    # The pager's consumer is untouched: it goes on from where it was.
    later = net.raise_alert(2)
    net.wait_holds({later}, nodes=[1])
    again = await _read_to(pager, network, later)
    assert not set(again) & set(before[:-1]), "it resumes where it left off"
    async with _Raw(desk) as raw:
        after = (await raw.nc.jetstream().stream_info("RRN_NOTICES")).state.messages
        assert after >= notices, "nothing it tried removed a notice"

    # Revoked: the live connection is closed, the password no longer works, and
    # its consumers go (one added later under the name starts afresh).
    assert "pager" in await _durables(net, 1, "RRN_EVENTS")
    async with _Raw(pager) as raw:
        out = net.cli_json(1, "integrator", "revoke", "pager")
        assert out == {"name": "pager", "revoked": True, "live": True}
        async with asyncio.timeout(20):
            await raw.cut.wait()
    gate = _Raw(pager)
    with pytest.raises((NatsError, OSError, TimeoutError)):
        async with asyncio.timeout(10), gate:
            pass
    assert any("authorization" in said.lower() for said in gate.refused), gate.refused
    assert [i["name"] for i in net.cli_json(1, "integrator", "list")] == ["case-desk"]
    assert "pager" not in await _durables(net, 1, "RRN_EVENTS"), "its consumer went too"


async def _durables(net: TestNetwork, k: int, stream: str) -> set[str]:
    """The durable consumers of a feed's mirror, as the daemon's own user sees them."""
    password = (net.home(k) / "keys" / "nats.pass").read_text().strip()
    url = net.cli_json(k, "status")["nats_url"]
    nc = await nats.connect(url, user=MIRROR_USER, password=password)
    try:
        infos = await nc.jetstream().consumers_info(stream)
    finally:
        await nc.close()
    return {i.config.durable_name for i in infos if i.config.durable_name}


def test_an_integrator_on_another_host_connects_over_pinned_tls(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    try:
        refused = rrn("integrator", "add", "remote", "--tls", "--home", net.home(1))
        assert refused.returncode != 0 and "[nats] tls = true" in refused.stderr
        net.devnet.stop(1)
        config = net.home(1) / "config.toml"
        text = config.read_text()
        assert "\ntls = false\n" in text
        config.write_text(text.replace("\ntls = false\n", "\ntls = true\n", 1))
        net.devnet.start(1)
        remote = _add(net, 1, "remote", "--tls")
        assert remote["url"].startswith("tls://") and remote["ca_file"]
        alert = net.raise_alert(2)
        net.wait_holds({alert})
        network = net.cli_json(1, "status")["network"]
        asyncio.run(_over_tls(remote, network, alert, net.home(2) / "keys" / "tls.crt"))
        assert "ok:" in net.cli(1, "log", "verify"), "the CLI reaches its daemon over TLS"
    finally:
        net.close()


async def _over_tls(remote: dict[str, Any], network: str, alert: str, other: Path) -> None:
    url, user, password = remote["url"], remote["user"], remote["password"]
    async with connect(url, user=user, password=password, network=network,
                       ca_file=remote["ca_file"]) as node:  # fmt: skip
        async with asyncio.timeout(30):
            async for change in node.alerts():
                if change.id == alert:
                    break
    plain = url.replace("tls://", "nats://")
    with pytest.raises((NatsError, OSError, TimeoutError)):
        async with asyncio.timeout(10):
            nc = await nats.connect(plain, user=user, password=password, allow_reconnect=False)
            await nc.close()
    with pytest.raises((NatsError, OSError, TimeoutError)):
        async with asyncio.timeout(10):
            async with connect(url, user=user, password=password, network=network,
                               ca_file=other, allow_reconnect=False):  # fmt: skip
                pass
