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

import datetime
import hashlib
import ipaddress
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, overload

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import NameOID

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
    "passphrase_from_env",
    "protect_keys",
    "self_signed",
    "spki_sha256",
    "write_secret",
]

_SIGN_PREFIX: Final = "sign-"
_ENC_PREFIX: Final = "enc-"
_PEM: Final = serialization.Encoding.PEM
_PKCS8: Final = serialization.PrivateFormat.PKCS8
#: Environment variable naming the file that holds the keys' passphrase.
PASSPHRASE_ENV: Final = "RRN_PASSPHRASE_FILE"  # noqa: S105 (a variable name, not a secret)
_MIN_PASSPHRASE: Final = 12


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


@dataclass(frozen=True)
class Keys:
    """Everything secret a node holds."""

    epoch: int
    sign: Ed25519PrivateKey
    #: Every sealing key, newest first.
    sealing: tuple[X25519PrivateKey, ...]
    link: X25519PrivateKey
    control: bytes
    nats_password: str
    integrator_password: str
    tls_cert: Path
    tls_key: Path
    passphrase: bytes | None = None

    @property
    def enc(self) -> X25519PrivateKey:
        """The newest sealing key."""
        return self.sealing[0]

    def signing_keys(self) -> dict[int, Ed25519PrivateKey]:
        """Every signing key in the keys directory, by epoch."""
        keys_dir = self.tls_cert.parent
        found: dict[int, Ed25519PrivateKey] = {}
        for path in keys_dir.glob(f"{_SIGN_PREFIX}*.pem"):
            epoch = path.stem[len(_SIGN_PREFIX) :]
            key = _private(path, self.passphrase) if epoch.isdigit() else None
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
        return x509.load_pem_x509_certificate(self.tls_cert.read_bytes()).public_bytes(
            serialization.Encoding.DER
        )

    def tls_spki(self) -> bytes:
        """SHA-256 of the TLS certificate's DER SubjectPublicKeyInfo (what peers pin)."""
        return spki_sha256(self.tls_cert.read_bytes())


def _raw_pub(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def write_secret(path: Path, data: bytes) -> None:
    """Create a file readable and writable by its owner only; never overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def create_keys(keys_dir: Path, org: str, hosts: list[str]) -> None:
    """Generate every key of a new node into `keys_dir` (which must not exist).

    `hosts` are the names or addresses peers dial; the TLS certificate names
    them, because diallers check the name as well as the pinned key.
    """
    keys_dir.mkdir(mode=0o700)
    none = serialization.NoEncryption()
    sign = Ed25519PrivateKey.generate()
    write_secret(keys_dir / f"{_SIGN_PREFIX}1.pem", sign.private_bytes(_PEM, _PKCS8, none))
    write_secret(
        keys_dir / "enc.pem", X25519PrivateKey.generate().private_bytes(_PEM, _PKCS8, none)
    )
    write_secret(
        keys_dir / "link.pem", X25519PrivateKey.generate().private_bytes(_PEM, _PKCS8, none)
    )
    write_secret(keys_dir / "control.key", secrets.token_bytes(32))
    write_secret(keys_dir / "nats.pass", secrets.token_urlsafe(24).encode())
    write_secret(keys_dir / "integrator.pass", secrets.token_urlsafe(24).encode())
    tls_key = Ed25519PrivateKey.generate()
    write_secret(keys_dir / "tls.key", tls_key.private_bytes(_PEM, _PKCS8, none))
    (keys_dir / "tls.crt").write_bytes(self_signed(tls_key, org, hosts).public_bytes(_PEM))


def new_signing_key(keys_dir: Path, passphrase: bytes | None = None) -> int:
    """Generate the signing key of the next epoch; its epoch number.

    The node keeps signing with the newest epoch the roster lists, so the new key
    is used only once a roster version that adds it (`rrn member propose
    --rotate`) is adopted. If the keys are protected, the new one is too (with
    the passphrase from RRN_PASSPHRASE_FILE unless given).
    """
    current = load_keys(keys_dir, passphrase)
    epoch = max(_epochs(keys_dir, _SIGN_PREFIX)) + 1
    key = Ed25519PrivateKey.generate()
    write_secret(keys_dir / f"{_SIGN_PREFIX}{epoch}.pem", _pem(key, current.passphrase))
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
    newest = max(_epochs(keys_dir, _SIGN_PREFIX))
    path = keys_dir / f"{_SIGN_PREFIX}{newest}.pem"
    sign = _private(path, current.passphrase)
    assert isinstance(sign, Ed25519PrivateKey)
    if not unused(newest):
        newest += 1
        sign = Ed25519PrivateKey.generate()
        write_secret(keys_dir / f"{_SIGN_PREFIX}{newest}.pem", _pem(sign, current.passphrase))
    enc_path = keys_dir / f"{_ENC_PREFIX}{newest}.pem"
    if enc_path.exists():
        enc = _private(enc_path, current.passphrase)
        if not isinstance(enc, X25519PrivateKey):
            raise ConfigError(f"{enc_path} must be an X25519 key")
    else:
        enc = X25519PrivateKey.generate()
        write_secret(enc_path, _pem(enc, current.passphrase))
    _sync_dir(keys_dir)
    return newest, sign, enc


def _epochs(keys_dir: Path, prefix: str) -> list[int]:
    """The epochs of the key files with this prefix (sign-N.pem, enc-N.pem)."""
    return [
        int(p.stem[len(prefix) :])
        for p in keys_dir.glob(f"{prefix}*.pem")
        if p.stem[len(prefix) :].isdigit()
    ]


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pem(key: Ed25519PrivateKey | X25519PrivateKey, passphrase: bytes | None) -> bytes:
    algorithm: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(_PEM, _PKCS8, algorithm)


def _protected_files(keys_dir: Path) -> list[Path]:
    return [
        *sorted(keys_dir.glob(f"{_SIGN_PREFIX}*.pem")),
        keys_dir / "enc.pem",
        *sorted(keys_dir.glob(f"{_ENC_PREFIX}*.pem")),
        keys_dir / "link.pem",
    ]


def protect_keys(keys_dir: Path, old: bytes | None, new: bytes | None) -> int:
    """Re-encrypt the private keys under `new` (None: remove protection); how many.

    Each file is replaced atomically (a new 0600 file renamed over it), so a
    crash leaves every key readable under either the old or the new passphrase.
    """
    if new is not None and len(new) < _MIN_PASSPHRASE:
        raise ConfigError(f"a passphrase needs at least {_MIN_PASSPHRASE} characters")
    load_keys(keys_dir, old)  # every key opens with the old passphrase, or nothing changes
    files = _protected_files(keys_dir)
    for path in files:
        key = _private(path, old)
        assert isinstance(key, Ed25519PrivateKey | X25519PrivateKey)
        tmp = path.with_suffix(".pem.new")
        tmp.unlink(missing_ok=True)
        write_secret(tmp, _pem(key, new))
        os.replace(tmp, path)
    _sync_dir(keys_dir)
    return len(files)


def passphrase_from_env(environ: dict[str, str] | None = None) -> bytes | None:
    """The passphrase in the file RRN_PASSPHRASE_FILE names, if it is set."""
    env = os.environ if environ is None else environ
    name = env.get(PASSPHRASE_ENV)
    if not name:
        return None
    try:
        text = Path(name).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {PASSPHRASE_ENV} file {name}: {exc.strerror}") from exc
    return text.rstrip(b"\r\n") or None


def self_signed(key: Ed25519PrivateKey, org: str, hosts: list[str]) -> x509.Certificate:
    """A self-signed TLS certificate for `org`, valid for `hosts` and localhost."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"rrn-{org}")])
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for host in dict.fromkeys([*hosts, "127.0.0.1"]):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, None)
    )


