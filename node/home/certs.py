"""The TLS identity peers pin: a self-signed certificate, and its key's fingerprint.

Apart from node/home/tls.py (the client context) because x509 takes ~45 ms to
import, and most commands never touch a certificate."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

__all__ = ["cert_der", "self_signed", "spki_sha256"]


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


def cert_der(cert_pem: bytes) -> bytes:
    """A PEM certificate in DER form."""
    return x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)


def spki_sha256(cert_pem: bytes) -> bytes:
    """SHA-256 of a PEM certificate's DER SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()
