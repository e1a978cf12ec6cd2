"""The integrator client reads the roster chain from the node's network bucket, on a
real nats-server with JetStream: a bucket still empty (a node that just started has
not written it yet) is waited for, not read as a chain that does not verify, so an
event that came first is neither counted as rejected nor acknowledged and lost."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from rrn.node.client import feeds
from rrn.node.client.feeds import NodeFeeds
from rrn.node.integrations.feeds import NETWORK_BUCKET
from rrn.node.natsd.binary import find_binary
from rrn.protocol.errors import ProtocolError, RrnError
from rrn.protocol.roster import encode_cert
from tests.procs import free_port
from tests.support import network

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A nats-server with JetStream on a free loopback port: its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [str(find_binary()), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@asynccontextmanager
async def _bucket(url: str) -> AsyncIterator[tuple[NatsClient, KeyValue]]:
    """A connection to `url` and an empty network bucket, as a node makes it."""
    nc = await nats.connect(url, max_reconnect_attempts=50, reconnect_time_wait=0.1)
    try:
        kv = await nc.jetstream().create_key_value(KeyValueConfig(bucket=NETWORK_BUCKET, history=1))
        yield nc, kv
    finally:
        await nc.close()


def test_a_roster_written_after_the_client_asked_is_waited_for(server: str) -> None:
    net = network("lima-hr", "nairobi-dl")

    async def scenario() -> None:
        async with _bucket(server) as (nc, kv):
            client = NodeFeeds(nc, net.net.hex(), "case-system")
            loading = asyncio.create_task(client._load_keyring())
            await asyncio.sleep(1.0)  # the client has found the bucket empty meanwhile
            assert not loading.done()
            await kv.put("roster.1", encode_cert(net.cert))
            keyring = await asyncio.wait_for(loading, 10)
            assert keyring.roster.orgs() == net.roster.orgs()

    asyncio.run(scenario())


def test_a_bucket_that_stays_empty_raises_and_is_not_a_rejected_event(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "_ROSTER_WAIT_S", 1.0)
    net = network("lima-hr", "nairobi-dl")

    async def scenario() -> None:
        async with _bucket(server) as (nc, _):
            client = NodeFeeds(nc, net.net.hex(), "case-system")
            with pytest.raises(RrnError) as raised:
                await client._load_keyring()
            # Not a ProtocolError: events() counts and acknowledges only those, as
            # events that do not verify; this one stays in the durable consumer.
            assert not isinstance(raised.value, ProtocolError)
            assert "published no roster chain" in str(raised.value)

    asyncio.run(scenario())


def test_a_roster_chain_that_does_not_decode_raises_and_is_not_a_rejected_event(
    server: str,
) -> None:
    net = network("lima-hr", "nairobi-dl")

    async def scenario() -> None:
        async with _bucket(server) as (nc, kv):
            await kv.put("roster.1", encode_cert(net.cert)[:-3])  # cut short
            client = NodeFeeds(nc, net.net.hex(), "case-system")
            with pytest.raises(RrnError) as raised:
                await client._load_keyring()
            # The roster's fault: raised as an RrnError, which events() does not count
            # as an event that fails to verify, nor acknowledge.
            assert not isinstance(raised.value, ProtocolError)
            assert "roster chain does not verify" in str(raised.value)

    asyncio.run(scenario())
