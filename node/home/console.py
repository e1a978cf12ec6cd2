"""config.toml's [console]: where the node serves its web console, and how.

Owns this section's schema, its checks and its rendering (node/home/config.py
holds it in the Config tree). The console itself is node/console/.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import msgspec
from msgspec import Meta

from rrn.protocol.errors import ConfigError

__all__ = ["ConsoleConfig", "check_console", "render_console"]


class ConsoleConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The responder console (docs/CONSOLE.md): on loopback unless you mean otherwise."""

    enabled: bool = True
    host: str = "127.0.0.1"
    #: 0: any free port (the daemon writes the address to run/daemon.json).
    port: Annotated[int, Meta(ge=0, le=65535)] = 8470
    #: PEM files to serve HTTPS directly, relative to the home unless absolute.
    tls_cert: str = ""
    tls_key: str = ""
    #: The address people type when a reverse proxy terminates TLS in front of the
    #: console (https://…): cookies are then marked Secure and forms must come from it.
    public_url: str = ""
    #: A session ends after this long without a request, and after `session_max_hours`.
    session_idle_minutes: Annotated[float, Meta(gt=0, le=7 * 24 * 60)] = 12 * 60.0
    session_max_hours: Annotated[float, Meta(gt=0, le=30 * 24)] = 24.0
    #: Wrong passwords from one address before its logins of that person wait
    #: `lockout_minutes` (four times as many from anywhere lock the account).
    max_failures: Annotated[int, Meta(ge=1, le=100)] = 5
    lockout_minutes: Annotated[float, Meta(gt=0, le=24 * 60)] = 15.0


def check_console(c: ConsoleConfig) -> None:
    """Refuse a console opened beyond this host without TLS of its own or a proxy's."""
    if bool(c.tls_cert) != bool(c.tls_key):
        raise ConfigError("[console] tls_cert and tls_key go together: give both or neither")
    if c.public_url and not c.public_url.startswith("https://"):
        raise ConfigError("[console] public_url must be an https:// address")
    if c.enabled and not c.tls_cert and not _loopback(c.host):
        raise ConfigError(
            f"[console] host = {c.host!r} opens the console beyond this host, where "
            "passwords would cross the network in clear: set tls_cert and tls_key, or "
            "keep it on 127.0.0.1 behind a TLS reverse proxy (docs/OPERATIONS.md)"
        )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def render_console(c: ConsoleConfig) -> str:
    q = msgspec.json.encode
    return f"""\
[console]
# The responder console, a web page for the organisation's people (docs/CONSOLE.md).
enabled = {"true" if c.enabled else "false"}
# Keep it on loopback behind a TLS reverse proxy, or give it a certificate.
host = {q(c.host).decode()}
port = {c.port}
tls_cert = {q(c.tls_cert).decode()}
tls_key = {q(c.tls_key).decode()}
# With a reverse proxy: the https:// address people use.
public_url = {q(c.public_url).decode()}
session_idle_minutes = {c.session_idle_minutes:g}
session_max_hours = {c.session_max_hours:g}
max_failures = {c.max_failures}
lockout_minutes = {c.lockout_minutes:g}
"""
