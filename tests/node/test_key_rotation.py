"""`rrn key rotate` on a real network: every node follows, seals to the new key, and
nobody accepts anything more from the old one."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import msgspec
import pytest

from rrn.node.home.layout import open_home
from rrn.protocol.errors import Reason
from rrn.protocol.kinds import SealedEvent
from rrn.protocol.sealing import Position, Sealed, SealError, decode_sealed, open_sealed
from tests.netkit import TestNetwork, inject, network_id, rejected, signed_by

pytestmark = pytest.mark.integration

LIMA, NAIROBI, JAKARTA = 1, 2, 3


def test_a_member_rotates_its_keys_in_its_chain_and_every_node_follows(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 3, nat=set())
    jakarta = net.org(JAKARTA)
    try:
        net.wait(lambda: all(net.metric(k, "rrn_peers_connected") == 2 for k in (1, 2, 3)), "links")
        before = net.raise_alert(JAKARTA)
        net.wait_holds({before})
        old_sealing = open_home(net.home(JAKARTA)).keys().enc

        # Everyone else is offline while Jakarta rotates: they catch up across the
        # rotation from Jakarta alone, whose heartbeats they cannot read until then.
        net.devnet.stop(NAIROBI)
        net.devnet.stop(LIMA)
        rotated = net.cli_json(JAKARTA, "key", "rotate")
        assert (rotated["from_epoch"], rotated["epoch"], rotated["roster_epoch"]) == (1, 2, 1)
        keys = net.home(JAKARTA) / "keys"
        for name in ("sign-2.pem", "enc-2.pem"):
            assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
        assert net.cli_json(JAKARTA, "status")["epoch"] == 2
        after = net.raise_alert(JAKARTA)
        net.devnet.start(LIMA)
        net.wait_holds({before, after}, nodes=[LIMA, JAKARTA])
        net.devnet.start(NAIROBI)
        net.wait_holds({before, after})

        # Lima seals to Jakarta's new key: an alert restricted to Lima and Jakarta.
        restricted = net.cli_json(
            LIMA,
            *("alert", "raise", "--country", "PE", "--type", "raid"),
            *("--severity", "severe", "--urgency", "immediate", "--exclude", net.org(NAIROBI)),
        )
        ref = restricted["id"][:12]
        net.wait(lambda: _listed(net, JAKARTA, restricted["id"]), "Jakarta reading it")
        blob, pos = _stored_blob(net, LIMA, restricted["id"])
        new_sealing = open_home(net.home(JAKARTA)).keys().enc
        assert open_sealed(blob, jakarta, new_sealing, pos)
        with pytest.raises(SealError):
            open_sealed(blob, jakarta, old_sealing, pos)  # sealed to the new key only
        net.cli(JAKARTA, "alert", "claim", ref)  # signed by the new key, sealed to the audience
        net.wait(
            lambda: net.cli_json(LIMA, "alert", "show", ref)["alert"]["status"] == "claimed",
            "Lima seeing Jakarta's claim",
        )

        # Whoever still holds the old key can add nothing to Jakarta's history.
        stolen = signed_by(
            net,
            JAKARTA,
            epoch=1,
            seq=rotated["seq"] + 1,
            prev=bytes.fromhex(rotated["event_id"]),
        )
        # Sent once, live, on Jakarta's server: it reaches a node only over its own link
        # to Jakarta (no honest node relays it), which Nairobi, started last, may still be
        # making (seen once in CI: Nairobi never heard it).
        net.wait(lambda: all(net.metric(k, "rrn_peers_connected") == 2 for k in (1, 2, 3)), "links")
        inject(net, JAKARTA, "ev", stolen)
        for k in (LIMA, NAIROBI):
            net.wait(
                lambda k=k: rejected(net, k, jakarta, str(Reason.EPOCH_CUT_OFF)) >= 1,
                f"node {k} refusing the old key",
            )

        # Restarted nodes rebuild the keyring from their stores.
        for k in (JAKARTA, LIMA):
            net.devnet.stop(k)
            net.devnet.start(k)
        assert net.cli_json(JAKARTA, "status")["epoch"] == 2
        later = net.raise_alert(JAKARTA)
        net.wait_holds({later})

        # The roster records the new key: Jakarta approves with the key the roster
        # lists (epoch 1) and its new key proves possession.
        card = tmp_path / "jakarta-2.card"
        net.cli(JAKARTA, "member", "card", "--out", str(card))
        proposal = tmp_path / "record.json"
        proposed = net.cli_json(
            LIMA, "member", "propose", "--rotate", str(card), "--out", str(proposal)
        )
        net.cli(JAKARTA, "network", "sign", str(proposal))
        net.cli(LIMA, "member", "approve", "--file", str(proposal))
        net.wait(lambda: len(net.cli_json(JAKARTA, "member", "proposals")) == 1, "the proposal")
        net.cli(JAKARTA, "member", "approve", proposed["roster_id"][:12])
        for k in (1, 2, 3):
            net.wait(lambda k=k: net.roster_version(k) == 1, f"node {k} adopting roster v1")
        assert net.cli_json(JAKARTA, "status")["epoch"] == 2
        last = net.raise_alert(JAKARTA)
        net.wait_holds({before, after, later, last})
        for k in (1, 2, 3):
            assert net.cli(k, "log", "verify").startswith("ok:"), k
        again = net.cli_json(JAKARTA, "key", "rotate")
        assert (again["from_epoch"], again["epoch"]) == (2, 3), "and rotates again from there"
        assert again["roster_epoch"] == 2, "the roster lists epoch 2 now"
    finally:
        net.close()


def _listed(net: TestNetwork, k: int, alert: str) -> bool:
    return alert in {a["id"] for a in net.cli_json(k, "alert", "list")}


def _stored_blob(net: TestNetwork, k: int, event_id: str) -> tuple[Sealed, Position]:
    """The blob of a whole-sealed event as node k stores it, and where it is bound."""
    with sqlite3.connect(f"file:{net.home(k) / 'store.db'}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT payload, origin, epoch, seq, kind FROM events WHERE id = ?",
            (bytes.fromhex(event_id),),
        ).fetchone()
    assert row is not None and row[4] == "sealed", "a restricted alert is sealed whole"
    event = msgspec.msgpack.decode(bytes(row[0]), type=SealedEvent)
    return decode_sealed(event.sealed), Position(network_id(net, k), row[1], row[2], row[3])
