"""A node's secret keys on disk, created by `rrn init`, readable only by its owner.

Owns key generation and the files under HOME/keys (directory 0700, files 0600):
the Ed25519 event-signing key of each epoch, the X25519 sealing key, the X25519
link key from which each NATS leafnode link derives its own nkey (with the peer's
link key), the Ed25519 TLS key and self-signed certificate that peers pin, the
control-channel MAC key and the embedded nats-server password.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import NameOID

from protocol.errors import ConfigError

__all__ = [
    "Keys",
    "create_keys",
    "load_keys",
    "new_signing_key",
    "self_signed",
    "spki_sha256",
    "write_secret",
]

_SIGN_PREFIX: Final = "sign-"
_PEM: Final = serialization.Encoding.PEM
_PKCS8: Final = serialization.PrivateFormat.PKCS8


@dataclass(frozen=True)
class Keys:
    """Everything secret a node holds."""

    epoch: int
    sign: Ed25519PrivateKey
    enc: X25519PrivateKey
    link: X25519PrivateKey
    control: bytes
    nats_password: str
    integrator_password: str
    tls_cert: Path
    tls_key: Path

    def signing_keys(self) -> dict[int, Ed25519PrivateKey]:
        """Every signing key in the keys directory, by epoch."""
        keys_dir = self.tls_cert.parent
        found: dict[int, Ed25519PrivateKey] = {}
        for path in keys_dir.glob(f"{_SIGN_PREFIX}*.pem"):
            epoch = path.stem[len(_SIGN_PREFIX) :]
            key = _private(path) if epoch.isdigit() else None
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


def new_signing_key(keys_dir: Path) -> int:
    """Generate the signing key of the next epoch; its epoch number.

    The node keeps signing with the newest epoch the roster lists, so the new key
    is used only once a roster version that adds it (`rrn member propose
    --rotate`) is adopted.
    """
    epochs = [
        int(p.stem[len(_SIGN_PREFIX) :])
        for p in keys_dir.glob(f"{_SIGN_PREFIX}*.pem")
        if p.stem[len(_SIGN_PREFIX) :].isdigit()
    ]
    if not epochs:
        raise ConfigError(f"no signing key in {keys_dir}")
    epoch = max(epochs) + 1
    key = Ed25519PrivateKey.generate()
    write_secret(
        keys_dir / f"{_SIGN_PREFIX}{epoch}.pem",
        key.private_bytes(_PEM, _PKCS8, serialization.NoEncryption()),
    )
    return epoch


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


def load_keys(keys_dir: Path) -> Keys:
    """Load a node's keys, refusing files that others can read."""
    if not keys_dir.is_dir():
        raise ConfigError(f"no keys at {keys_dir} (make a home with 'rrn init')")
    epochs = sorted(
        int(p.stem[len(_SIGN_PREFIX) :])
        for p in keys_dir.glob(f"{_SIGN_PREFIX}*.pem")
        if p.stem[len(_SIGN_PREFIX) :].isdigit()
    )
    if not epochs:
        raise ConfigError(f"no signing key in {keys_dir}")
    epoch = epochs[-1]
    sign = _private(keys_dir / f"{_SIGN_PREFIX}{epoch}.pem")
    link = _private(keys_dir / "link.pem")
    enc = _private(keys_dir / "enc.pem")
    if not isinstance(sign, Ed25519PrivateKey):
        raise ConfigError(f"{keys_dir}: signing keys must be Ed25519")
    if not isinstance(enc, X25519PrivateKey) or not isinstance(link, X25519PrivateKey):
        raise ConfigError(f"{keys_dir}: enc.pem and link.pem must be X25519 keys")
    return Keys(
        epoch=epoch,
        sign=sign,
        enc=enc,
        link=link,
        control=_secret(keys_dir / "control.key"),
        nats_password=_secret(keys_dir / "nats.pass").decode(),
        integrator_password=_secret(keys_dir / "integrator.pass").decode(),
        tls_cert=keys_dir / "tls.crt",
        tls_key=keys_dir / "tls.key",
    )


def _secret(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise ConfigError(f"missing key file {path}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by others; run: chmod 600 {path}")
    return path.read_bytes()


def _private(path: Path) -> object:
    try:
        return serialization.load_pem_private_key(_secret(path), password=None)
    except ValueError as exc:
        raise ConfigError(f"{path} is not a readable private key") from exc
