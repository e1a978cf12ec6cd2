"""The integrators' alert bucket catches up with the store after a restart: a node
whose first fill of the bucket did not end (stopped part-way, minutes into a million
alerts) writes every alert again when it starts, closed ones too, not only the open
ones a normal restart checks; a normal restart reads the bucket in one pass and
writes only the open alerts whose records differ."""

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
    return await _revision(net, alert, delete=delete) is not None


async def _revision(net: TestNetwork, alert: str, *, delete: bool = False) -> int | None:
    """The revision of `alert`'s record in node 1's alert bucket (None: not held)."""
    password = (net.home(LIMA) / "keys" / "nats.pass").read_text().strip()
    nc = await nats.connect(net.cli_json(LIMA, "status")["nats_url"], user=STREAM_USER,
                            password=password)  # fmt: skip
    try:
        kv = await nc.jetstream().key_value("RRN_ALERTS")
        if delete:
            await kv.delete(alert)
        try:
            entry = await kv.get(alert)
        except KeyNotFoundError:
            return None
        return entry.revision if entry.value is not None else None
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


def test_a_restart_writes_only_the_open_alerts_the_bucket_does_not_hold_as_they_are(
    tmp_path: Path,
) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    try:
        lost, kept = net.raise_alert(LIMA), net.raise_alert(LIMA)
        net.wait(lambda: asyncio.run(_bucket(net, lost)) and asyncio.run(_bucket(net, kept)),
                 "both alerts in the bucket")  # fmt: skip
        before = asyncio.run(_revision(net, kept))
        # As if the node had stopped before its last change reached the bucket.
        assert not asyncio.run(_bucket(net, lost, delete=True))
        net.devnet.stop(LIMA)
        net.devnet.start(LIMA)
        net.wait(lambda: asyncio.run(_bucket(net, lost)), "the lost record written again")
        assert asyncio.run(_revision(net, kept)) == before, "a record that was right is kept"
        log = (net.home(LIMA) / "logs" / "rrn.log").read_text()
        assert "1 of 2 alerts written" in log
        assert "not read in one pass" not in log
    finally:
        net.close()
