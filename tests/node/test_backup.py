"""Backups that cannot fork, on a real network: a node restored from yesterday's copy
signs nothing until its peers confirm it holds its whole own chain, then goes on
with no fork and nothing lost."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tests.netkit import TestNetwork
from tests.procs import init, rrn, rrn_json

pytestmark = pytest.mark.integration


def test_a_restored_node_waits_for_its_peers_then_goes_on_without_a_fork(
    tmp_path: Path,
) -> None:
    n = TestNetwork.create(tmp_path / "net", 3, nat=set())
    try:
        first = n.raise_alert(1)
        n.wait_holds({first})
        backup = tmp_path / "lima.backup"
        n.cli_json(1, "user", "add", "rosa", "--role", "coordinator")  # the console's people
        made = n.cli_json(1, "backup", "--out", str(backup))  # the daemon runs meanwhile
        assert backup.stat().st_mode & 0o777 == 0o600 and made["own_heads"] == {"1": 1}
        assert "console.db" in made["files"]
        later = {n.raise_alert(1), n.raise_alert(1)}  # signed after the copy
        n.wait_holds(later)
        for k in (1, 2, 3):
            n.devnet.stop(k)
        home = n.home(1)
        home.rename(home.with_name(home.name + ".lost"))
        restored = rrn_json("restore", str(backup), "--home", home, "--json")
        assert restored["org"] == n.org(1)
        assert [u["name"] for u in n.cli_json(1, "user", "list")] == ["rosa"]

        n.devnet.start(1)  # alone: nobody can confirm its chain
        blocked = n.cli_json(1, "status")["appends_blocked"]
        assert blocked and "restored from a backup" in blocked and "0 of 2" in blocked
        refused = rrn("alert", "raise", "--country", "PE", "--type", "raid", "--severity",
                      "moderate", "--urgency", "days", "--home", home)  # fmt: skip
        assert refused.returncode == 1 and "restored from a backup" in refused.stderr

        n.devnet.start(2)
        n.devnet.start(3)
        n.wait(lambda: n.cli_json(1, "status")["appends_blocked"] is None, "peers to confirm")
        assert later <= {a["id"] for a in n.cli_json(1, "alert", "list", "--all")}
        after = n.raise_alert(1)
        n.wait_holds({after})
        for k in (1, 2, 3):
            assert n.metric(k, "rrn_ingest_fork_proofs_total") == 0
            assert n.cli(k, "log", "verify").startswith("ok:")
        n.devnet.stop(1)
        n.devnet.start(1)  # confirmed once: a restart does not wait again
        assert n.cli_json(1, "status")["appends_blocked"] is None
    finally:
        n.close()


def _archive(path: Path, names: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in names.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def test_restore_refuses_what_is_not_a_clean_backup(tmp_path: Path) -> None:
    home = init(tmp_path / "lima", "lima-hr")
    backup = tmp_path / "b"
    made = rrn("backup", "--out", str(backup), "--home", home)  # a stopped node: fine too
    assert made.returncode == 0, made.stderr
    busy = rrn("restore", str(backup), "--home", home)
    assert busy.returncode == 1 and "is not empty" in busy.stderr
    with tarfile.open(backup) as tar:
        manifest = tar.extractfile("rrn-backup.json")
        assert manifest is not None
        good = manifest.read()
    evil = tmp_path / "evil"
    _archive(evil, {"rrn-backup.json": good, "../escaped": b"x", "store.db": b""})
    refused = rrn("restore", str(evil), "--home", tmp_path / "new")
    assert refused.returncode == 1 and "which no rrn backup holds" in refused.stderr
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "new").exists()
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a backup")
    refused = rrn("restore", str(junk), "--home", tmp_path / "new")
    assert refused.returncode == 1 and "not an rrn backup" in refused.stderr
