"""rrn log verify trusts nothing a store says beyond its signed bytes, and an export says
what a reader needs to notice a dropped tail. Real sqlite stores, tampered by hand."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from rrn.node.store.audit import export_lines, verify_store
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import open_envelope, sign_event
from rrn.protocol.roster import encode_cert
from tests.node.conftest import running_pipeline
from tests.node.pipeline.test_ingest_rotation import NAIROBI, _all, _rotated_chain
from tests.support import Chain, Net, network, raised


async def _store(tmp_path: Path, tn: Net, n: int = 3) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "s.db"
    async with running_pipeline(db, tn) as p:
        await _all(p, list(Chain(tn, NAIROBI).lifecycle(n)))
    return db


async def test_a_sound_store_verifies(tmp_path: Path, tn: Net) -> None:
    report = await verify_store(await _store(tmp_path, tn))
    assert report.ok and report.events == 9 and report.chains == 1


async def test_an_old_key_signing_after_its_rotation_is_caught(tmp_path: Path, tn: Net) -> None:
    """Put in by hand after the rotation (ingest refuses it): verify learns the rotation as
    it walks the chain, so the old key's event after it fails, naming it."""
    events, stolen = _rotated_chain(tn)
    db = tmp_path / "s.db"
    async with running_pipeline(db, tn) as p:
        await _all(p, events)
    h = stolen.header
    with sqlite3.connect(db) as con:
        con.execute(
            "INSERT INTO events (id, origin, epoch, seq, kind, wall_ms, header, sig, payload, "
            "status, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)",
            (stolen.id, h.origin, h.epoch, h.seq, h.kind, h.wall_ms, stolen.header_bytes,
             stolen.sig, stolen.payload),
        )  # fmt: skip
        con.execute(
            "UPDATE heads SET seq = 3, id = ? WHERE origin = ? AND epoch = 1", (stolen.id, NAIROBI)
        )
    report = await verify_store(db)
    assert not report.ok and report.first_bad is not None
    assert f"event {NAIROBI}/1/3" in report.first_bad and "epoch_cut_off" in report.first_bad


async def test_columns_that_do_not_match_the_signed_header_are_caught(
    tmp_path: Path, tn: Net
) -> None:
    for column, value in (("id", bytes(32)), ("kind", "alert.resolved"), ("wall_ms", 1)):
        db = await _store(tmp_path / column, tn)
        with sqlite3.connect(db) as con:
            con.execute(f"UPDATE events SET {column} = ? WHERE seq = 2", (value,))
        report = await verify_store(db)
        assert report.first_bad is not None, column
        assert f"event {NAIROBI}/1/2" in report.first_bad
        assert "do not match its signed header" in report.first_bad


async def test_a_malformed_header_is_named_by_its_position(tmp_path: Path, tn: Net) -> None:
    db = await _store(tmp_path, tn)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE events SET header = ? WHERE seq = 4", (encode([1, 2, 3]),))
    report = await verify_store(db)
    assert report.first_bad is not None
    assert report.first_bad.startswith(f"event {NAIROBI}/1/4: its header does not decode")


async def test_a_deleted_roster_row_is_noticed(tmp_path: Path, tn: Net) -> None:
    """An event names roster version 1; with that roster's row gone the store would
    verify at version 0, under which the event could not have been signed."""
    e = Chain(tn, "jakarta-pb").next(raised(1))
    named = sign_event(
        tn.keys["jakarta-pb"], net=tn.net, origin="jakarta-pb", epoch=1, seq=1, prev=None,
        kind="alert.raised", wall_ms=e.header.wall_ms, roster_ver=1, payload=e.payload or b"",
    )  # fmt: skip
    db = tmp_path / "s.db"
    async with running_pipeline(db, tn) as p:
        await _all(p, [named])
    report = await verify_store(db)
    assert report.first_bad is not None and "a roster row is missing" in report.first_bad


async def test_an_export_names_every_chain_head_and_held_event(tmp_path: Path, tn: Net) -> None:
    db = tmp_path / "s.db"
    chain = Chain(tn, NAIROBI)
    events = list(chain.lifecycle(2))
    async with running_pipeline(db, tn) as p:
        await _all(p, events[:3] + events[4:])  # seq 4 missing: 5 and 6 wait behind it
    lines = [json.loads(line) async for line in export_lines(db)]
    kinds = [line["type"] for line in lines]
    assert kinds == ["roster", "head", "event", "event", "event", "held", "held"]
    head = lines[1]
    assert (head["origin"], head["epoch"], head["seq"]) == (NAIROBI, 1, 3)
    assert head["id"] == events[2].id.hex()
    assert [line["seq"] for line in lines if line["type"] == "held"] == [5, 6]
    assert {line["status"] for line in lines if line["type"] == "held"} == {"held"}


async def test_the_export_vector_is_what_a_node_writes(tmp_path: Path) -> None:
    """tests/vectors/events.json "export": the same events through a real pipeline and
    store give exactly the published lines."""
    from tests.protocol.test_vectors import VECTORS
    from tests.vectors.generate import ORGS

    vector = VECTORS["export"]
    tn = network(*ORGS)
    assert encode_cert(tn.cert).hex() == VECTORS["network"]["genesis_cert"]
    db = tmp_path / "s.db"
    async with running_pipeline(db, tn, me="lima-hr") as p:
        await _all(p, [open_envelope(bytes.fromhex(e)) for e in vector["received"]])
    assert [line async for line in export_lines(db)] == vector["lines"]
