"""Private keys at rest: passphrase protection, and what a node says without it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rrn.node.home.keys import (
    create_keys,
    load_control_secrets,
    load_keys,
    new_signing_key,
    next_keys,
    protect_keys,
)
from rrn.protocol.errors import ConfigError
from tests.procs import Daemon, init, rrn, rrn_ok

PASS = b"correct horse battery staple"


def _pubs(keys_dir: Path, passphrase: bytes | None) -> tuple[bytes, bytes, bytes]:
    k = load_keys(keys_dir, passphrase)
    return k.sign_pub(), k.enc_pub(), k.link_pub()


def test_protected_keys_open_only_with_the_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RRN_PASSPHRASE_FILE", raising=False)
    keys = tmp_path / "keys"
    create_keys(keys, "lima-hr", [])
    before = _pubs(keys, None)
    assert protect_keys(keys, None, PASS) == 4
    for name in ("sign-1.pem", "enc.pem", "link.pem", "tls.key"):
        data = (keys / name).read_bytes()
        assert b"ENCRYPTED PRIVATE KEY" in data
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600

    with pytest.raises(ConfigError, match="protected by a passphrase"):
        load_keys(keys)
    with pytest.raises(ConfigError, match="wrong passphrase"):
        load_keys(keys, b"not the right passphrase")
    assert _pubs(keys, PASS) == before

    pass_file = tmp_path / "pass"
    pass_file.write_bytes(PASS + b"\n")
    pass_file.chmod(0o644)
    monkeypatch.setenv("RRN_PASSPHRASE_FILE", str(pass_file))
    with pytest.raises(ConfigError, match=f"can be read by others; run: chmod 600 {pass_file}"):
        load_keys(keys)
    pass_file.chmod(0o600)
    assert _pubs(keys, None) == before, "read from the file RRN_PASSPHRASE_FILE names"
    epoch = new_signing_key(keys)
    assert b"ENCRYPTED" in (keys / f"sign-{epoch}.pem").read_bytes(), "new keys stay protected"
    assert set(load_keys(keys).signing_keys()) == {1, epoch}

    with pytest.raises(ConfigError, match="at least 12"):
        protect_keys(keys, PASS, b"short")
    protect_keys(keys, PASS, None)
    monkeypatch.delenv("RRN_PASSPHRASE_FILE")
    assert _pubs(keys, None)[1:] == before[1:]
    assert b"ENCRYPTED" not in (keys / "enc.pem").read_bytes()


def test_a_rotation_makes_protected_keys_once_and_keeps_the_old_sealing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RRN_PASSPHRASE_FILE", raising=False)
    keys = tmp_path / "keys"
    create_keys(keys, "lima-hr", [])
    protect_keys(keys, None, PASS)
    old_enc = load_keys(keys, PASS).enc_pub()

    epoch, sign, enc = next_keys(keys, lambda e: False, PASS)
    assert epoch == 2
    for name in ("sign-2.pem", "enc-2.pem"):
        assert b"ENCRYPTED PRIVATE KEY" in (keys / name).read_bytes(), "new keys stay protected"
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    loaded = load_keys(keys, PASS)
    assert loaded.epoch == 2 and loaded.sign_pub() == sign.public_key().public_bytes_raw()
    opened = [k.public_key().public_bytes_raw() for k in loaded.sealing]
    assert opened == [enc.public_key().public_bytes_raw(), old_enc], "newest first, old kept"

    # Interrupted before the rotation was signed: the same keys again, not a third epoch.
    again = next_keys(keys, lambda e: e == 2, PASS)
    assert again[0] == 2 and again[1].public_key().public_bytes_raw() == loaded.sign_pub()
    assert again[2].public_key().public_bytes_raw() == opened[0]
    assert next_keys(keys, lambda e: False, PASS)[0] == 3
    assert protect_keys(keys, PASS, PASS + b"!") == 8, "rotated keys change passphrase too"


@pytest.mark.integration
def test_a_node_with_protected_keys_needs_its_passphrase_to_start(tmp_path: Path) -> None:
    home = init(tmp_path / "lima", "lima-hr")
    pass_file = tmp_path / "pass"
    pass_file.write_bytes(PASS)
    pass_file.chmod(0o600)
    said = rrn_ok("key", "protect", "--home", home, "--passphrase-file", pass_file)
    assert "4 private keys encrypted" in said and "RRN_PASSPHRASE_FILE" in said

    refused = rrn("run", "--home", home, timeout=30)
    assert refused.returncode == 1
    assert "protected by a passphrase: set RRN_PASSPHRASE_FILE" in refused.stderr
    assert PASS.decode() not in refused.stderr

    daemon = Daemon(home, env={"RRN_PASSPHRASE_FILE": str(pass_file)}).start()
    try:
        assert "lima-hr" in rrn_ok("status", "--home", home)
        busy = rrn("key", "protect", "--home", home, "--remove")
        assert busy.returncode == 1 and "stop the daemon first" in busy.stderr
        # nats-server reads its TLS key and link credentials only while it runs.
        assert (home / "run" / "tls.key").exists()
        assert (home / "nats" / "nats-server.conf").exists()
    finally:
        assert daemon.stop() == 0
    assert not (home / "run" / "tls.key").exists(), "the TLS key is not left without its passphrase"
    assert not (home / "nats" / "nats-server.conf").exists(), "link seeds are not left on disk"
    assert b"ENCRYPTED PRIVATE KEY" in (home / "keys" / "tls.key").read_bytes()


def test_printed_keys_show_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A traceback or a debug line that prints the keys must not carry the control
    # channel's MAC key, the local NATS password or the passphrase.
    monkeypatch.delenv("RRN_PASSPHRASE_FILE", raising=False)
    keys_dir = tmp_path / "keys"
    create_keys(keys_dir, "lima-hr", [])
    protect_keys(keys_dir, None, PASS)
    keys, secrets = load_keys(keys_dir, PASS), load_control_secrets(keys_dir)
    assert keys.control == secrets.control and keys.passphrase == PASS
    for shown in (repr(keys), str(keys), repr(secrets), f"{[keys, secrets]}"):
        for secret in (keys.control, keys.nats_password.encode(), PASS):
            assert secret.hex() not in shown and repr(secret)[2:-1] not in shown, shown
            assert secret.decode("latin-1") not in shown, shown
