"""The TLS client context that trusts exactly one pinned certificate (the
certificates themselves: node/home/certs.py)."""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["pinned_context"]


def pinned_context(cert: Path) -> ssl.SSLContext:
    """A TLS client context that trusts exactly this self-signed certificate (a node's
    keys/tls.crt) and nothing else. The name is not checked: only the holder of that
    certificate's key can answer, whatever name or address was dialled."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    # Strict X.509 checking (Python 3.13's default) refuses a self-signed leaf as its
    # own trust anchor; the pin is exact, so nothing is lost without it.
    context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    context.load_verify_locations(cafile=str(cert))
    return context
