"""A node's secret keys on disk, created by `rrn init`, readable only by its owner.

Owns key generation and the files under HOME/keys (directory 0700, files 0600):
the Ed25519 event-signing key of each epoch (sign-N.pem), the X25519 sealing
keys (enc.pem, and enc-N.pem made by a rotation to epoch N; older ones stay,
to open what was sealed to them), the X25519
link key from which each NATS leafnode link derives its own nkey (with the peer's
link key), the Ed25519 TLS key and self-signed certificate that peers pin, the
control-channel MAC key and the embedded nats-server password.

The signing, sealing and link keys can be protected by a passphrase (PKCS#8
encryption, `rrn key protect`); the node then reads the passphrase from the file
named by RRN_PASSPHRASE_FILE (e.g. a systemd credential). The TLS key stays
unencrypted because nats-server reads it itself; the MAC key and passwords are
local secrets protected by file modes only.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import overload

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.node.home.keyfiles import (
    ENC_PREFIX,
    MIN_PASSPHRASE,
    SIGN_PREFIX,
    epochs_of,
    passphrase_from_env,
    pem_of,
    read_private,
    read_secret,
    sync_dir,
    write_secret,
)
from rrn.protocol.errors import ConfigError

__all__ = [
    "ControlSecrets",
    "Keys",
    "SealingKeys",
    "create_keys",
    "load_control_secrets",
    "load_keys",
    "new_signing_key",
    "next_keys",
    "protect_keys",
]


class SealingKeys(Sequence[X25519PrivateKey]):
    """A node's X25519 sealing keys, newest first: it seals to itself with the newest
    and opens with any. Shared by the daemon's parts; a key rotation adds to it."""

    def __init__(self, keys: Sequence[X25519PrivateKey]) -> None:
        if not keys:
            raise ConfigError("a node needs a sealing key")
        self._keys = list(keys)

    @overload
    def __getitem__(self, index: int) -> X25519PrivateKey: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[X25519PrivateKey]: ...
    def __getitem__(self, index: int | slice) -> X25519PrivateKey | Sequence[X25519PrivateKey]:
        return self._keys[index]

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def current(self) -> X25519PrivateKey:
        """The newest sealing key."""
        return self._keys[0]

    def add(self, key: X25519PrivateKey) -> None:
        """Make `key` the newest (after a rotation); the older ones stay for opening."""
        pub = key.public_key().public_bytes_raw()
        if all(k.public_key().public_bytes_raw() != pub for k in self._keys):
            self._keys.insert(0, key)


class Keys(msgspec.Struct, frozen=True):
    """Everything secret a node holds."""

    epoch: int
    sign: Ed25519PrivateKey
    #: Every sealing key, newest first.
    sealing: tuple[X25519PrivateKey, ...]
    link: X25519PrivateKey
    control: bytes
    nats_password: str
    tls_cert: Path
    tls_key: Path
    passphrase: bytes | None = None

    def __repr__(self) -> str:  # the MAC key, password and passphrase never in a log
        return f"Keys(epoch={self.epoch}, keys dir {self.tls_cert.parent})"

    @property
    def enc(self) -> X25519PrivateKey:
        """The newest sealing key."""
        return self.sealing[0]

    def signing_keys(self) -> dict[int, Ed25519PrivateKey]:
        """Every signing key in the keys directory, by epoch."""
        keys_dir = self.tls_cert.parent
        found: dict[int, Ed25519PrivateKey] = {}
        for path in keys_dir.glob(f"{SIGN_PREFIX}*.pem"):
            epoch = path.stem[len(SIGN_PREFIX) :]
            key = read_private(path, self.passphrase) if epoch.isdigit() else None
            if isinstance(key, Ed25519PrivateKey):
                found[int(epoch)] = key
        return found

    def sign_pub(self) -> bytes:
        """Raw public bytes of the current signing key."""
        return _raw_pub(self.sign)

    def link_pub(self) -> bytes:
        """Raw public bytes of the X25519 link key."""
        return self.link.public_key().public_bytes_raw()

    def enc_pub(self) -> bytes:
        """Raw public bytes of the X25519 sealing key."""
        return self.enc.public_key().public_bytes_raw()

    def tls_cert_der(self) -> bytes:
        """The TLS certificate in DER form (what goes in the card)."""
        from rrn.node.home import certs  # noqa: PLC0415 - see create_keys

        return certs.cert_der(self.tls_cert.read_bytes())

    def tls_spki(self) -> bytes:
        """SHA-256 of the TLS certificate's DER SubjectPublicKeyInfo (what peers pin)."""
        from rrn.node.home import certs  # noqa: PLC0415 - see create_keys

        return certs.spki_sha256(self.tls_cert.read_bytes())

    def tls_key_protected(self) -> bool:
        """Whether the TLS key is under the passphrase (nats-server then needs a copy)."""
        return b"ENCRYPTED PRIVATE KEY" in read_secret(self.tls_key)

    def tls_key_plain(self) -> bytes:
        """The TLS key without its passphrase, in PEM, for nats-server to read."""
        key = read_private(self.tls_key, self.passphrase)
        assert isinstance(key, Ed25519PrivateKey)
        return pem_of(key, None)


