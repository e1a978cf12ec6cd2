"""What the commands that report a small outcome print with --json.

Owns those documents' types, so that each has a published JSON Schema
(node/cli/schema.py, docs/schemas/) generated from the type that prints it. The
larger documents (alerts, status, peers, backups…) are the control channel's own
types in node/ops/ and node/integrations/.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "AlertForgotten",
    "CardWritten",
    "CoverageDeclaredInfo",
    "DefenderForgotten",
    "DefenderIdentity",
    "DevnetInfo",
    "DevnetNode",
    "DevnetNodeInfo",
    "DevnetRemoved",
    "HomeMade",
    "IntegratorRevoked",
    "KeyMade",
    "KeysProtected",
    "LogExported",
    "LogVerified",
    "NetworkAdopted",
    "NetworkExported",
    "RosterMade",
    "RosterSigned",
    "WebhookSecret",
]


class HomeMade(msgspec.Struct, frozen=True, kw_only=True):
    """rrn init: the home made, for which member."""

    home: str
    org: str


class CoverageDeclaredInfo(msgspec.Struct, frozen=True, kw_only=True):
    """rrn coverage declare: the declaration signed (its event's seq in this chain)."""

    seq: int
    tz: str
    windows: int
    exceptions: int


class DevnetNode(msgspec.Struct, frozen=True, kw_only=True):
    """One node of a devnet; pid None while it is stopped."""

    node: int
    org: str
    tz: str
    nat: bool
    home: str
    pid: int | None
    #: The web console's address (while running).
    console_url: str | None = None
    #: `rrn devnet up` only: the first person of each console (an admin) and their
    #: one-time password, replaced at the first login.
    console_user: str | None = None
    one_time_password: str | None = None
    #: A WAN devnet's node: its own address, in its own network namespace.
    address: str | None = None
    namespace: str | None = None


class DevnetInfo(msgspec.Struct, frozen=True, kw_only=True):
    """rrn devnet up / status."""

    dir: str
    nodes: list[DevnetNode]


class PathFaults(msgspec.Struct, frozen=True, kw_only=True):
    """What one direction of a path does (node/devnet/faults.py)."""

    delay_ms: float
    jitter_ms: float
    kbit_s: float
    loss: float
    reset: float
    cut: bool


class DevnetPath(msgspec.Struct, frozen=True, kw_only=True):
    """One direct link of a WAN devnet: `dialler>acceptor`, each direction's faults."""

    name: str
    forward: PathFaults
    back: PathFaults


class DevnetPaths(msgspec.Struct, frozen=True, kw_only=True):
    """rrn devnet fault --json: every path of the devnet after the change."""

    dir: str
    paths: list[DevnetPath]


class DevnetNodeInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """rrn devnet start / stop: which node; its pid once started, or whether it stopped."""

    node: int
    org: str
    pid: int | None = None
    stopped: bool | None = None


class DevnetRemoved(msgspec.Struct, frozen=True, kw_only=True):
    """rrn devnet down."""

    dir: str
    removed: bool


class KeysProtected(msgspec.Struct, frozen=True, kw_only=True):
    """rrn key protect: how many private keys, and whether under a passphrase now."""

    keys: int
    protected: bool


class KeyMade(msgspec.Struct, frozen=True, kw_only=True):
    """rrn member new-key: the signing key made for a rotation by roster."""

    epoch: int
    file: str


class CardWritten(msgspec.Struct, frozen=True, kw_only=True):
    """rrn member card --out."""

    org: str
    file: str
    tls_fingerprint: str


class LogVerified(msgspec.Struct, frozen=True, kw_only=True):
    """rrn log verify: what was verified; first_bad names the first failure."""

    events: int
    chains: int
    rosters: int
    first_bad: str | None
    ok: bool


class LogExported(msgspec.Struct, frozen=True, kw_only=True):
    """rrn log export --out."""

    lines: int
    file: str


class RosterMade(msgspec.Struct, frozen=True, kw_only=True):
    """rrn network genesis."""

    roster_id: str
    members: list[str]
    file: str


class RosterSigned(msgspec.Struct, frozen=True, kw_only=True):
    """rrn network sign: whose approvals the proposal still needs."""

    roster_id: str
    signed_by: str
    missing: list[str]


class NetworkAdopted(msgspec.Struct, frozen=True, kw_only=True):
    """rrn network adopt."""

    org: str
    network: str
    roster_version: int
    members: list[str]


class NetworkExported(msgspec.Struct, frozen=True, kw_only=True):
    """rrn network export."""

    network: str
    roster_version: int
    file: str


class AlertForgotten(msgspec.Struct, frozen=True, kw_only=True):
    """rrn alert forget: the alert deleted, and how many of its events lost payloads."""

    alert: str
    events: int


class DefenderIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """rrn defender show: the identity behind a pseudonym, opened on this node."""

    pseudonym: str
    created_ms: int
    identity: str


class DefenderForgotten(msgspec.Struct, frozen=True, kw_only=True):
    """rrn defender forget."""

    forgotten: str


class IntegratorRevoked(msgspec.Struct, frozen=True, kw_only=True):
    """rrn integrator revoke: live is whether a running daemon took it at once."""

    name: str
    revoked: bool
    live: bool


class WebhookSecret(msgspec.Struct, frozen=True, kw_only=True):
    """rrn webhook secret: the new secret, and the file (relative to the home) holding it."""

    name: str
    secret_file: str
    secret: str
