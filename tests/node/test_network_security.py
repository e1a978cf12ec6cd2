"""Members that lie, forge, replay or fork are refused or caught by every node."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from rrn.federation.roster import next_roster
from rrn.node.home.layout import open_home
from rrn.protocol import subjects
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import MAX_ENVELOPE_BYTES
from rrn.protocol.kinds import encode_payload
from rrn.protocol.messages import MESSAGE_VERSION, HeadEntry, Heartbeat, sign_heartbeat
from rrn.protocol.roster import (
    Approval,
    Roster,
    RosterCert,
    decode_cert,
    decode_roster,
    encode_cert,
    sign_roster,
)
from tests.netkit import TestNetwork, inject, network_id, rejected, signed_by
from tests.procs import rrn
from tests.support import raised

pytestmark = pytest.mark.integration


@pytest.fixture
def net3(tmp_path: Path) -> Iterator[TestNetwork]:
    net = TestNetwork.create(tmp_path / "net", 3, nat=set())
    net.wait(lambda: all(net.metric(k, "rrn_peers_connected") == 2 for k in net.indexes), "links")
    yield net
    net.close()


def test_forgeries_replays_and_forks_are_caught_everywhere(net3: TestNetwork) -> None:
    first = net3.raise_alert(1)
    net3.wait_holds({first})
    lima = net3.org(1)
    others = [2, 3]

    # A signature that does not verify.
    envelope = signed_by(net3, 1, seq=2, prev=bytes.fromhex(first))
    header, _sig, payload = msgspec.msgpack.decode(envelope)
    inject(net3, 1, "ev", encode((header, bytes(64), payload)))
    for k in others:
        net3.wait(lambda k=k: rejected(net3, k, lima, "bad_signature") >= 1, "bad_signature")

    # The member's own, valid signature, but over another network's id.
    inject(net3, 1, "ev", signed_by(net3, 1, net=hashlib.sha256(b"other").digest()))
    for k in others:
        net3.wait(lambda k=k: rejected(net3, k, lima, "wrong_network") >= 1, "wrong_network")

    # A roster version approved by too few organisations, or by one twice.
    home = open_home(net3.home(1))
    roster_rows = _rosters(net3, 1)
    current, current_bytes = roster_rows
    new = next_roster(current, current_bytes, threshold=3, created_ms=1)
    mine = sign_roster(home.keys().sign, lima, 1, new)
    alone = RosterCert(roster=new, approvals=[mine])
    twice = RosterCert(roster=new, approvals=[mine, Approval(org=lima, epoch=1, sig=mine.sig)])
    inject(net3, 1, "roster", encode_cert(alone))
    inject(net3, 1, "roster", encode_cert(twice))
    for k in others:
        net3.wait(lambda k=k: rejected(net3, k, lima, "roster_threshold") >= 1, "threshold")
        net3.wait(lambda k=k: rejected(net3, k, lima, "roster_duplicate_org") >= 1, "dup org")
    assert all(net3.roster_version(k) == 0 for k in net3.indexes)

    # The member signs a second, different event at a seq it already used: a fork.
    inject(net3, 1, "ev", signed_by(net3, 1, seq=1, payload=encode_payload(raised(7))))
    for k in net3.indexes:
        net3.wait(lambda k=k: net3.metric(k, "rrn_ingest_fork_proofs_total") >= 1, f"fork at {k}")
        frozen = net3.cli_json(k, "status")["frozen"]
        assert frozen == ["lima-hr/1 after seq 0"], frozen
        assert net3.cli_json(k, "alert", "list", "--all") == []  # nothing of the fork applies
    blocked = rrn(
        "alert",
        "raise",
        "--home",
        net3.home(1),
        "--country",
        "PE",
        "--type",
        "raid",
        "--severity",
        "minor",
        "--urgency",
        "weeks",
    )
    assert blocked.returncode == 1 and "forked" in blocked.stderr


def _rosters(net: TestNetwork, k: int) -> tuple[Roster, bytes]:
    with sqlite3.connect(f"file:{net.home(k) / 'store.db'}?mode=ro", uri=True) as db:
        (cert,) = db.execute("SELECT cert FROM rosters ORDER BY version DESC LIMIT 1").fetchone()
    data = decode_cert(bytes(cert)).roster
    return decode_roster(data), data


def test_cut_off_key_epoch_is_enforced_everywhere(net3: TestNetwork) -> None:
    jakarta = [net3.raise_alert(3) for _ in range(3)]  # seq 1, 2, 3
    net3.wait_holds(set(jakarta))
    proposal = net3.cli_json(1, "member", "propose", "--cut", "jakarta-pb:1:1")
    assert proposal["approved_by"] == ["lima-hr"] and not proposal["valid_now"]
    net3.wait(lambda: len(net3.cli_json(2, "member", "proposals")) == 1, "the proposal at node 2")
    net3.cli_json(2, "member", "approve", proposal["roster_id"][:12])
    for k in net3.indexes:
        net3.wait(lambda k=k: net3.roster_version(k) == 1, f"node {k} to adopt roster v1")
        net3.wait(
            lambda k=k: net3.cli_json(k, "status")["frozen"] == ["jakarta-pb/1 after seq 1"],
            f"node {k} to freeze the cut chain",
        )
        ids = {a["id"] for a in net3.cli_json(k, "alert", "list")}
        assert ids == {jakarta[0]}, "events past the cutoff no longer count"
    beyond = signed_by(net3, 3, seq=4, prev=bytes.fromhex(jakarta[2]), roster_ver=1)
    inject(net3, 3, "ev", beyond)
    for k in (1, 2):
        net3.wait(lambda k=k: rejected(net3, k, "jakarta-pb", "epoch_cut_off") >= 1, "cutoff")
    status = net3.cli_json(3, "status")
    assert status["appends_blocked"] and "cut" in status["appends_blocked"]


def test_a_compromised_key_is_cut_and_the_member_rotates_to_a_new_one(
    net3: TestNetwork, tmp_path: Path
) -> None:
    before = [net3.raise_alert(3) for _ in range(2)]  # Jakarta, key epoch 1, seq 1-2
    net3.wait_holds(set(before))
    assert "made signing key epoch 2" in net3.cli(3, "member", "new-key")
    card = tmp_path / "jakarta-2.card"
    net3.cli(3, "member", "card", "--out", str(card))
    proposal = tmp_path / "rotate.json"
    proposed = net3.cli_json(
        1,
        "member",
        "propose",
        "--rotate",
        str(card),
        "--cut",
        "jakarta-pb:1:2",
        "--out",
        str(proposal),
    )
    # The new key proves possession by signing the proposal; Lima carries that
    # signature in its approval, Nairobi approves: 2 of 3 is the threshold.
    net3.cli(3, "network", "sign", str(proposal))
    net3.cli(1, "member", "approve", "--file", str(proposal))
    net3.wait(lambda: len(net3.cli_json(2, "member", "proposals")) == 1, "the proposal at node 2")
    net3.cli(2, "member", "approve", proposed["roster_id"][:12])
    for k in net3.indexes:
        net3.wait(lambda k=k: net3.roster_version(k) == 1, f"node {k} to adopt roster v1")
    net3.wait(lambda: net3.cli_json(3, "status")["epoch"] == 2, "Jakarta to sign with epoch 2")
    assert net3.cli_json(3, "status")["appends_blocked"] is None
    after = net3.raise_alert(3)
    net3.wait_holds({after})
    for k in net3.indexes:
        assert {*before, after} <= {a["id"] for a in net3.cli_json(k, "alert", "list")}
        assert net3.cli(k, "log", "verify").startswith("ok:")
    # Whoever holds the old key can no longer add to Jakarta's history.
    stolen = signed_by(net3, 3, seq=3, prev=bytes.fromhex(before[1]), roster_ver=1)
    inject(net3, 3, "ev", stolen)
    for k in (1, 2):
        net3.wait(lambda k=k: rejected(net3, k, "jakarta-pb", "epoch_cut_off") >= 1, "cutoff")


async def _flood(net: TestNetwork, k: int, tail: str, messages: list[bytes]) -> None:
    """Publish many messages from node k's account as fast as NATS takes them."""
    import nats

    from rrn.node.natsd.conf import DAEMON_USER

    home = net.home(k)
    info = json.loads((home / "run" / "daemon.json").read_text())
    nc = await nats.connect(
        info["nats_url"], user=DAEMON_USER, password=open_home(home).keys().nats_password
    )
    subject = f"rrn.{subjects.net_token(network_id(net, k))}.{net.org(k)}.{tail}"
    try:
        for data in messages:
            await nc.publish(subject, data)
        await nc.flush(30)
    finally:
        await nc.close()


