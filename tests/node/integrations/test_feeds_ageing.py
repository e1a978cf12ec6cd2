"""A closed alert's record leaves the integrators' alert bucket, and the integrators'
copy of it, once the alert has been closed longer than the feeds keep events: erased,
with no delete marker left behind; an open alert's record stays however old. A
deleted alert's marker stays as long as a closed alert's record, then goes from both
too. (What ages when: test_ageing.py; a history imported years long: tests/bench.)"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import KeyNotFoundError, NotFoundError

from rrn.node.natsd.conf import MIRROR_USER, STREAM_USER
from tests.netkit import TestNetwork

pytestmark = pytest.mark.integration

LIMA, NAIROBI = 1, 2
DAY_MS = 86_400_000


@contextlib.asynccontextmanager
async def _as(net: TestNetwork, user: str) -> AsyncIterator[Any]:
    """A connection to Lima's server as `user`: the daemon's FEEDS user (the bucket)
    or INTEG's (its mirror)."""
    password = (net.home(LIMA) / "keys" / "nats.pass").read_text().strip()
    nc = await nats.connect(net.cli_json(LIMA, "status")["nats_url"], user=user,
                            password=password)  # fmt: skip
    try:
        yield nc
    finally:
        await nc.close()


async def _records(net: TestNetwork, alerts: list[str]) -> dict[str, list[str]]:
    """What the bucket and its mirror hold for each alert: 'value', 'marker' or 'none'
    for each."""
    found: dict[str, list[str]] = {a: [] for a in alerts}
    for user in (STREAM_USER, MIRROR_USER):
        async with _as(net, user) as nc:
            kv = await nc.jetstream().key_value("RRN_ALERTS")
            for alert in alerts:
                try:
                    await kv.get(alert)
                    found[alert].append("value")
                except KeyNotFoundError as exc:
                    found[alert].append("none" if exc.entry is None else "marker")
    return found


async def _last(net: TestNetwork, key: str) -> list[dict[str, str] | None]:
    """The headers of the last message of `key` in the bucket and in its mirror (None
    where there is none)."""
    found: list[dict[str, str] | None] = []
    for user in (STREAM_USER, MIRROR_USER):
        async with _as(net, user) as nc:
            try:
                msg = await nc.jetstream().get_last_msg("KV_RRN_ALERTS", f"$KV.RRN_ALERTS.{key}")
                found.append(dict(msg.headers or {}))
            except NotFoundError:
                found.append(None)
    return found


async def _put_expiring(net: TestNetwork, key: str, ttl_s: int) -> None:
    """A message of the bucket that expires in `ttl_s` (as the daemon's feeds user)."""
    async with _as(net, STREAM_USER) as nc:
        await nc.jetstream().publish(f"$KV.RRN_ALERTS.{key}", b"probe", msg_ttl=ttl_s)


def test_a_deleted_alerts_marker_is_kept_as_long_as_a_record_then_goes_from_both(
    tmp_path: Path,
) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    try:
        alert = net.raise_alert(LIMA)
        net.wait(
            lambda: asyncio.run(_records(net, [alert]))[alert] == ["value"] * 2,
            "the record in the bucket and its mirror",
        )
        net.cli(LIMA, "alert", "forget", alert[:12], "--reason", "consent_withdrawn")
        net.wait(
            lambda: asyncio.run(_records(net, [alert]))[alert] == ["marker"] * 2,
            "the deletion's marker in the bucket and its mirror",
        )
        kept_s = str(90 * 86400)  # [nats] bucket_closed_days
        marker = {"KV-Operation": "DEL", "Nats-TTL": kept_s}
        assert asyncio.run(_last(net, alert)) == [marker, marker]
        # That nats-server drops such a message when its time is up, from the mirror too
        # (a mirror not made for it keeps it for ever): one that expires in 5 s.
        asyncio.run(_put_expiring(net, "expiry-probe", 5))
        net.wait(
            lambda: None not in asyncio.run(_last(net, "expiry-probe")),
            "the expiring message in the mirror",
            timeout=4,
        )
        net.wait(
            lambda: asyncio.run(_last(net, "expiry-probe")) == [None, None],
            "the expiring message gone from the bucket and its mirror",
            timeout=30,
        )
    finally:
        net.close()


def test_a_record_closed_too_long_ago_is_erased_from_the_bucket_and_its_mirror(
    tmp_path: Path,
) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    try:
        # Nairobi's alert: Lima's own retention would delete an own alert this old.
        closed = net.raise_alert(NAIROBI)
        net.cli(NAIROBI, "alert", "resolve", closed[:12], "--outcome", "safe")
        still_open = net.raise_alert(LIMA)
        both = [closed, still_open]
        net.wait(  # by the list: an alert not yet at Lima is "not yet", not an error
            lambda: (
                {"id": closed, "status": "resolved"}.items()
                <= next(
                    (a for a in net.cli_json(LIMA, "alert", "list", "--all") if a["id"] == closed),
                    {},
                ).items()
            ),
            "Lima to hold the resolution",
        )
        net.wait(
            lambda: asyncio.run(_records(net, both)) == {a: ["value"] * 2 for a in both},
            "both records in the bucket and its mirror",
        )

        # As if the alert had been closed 400 days ago (the projection's time of its
        # last change, which the sweep walks by) and this node's last sweep were older.
        net.devnet.stop(LIMA)
        with sqlite3.connect(net.home(LIMA) / "store.db") as db:
            db.execute(
                "UPDATE alerts SET updated_ms = updated_ms - ? WHERE id = ?",
                (400 * DAY_MS, bytes.fromhex(closed)),
            )
            gone = db.execute("DELETE FROM meta WHERE key = 'feeds.aged_before'").rowcount
        assert gone == 1, "the first fill did not record how far records had aged"
        net.devnet.start(LIMA)

        net.wait(
            lambda: asyncio.run(_records(net, [closed]))[closed] == ["none", "none"],
            "the aged record erased from the bucket and the mirror, no marker left",
        )
        assert asyncio.run(_records(net, [still_open]))[still_open] == ["value", "value"]
        shown = net.cli_json(LIMA, "alert", "show", closed[:12])  # still in the store
        assert shown["alert"]["status"] == "resolved"
    finally:
        net.close()
