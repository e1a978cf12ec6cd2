"""The integrators' alert bucket catches up with the store after a restart: a node
whose first fill of the bucket did not end (stopped part-way, minutes into a million
alerts) writes every alert again when it starts, closed ones too, not only the open
ones a normal restart checks."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import nats
import pytest
from nats.js.errors import KeyNotFoundError

from rrn.node.natsd.conf import STREAM_USER
from tests.netkit import TestNetwork

pytestmark = pytest.mark.integration

LIMA = 1


async def _bucket(net: TestNetwork, alert: str, *, delete: bool = False) -> bool:
    """Whether node 1's alert bucket holds `alert` (deleting it first if asked), as the
    daemon's own user of the integrators' account sees it."""
    password = (net.home(LIMA) / "keys" / "nats.pass").read_text().strip()
    nc = await nats.connect(net.cli_json(LIMA, "status")["nats_url"], user=STREAM_USER,
                            password=password)  # fmt: skip
    try:
        kv = await nc.jetstream().key_value("RRN_ALERTS")
        if delete:
            await kv.delete(alert)
        try:
            return (await kv.get(alert)).value is not None
        except KeyNotFoundError:
            return False
    finally:
        await nc.close()


def test_a_first_fill_cut_short_is_finished_at_the_next_start(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    try:
        closed = net.raise_alert(LIMA)
        net.cli(LIMA, "alert", "resolve", closed[:12], "--outcome", "safe")
        net.wait(lambda: asyncio.run(_bucket(net, closed)), "the closed alert in the bucket")

        # As if the node had stopped part-way through its first fill: the closed alert
        # never reached the bucket, and the fill was not recorded as ended.
        assert not asyncio.run(_bucket(net, closed, delete=True))
        net.devnet.stop(LIMA)
        with sqlite3.connect(net.home(LIMA) / "store.db") as db:
            gone = db.execute("DELETE FROM meta WHERE key = 'feeds.alerts_filled'").rowcount
        assert gone == 1, "the first fill was recorded as ended"
        net.devnet.start(LIMA)
        net.wait(lambda: asyncio.run(_bucket(net, closed)), "the closed alert written again")
    finally:
        net.close()