def test_a_flooding_or_lying_peer_is_throttled_and_cannot_stall_the_others(
    net3: TestNetwork,
) -> None:
    jakarta = net3.org(3)
    junk = [secrets.token_bytes(600) for _ in range(20_000)]
    flood = threading.Thread(target=lambda: asyncio.run(_flood(net3, 3, "ev", junk)))
    flood.start()
    try:
        # Lima and Nairobi keep talking to each other while Jakarta floods them.
        alerts = {net3.raise_alert(1), net3.raise_alert(2)}
        net3.wait_holds(alerts, nodes=[1, 2], timeout=30)
    finally:
        flood.join(120)
    for k in (1, 2):
        net3.wait(lambda k=k: rejected(net3, k, jakarta, "rate_limited") >= 1000, "throttling")
        net3.wait(lambda k=k: rejected(net3, k, jakarta, "malformed_envelope") >= 1, "junk")
        limited = rejected(net3, k, jakarta, "rate_limited")
        read = rejected(net3, k, jakarta, "malformed_envelope")
        # The bucket (burst 5000) let through only what it allows; the rest cost a count.
        assert read <= 5_000 + 1_000 * 60 and limited + read >= 15_000, (limited, read)
        assert rejected(net3, k, net3.org(3 - k), "rate_limited") == 0  # nobody else paid
    inject(net3, 3, "ev", b"\x93" + bytes(MAX_ENVELOPE_BYTES + 10))  # refused unread
    for k in (1, 2):
        net3.wait(lambda k=k: rejected(net3, k, jakarta, "oversize_envelope") >= 1, "oversize")

    # A heartbeat that claims events Jakarta does not have: asking for them fails,
    # is counted, and does not stop anyone from syncing with the others.
    key = open_home(net3.home(3)).keys().sign
    lie = Heartbeat(
        v=MESSAGE_VERSION,
        net=network_id(net3, 3),
        org=jakarta,
        epoch=1,
        boot=secrets.token_bytes(16),
        counter=1,
        wall_ms=int(time.time() * 1000),
        roster_ver=0,
        heads=[HeadEntry(origin=jakarta, epoch=1, seq=500, id=secrets.token_bytes(32))],
    )
    inject(net3, 3, "hb", sign_heartbeat(key, lie))
    for k in (1, 2):
        net3.wait(
            lambda k=k: (
                net3.metric(k, "rrn_sync_requests_total", peer=jakarta, outcome="empty") >= 1
            ),
            "the lie to be found out",
        )
    later = net3.raise_alert(1)
    net3.wait_holds({later})
    assert net3.cli(2, "log", "verify").startswith("ok:")
