"""config.toml's [[webhooks]] and [alertmanager]: where the node pushes its notices.

Owns these sections' schema, their checks and their rendering (node/home/config.py
holds them in the Config tree). Delivery is node/integrations/.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from msgspec import Meta

from rrn.protocol.errors import ConfigError

__all__ = [
    "NOTICE_KINDS",
    "AlertmanagerConfig",
    "WebhookConfig",
    "check_hooks",
    "render_hooks",
]

#: The notice types a node sends (node/alerting/notices.py).
NOTICE_KINDS: Final = ("targeted", "pool", "escalated", "unclaimed", "collective", "ask", "reask")
#: What Alertmanager gets unless told: an alert fires there only while nobody holds it,
#: so asks offered to supporters and collective proposals (on alerts often claimed
#: already) go to webhooks.
_ALERTMANAGER_KINDS: Final = NOTICE_KINDS[:4]
_NAME: Final = r"^[a-z][a-z0-9-]{0,31}$"


class WebhookConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One receiver of signed notices (Standard Webhooks), and what it wants."""

    name: Annotated[str, Meta(pattern=_NAME)]
    url: str
    #: A file holding the shared secret (whsec_…, `rrn webhook secret NAME` makes one),
    #: relative to the node home unless absolute; mode 0600.
    secret_file: str
    #: Notice types to send (default: all).
    notices: list[str] = msgspec.field(default_factory=lambda: list(NOTICE_KINDS))
    #: Only alerts of these severities, urgencies, countries, incident types (empty: all).
    severity: list[str] = []
    urgency: list[str] = []
    country: list[str] = []
    incident_types: list[str] = []
    #: Also drills (exercise alerts).
    exercise: bool = True
    timeout_s: Annotated[float, Meta(gt=0, le=120)] = 10.0
    #: Retried with growing pauses this long, then kept as a dead letter to replay.
    give_up_after_s: Annotated[float, Meta(ge=1, le=30 * 86400)] = 86400.0


class AlertmanagerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A real Alertmanager that routes this node's notices to people (its API v2)."""

    url: str
    notices: list[str] = msgspec.field(default_factory=lambda: list(_ALERTMANAGER_KINDS))
    #: A link the alert carries (e.g. the console); {alert} is replaced by the alert id.
    link: str = ""
    #: How often firing alerts are sent again (Alertmanager resolves silent ones).
    resend_s: Annotated[float, Meta(ge=5, le=3600)] = 60.0


def check_hooks(webhooks: list[WebhookConfig], alertmanager: AlertmanagerConfig | None) -> None:
    """ConfigError for what the schema cannot judge alone."""
    names = [w.name for w in webhooks]
    if len(set(names)) != len(names):
        raise ConfigError("[[webhooks]] names must differ from one another")
    for url, section, kinds in [
        *((w.url, f"[[webhooks]] {w.name}", w.notices) for w in webhooks),
        *(
            [(alertmanager.url, "[alertmanager]", alertmanager.notices)]
            if alertmanager is not None
            else []
        ),
    ]:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{section}: url must start with http:// or https://")
        unknown = sorted(set(kinds) - set(NOTICE_KINDS))
        if unknown:
            raise ConfigError(f"{section}: unknown notice types {unknown}; use {NOTICE_KINDS}")


def render_hooks(webhooks: list[WebhookConfig], alertmanager: AlertmanagerConfig | None) -> str:
    """The sections as TOML (none when not configured)."""
    tables: list[tuple[str, msgspec.Struct]] = [("[[webhooks]]", w) for w in webhooks]
    if alertmanager is not None:
        tables.append(("[alertmanager]", alertmanager))
    out = []
    for head, section in tables:
        lines = [head]
        for key, value in msgspec.structs.asdict(section).items():
            lines.append(f"{key} = {_toml(value)}")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
