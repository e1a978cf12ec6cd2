"""Key files on disk: written 0600 and never overwritten, read only when no one else
can, and opened with the passphrase that protects the private ones.

The passphrase comes from the file RRN_PASSPHRASE_FILE names (e.g. a systemd
credential).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.protocol.errors import ConfigError

__all__ = [
    "ENC_PREFIX",
    "MIN_PASSPHRASE",
    "PASSPHRASE_ENV",
    "SIGN_PREFIX",
    "epochs_of",
    "passphrase_from_env",
    "pem_of",
    "read_private",
    "read_secret",
    "sync_dir",
    "write_secret",
]


SIGN_PREFIX: Final = "sign-"


ENC_PREFIX: Final = "enc-"


#: Environment variable naming the file that holds the keys' passphrase.
PASSPHRASE_ENV: Final = "RRN_PASSPHRASE_FILE"  # noqa: S105 (a variable name, not a secret)


MIN_PASSPHRASE: Final = 12


def write_secret(path: Path, data: bytes) -> None:
    """Create a file readable and writable by its owner only; never overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def epochs_of(keys_dir: Path, prefix: str) -> list[int]:
    """The epochs of the key files with this prefix (sign-N.pem, enc-N.pem)."""
    return [
        int(p.stem[len(prefix) :])
        for p in keys_dir.glob(f"{prefix}*.pem")
        if p.stem[len(prefix) :].isdigit()
    ]


def sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pem_of(key: Ed25519PrivateKey | X25519PrivateKey, passphrase: bytes | None) -> bytes:
    """The key in PKCS8 PEM, encrypted with `passphrase` if there is one."""
    # Here, not at the top: cryptography's serialization package loads its SSH
    # support too (a fifth of a CLI command's start), and most commands read no key.
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    algorithm: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algorithm
    )


def passphrase_from_env(environ: dict[str, str] | None = None) -> bytes | None:
    """The passphrase in the file RRN_PASSPHRASE_FILE names, if it is set."""
    env = os.environ if environ is None else environ
    name = env.get(PASSPHRASE_ENV)
    if not name:
        return None
    path = Path(name)
    try:
        mode = path.stat().st_mode
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {PASSPHRASE_ENV} file {name}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{PASSPHRASE_ENV} file {name} can be read by others; run: chmod 600 {name} "
            "(or hand it over as a systemd credential)"
        )
    return text.rstrip(b"\r\n") or None


def read_secret(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise ConfigError(f"missing key file {path}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by others; run: chmod 600 {path}")
    return path.read_bytes()


def read_private(path: Path, passphrase: bytes | None = None) -> object:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 (see pem_of)

    data = read_secret(path)
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
