"""`rrn init`: a new node home, in a network of its own until it founds or joins one.

Owns how a home is made. It is built in a temporary sibling directory and renamed
into place, so a failed init never leaves a half-made home behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from rrn.federation.roster import make_genesis
from rrn.node.home.clock import Clock
from rrn.node.home.config import (
    Config,
    ConsoleConfig,
    FederationConfig,
    IngestConfig,
    MetricsConfig,
    NatsConfig,
    NodeConfig,
    check_org,
    check_timezone,
    render_config,
)
from rrn.node.home.keys import create_keys
from rrn.node.home.layout import Home
from rrn.node.membership.founding import own_card
from rrn.node.store.db import open_store
from rrn.node.store.rows import RosterRow
from rrn.protocol.errors import ConfigError
from rrn.protocol.roster import Role, RosterCert, encode_cert, roster_id, sign_roster

__all__ = ["init_home"]


async def init_home(
    path: Path,
    *,
    org: str,
    name: str | None,
    tz: str,
    clock: Clock,
    roles: list[Role] | None = None,
    nats_port: int = 4222,
    metrics_port: int = 9464,
    console_port: int = 8470,
    advertise: list[str] | None = None,
    listen: str | None = None,
    tls_names: list[str] | None = None,
) -> Home:
    """Create a new node home: config, keys, store and a one-member network.

    The node starts in a network of its own (a genesis roster it alone signs), so
    it can run at once; founding or joining a network with others replaces it.
    Its TLS certificate names the advertised hosts and `tls_names` (addresses that
    peers dial it through, such as a proxy: diallers check the name).
    """
    check_org(org)
    check_timezone(tz)
    display = name or org
    if not 1 <= len(display) <= 80 or any(ord(c) < 32 or ord(c) == 127 for c in display):
        raise ConfigError("--name must be 1-80 printable characters")
    staging = _staging(path)
    try:
        config = Config(
            node=NodeConfig(
                org=org, name=display, tz=tz, roles=[str(r) for r in roles or [Role.RESPONDER]]
            ),
            nats=NatsConfig(port=nats_port),
            federation=_federation(advertise or [], listen),
            metrics=MetricsConfig(port=metrics_port),
            ingest=IngestConfig(),
            console=ConsoleConfig(port=console_port),
        )
        (staging / "config.toml").write_text(render_config(config))
        for sub in ("nats", "run", "logs"):
            (staging / sub).mkdir(mode=0o700)
        hosts = [a.rsplit(":", 1)[0] for a in config.federation.advertise] + (tls_names or [])
        create_keys(staging / "keys", org, hosts)
        home = Home(staging, config)
        await _solo_network(home, [Role(r) for r in config.node.roles], clock)
        if staging.parent == path:  # an empty home made for us: fill it
            for entry in staging.iterdir():
                os.rename(entry, path / entry.name)
            staging.rmdir()
        else:
            os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Home(path, config)


def _staging(path: Path) -> Path:
    """Where the new home is built, so that a failed init leaves nothing behind: beside
    it, or inside it when it exists already, empty (systemd's StateDirectory= makes it
    so, owned by the service's user, in a parent that user cannot write)."""
    name = f".init-{secrets.token_hex(4)}"
    if path.exists():
        if not path.is_dir() or any(path.iterdir()):
            raise ConfigError(f"{path} already exists and is not empty; refusing to overwrite it")
        staging = path / name
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {path.parent}: {exc.strerror}") from exc
        staging = path.parent / f".{path.name}{name}"
    try:
        staging.mkdir(mode=0o700)
    except PermissionError:
        raise ConfigError(
            f"this user cannot create {path}: create it empty and owned by this user first "
            f"(e.g. install -d -o rrn -g rrn -m 0700 {path})"
        ) from None
    return staging


def _federation(advertise: list[str], listen: str | None) -> FederationConfig:
    for endpoint in advertise:
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"--advertise {endpoint!r} must be host:port (e.g. hr.example.org:7422)"
            )
    if listen is None:
        port = advertise[0].rsplit(":", 1)[1] if advertise else "7422"
        listen = f"0.0.0.0:{port}"
    return FederationConfig(advertise=advertise, listen=listen)


async def _solo_network(home: Home, roles: list[Role], clock: Clock) -> None:
    keys = home.keys()
    now = clock.now_ms()
    card = own_card(
        keys,
        org=home.config.node.org,
        name=home.config.node.name,
        roles=roles,
        endpoints=list(home.config.federation.advertise),
        now_ms=now,
    )
    roster_bytes = make_genesis([card], threshold=None, created_ms=now)
    approval = sign_roster(keys.sign, card.org, keys.epoch, roster_bytes)
    cert = encode_cert(RosterCert(roster=roster_bytes, approvals=[approval]))
    net = roster_id(roster_bytes)
    async with open_store(home.store_path, create=True) as store:
        await store.put_roster(RosterRow(0, net, roster_bytes, cert), now)
        await store.set_meta("net", net)