def spki_sha256(cert_pem: bytes) -> bytes:
    """SHA-256 of a PEM certificate's DER SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


@dataclass(frozen=True)
class ControlSecrets:
    """What the CLI needs to talk to its daemon (no private key)."""

    control: bytes
    nats_password: str


def load_control_secrets(keys_dir: Path) -> ControlSecrets:
    """The control-channel MAC key and the local NATS password."""
    if not keys_dir.is_dir():
        raise ConfigError(f"no keys at {keys_dir} (make a home with 'rrn init')")
    return ControlSecrets(
        control=_secret(keys_dir / "control.key"),
        nats_password=_secret(keys_dir / "nats.pass").decode(),
    )


def load_keys(keys_dir: Path, passphrase: bytes | None = None) -> Keys:
    """Load a node's keys, refusing files that others can read.

    Protected keys open with `passphrase`, or the one RRN_PASSPHRASE_FILE names.
    """
    if passphrase is None:
        passphrase = passphrase_from_env()
    if not keys_dir.is_dir():
        raise ConfigError(f"no keys at {keys_dir} (make a home with 'rrn init')")
    epochs = sorted(_epochs(keys_dir, _SIGN_PREFIX))
    if not epochs:
        raise ConfigError(f"no signing key in {keys_dir}")
    epoch = epochs[-1]
    sign = _private(keys_dir / f"{_SIGN_PREFIX}{epoch}.pem", passphrase)
    link = _private(keys_dir / "link.pem", passphrase)
    sealing = [
        _private(keys_dir / f"{_ENC_PREFIX}{n}.pem", passphrase)
        for n in sorted(_epochs(keys_dir, _ENC_PREFIX), reverse=True)
    ]
    sealing.append(_private(keys_dir / "enc.pem", passphrase))
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
        control=_secret(keys_dir / "control.key"),
        nats_password=_secret(keys_dir / "nats.pass").decode(),
        integrator_password=_secret(keys_dir / "integrator.pass").decode(),
        tls_cert=keys_dir / "tls.crt",
        tls_key=keys_dir / "tls.key",
        passphrase=passphrase,
    )


def _secret(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise ConfigError(f"missing key file {path}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by others; run: chmod 600 {path}")
    return path.read_bytes()


def _private(path: Path, passphrase: bytes | None = None) -> object:
    data = _secret(path)
    encrypted = b"ENCRYPTED PRIVATE KEY" in data
    if encrypted and passphrase is None:
        raise ConfigError(
            f"{path} is protected by a passphrase: set {PASSPHRASE_ENV} to the file holding it"
        )
    try:
        return serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise ConfigError(f"the passphrase does not open {path} (wrong passphrase?)") from exc
        raise ConfigError(f"{path} is not a readable private key") from exc