def _raw_pub(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def create_keys(keys_dir: Path, org: str, hosts: list[str]) -> None:
    """Generate every key of a new node into `keys_dir` (which must not exist).

    `hosts` are the names or addresses peers dial; the TLS certificate names
    them, because diallers check the name as well as the pinned key.
    """
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: PLC0415 (keyfiles.pem_of)

    keys_dir.mkdir(mode=0o700)
    sign = Ed25519PrivateKey.generate()
    write_secret(keys_dir / f"{SIGN_PREFIX}1.pem", pem_of(sign, None))
    write_secret(keys_dir / "enc.pem", pem_of(X25519PrivateKey.generate(), None))
    write_secret(keys_dir / "link.pem", pem_of(X25519PrivateKey.generate(), None))
    write_secret(keys_dir / "control.key", secrets.token_bytes(32))
    write_secret(keys_dir / "nats.pass", secrets.token_urlsafe(24).encode())
    tls_key = Ed25519PrivateKey.generate()
    write_secret(keys_dir / "tls.key", pem_of(tls_key, None))
    # Loaded here, not with this module: x509 costs every CLI command ~45 ms to import
    # (every command opens the home's keys; few touch the certificate).
    from rrn.node.home import certs  # noqa: PLC0415

    (keys_dir / "tls.crt").write_bytes(
        certs.self_signed(tls_key, org, hosts).public_bytes(Encoding.PEM)
    )


def new_signing_key(keys_dir: Path, passphrase: bytes | None = None) -> int:
    """Generate the signing key of the next epoch; its epoch number.

    The node keeps signing with the newest epoch the roster lists, so the new key
    is used only once a roster version that adds it (`rrn member propose
    --rotate`) is adopted. If the keys are protected, the new one is too (with
    the passphrase from RRN_PASSPHRASE_FILE unless given).
    """
    current = load_keys(keys_dir, passphrase)
    epoch = max(epochs_of(keys_dir, SIGN_PREFIX)) + 1
    key = Ed25519PrivateKey.generate()
    write_secret(keys_dir / f"{SIGN_PREFIX}{epoch}.pem", pem_of(key, current.passphrase))
    return epoch


def next_keys(
    keys_dir: Path, unused: Callable[[int], bool], passphrase: bytes | None = None
) -> tuple[int, Ed25519PrivateKey, X25519PrivateKey]:
    """The signing and sealing keys of this node's next epoch, made (0600) if need be.

    The newest signing key is reused while `unused(epoch)` says nobody knows
    it yet (made by `rrn member new-key`, or by a rotation that was interrupted
    before its event was signed), so that repeating a rotation does not pile up
    keys; otherwise the next epoch is made. Its sealing key is enc-EPOCH.pem. Both
    files are on disk (fsynced) before the caller signs anything naming them.
    """
    current = load_keys(keys_dir, passphrase)
    newest = max(epochs_of(keys_dir, SIGN_PREFIX))
    path = keys_dir / f"{SIGN_PREFIX}{newest}.pem"
    sign = read_private(path, current.passphrase)
    assert isinstance(sign, Ed25519PrivateKey)
    if not unused(newest):
        newest += 1
        sign = Ed25519PrivateKey.generate()
        write_secret(keys_dir / f"{SIGN_PREFIX}{newest}.pem", pem_of(sign, current.passphrase))
    enc_path = keys_dir / f"{ENC_PREFIX}{newest}.pem"
    if enc_path.exists():
        enc = read_private(enc_path, current.passphrase)
        if not isinstance(enc, X25519PrivateKey):
            raise ConfigError(f"{enc_path} must be an X25519 key")
    else:
        enc = X25519PrivateKey.generate()
        write_secret(enc_path, pem_of(enc, current.passphrase))
    sync_dir(keys_dir)
    return newest, sign, enc


def _protected_files(keys_dir: Path) -> list[Path]:
    return [
        *sorted(keys_dir.glob(f"{SIGN_PREFIX}*.pem")),
        keys_dir / "enc.pem",
        *sorted(keys_dir.glob(f"{ENC_PREFIX}*.pem")),
        keys_dir / "link.pem",
        keys_dir / "tls.key",
    ]


def protect_keys(keys_dir: Path, old: bytes | None, new: bytes | None) -> int:
    """Re-encrypt the private keys under `new` (None: remove protection); how many.

    Each file is replaced atomically (a new 0600 file renamed over it), so a
    crash leaves every key readable under either the old or the new passphrase.
    """
    if new is not None and len(new) < MIN_PASSPHRASE:
        raise ConfigError(f"a passphrase needs at least {MIN_PASSPHRASE} characters")
    load_keys(keys_dir, old)  # every key opens with the old passphrase, or nothing changes
    files = _protected_files(keys_dir)
    for path in files:
        key = read_private(path, old)
        assert isinstance(key, Ed25519PrivateKey | X25519PrivateKey)
        tmp = path.with_name(path.name + ".new")
        tmp.unlink(missing_ok=True)
        write_secret(tmp, pem_of(key, new))
        os.replace(tmp, path)
    sync_dir(keys_dir)
    return len(files)


class ControlSecrets(msgspec.Struct, frozen=True):
    """What the CLI needs to talk to its daemon (no private key)."""

    control: bytes
    nats_password: str

    def __repr__(self) -> str:  # never the MAC key or the password
        return "ControlSecrets(hidden)"


def load_control_secrets(keys_dir: Path) -> ControlSecrets:
    """The control-channel MAC key and the local NATS password."""
    if not keys_dir.is_dir():
        raise ConfigError(f"no keys at {keys_dir} (make a home with 'rrn init')")
    return ControlSecrets(
        control=read_secret(keys_dir / "control.key"),
        nats_password=read_secret(keys_dir / "nats.pass").decode(),
    )


def load_keys(keys_dir: Path, passphrase: bytes | None = None) -> Keys:
    """Load a node's keys, refusing files that others can read.

    Protected keys open with `passphrase`, or the one RRN_PASSPHRASE_FILE names.
    """
    if passphrase is None:
        passphrase = passphrase_from_env()
    if not keys_dir.is_dir():
        raise ConfigError(f"no keys at {keys_dir} (make a home with 'rrn init')")
    epochs = sorted(epochs_of(keys_dir, SIGN_PREFIX))
    if not epochs:
        raise ConfigError(f"no signing key in {keys_dir}")
    epoch = epochs[-1]
    sign = read_private(keys_dir / f"{SIGN_PREFIX}{epoch}.pem", passphrase)
    link = read_private(keys_dir / "link.pem", passphrase)
    sealing = [
        read_private(keys_dir / f"{ENC_PREFIX}{n}.pem", passphrase)
        for n in sorted(epochs_of(keys_dir, ENC_PREFIX), reverse=True)
    ]
    sealing.append(read_private(keys_dir / "enc.pem", passphrase))
    if not isinstance(sign, Ed25519PrivateKey):
        raise ConfigError(f"{keys_dir}: signing keys must be Ed25519")
    if not isinstance(link, X25519PrivateKey) or not all(
        isinstance(k, X25519PrivateKey) for k in sealing
    ):
        raise ConfigError(f"{keys_dir}: enc*.pem and link.pem must be X25519 keys")
    enc_keys = tuple(k for k in sealing if isinstance(k, X25519PrivateKey))
    return Keys(
        epoch=epoch,
        sign=sign,
        sealing=enc_keys,
        link=link,
        control=read_secret(keys_dir / "control.key"),
        nats_password=read_secret(keys_dir / "nats.pass").decode(),
        tls_cert=keys_dir / "tls.crt",
        tls_key=keys_dir / "tls.key",
        passphrase=passphrase,
    )
