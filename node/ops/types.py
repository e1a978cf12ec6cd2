"""The arguments and results of the operations on alerts, as they cross the control
channel (msgpack) and as `--json` prints them.

Owns their shapes; node/ops/alerts.py implements the operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Final

import msgspec
from msgspec import Meta

from rrn.protocol.alerts import Ask, Consent
from rrn.protocol.vocabulary import (
    ActionType,
    ActResult,
    CancelReason,
    Channel,
    FeedbackType,
    IncidentType,
    Outcome,
    Severity,
    TombstoneReason,
    Urgency,
)

if TYPE_CHECKING:  # the escalator (NATS, the store) and views load only where they run
    from rrn.federation.alert_view import AlertView
    from rrn.node.alerting.escalator import Routing

__all__ = [
    "READ_OPS",
    "ActArgs",
    "AlertArgs",
    "AlertDetail",
    "AlertEventInfo",
    "AlertInfo",
    "AlertRef",
    "AskInfo",
    "AsksArgs",
    "CancelArgs",
    "ClaimArgs",
    "CoverageArgs",
    "FeedbackArgs",
    "ForgetArgs",
    "ListArgs",
    "NoArgs",
    "PledgeArgs",
    "RaiseArgs",
    "ReleaseArgs",
    "ResolveArgs",
    "ShareArgs",
    "ShowArgs",
    "StatusInfo",
    "UpdateArgs",
    "alert_info",
]


#: Operations that only read: a retry runs them again (node/control/server.py).
READ_OPS: Final = frozenset(
    {
        "status",
        "peers",
        "alert.list",
        "alert.show",
        "checkin.list",
        "drill.list",
        "drill.report",
        "asks.list",
        "asks.record",
        "coverage.show",
        "defender.list",
        "defender.show",
        "member.proposals",
        "webhook.list",
        "webhook.dead",
    }
)


class AlertInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An alert as the CLI shows it (ids in hex)."""

    id: str
    origin: str
    status: str
    country: str
    subdivision: str | None
    incident_types: list[str]
    severity: str
    urgency: str
    asks: list[Ask]
    languages: list[str]
    pseudonym: str
    exercise: bool
    raised_ms: int
    updated_ms: int
    claimants: list[str]
    ended_by: str | None
    end_code: str | None
    level: int = 0
    targets: list[str] = []
    #: Why it reached that level: deadline, target_down or claim_lapsed.
    cause: str | None = None
    handover_to: str | None = None
    #: Members the alert asks to claim it now (computed by this node at level 0).
    asked: list[str] = []
    #: True when that is the network-wide fallback pool.
    pool: bool = False
    #: When the current step runs out unclaimed (None once claimed or ended).
    deadline_ms: int | None = None
    #: Actions recorded: (member, action, channel).
    actions: list[tuple[str, str, str]] = []
    #: Members that may hold the alert (empty: the whole network).
    audience: list[str] = []
    #: Pledges: (member, action, by_ms or None).
    pledges: list[tuple[str, str, int | None]] = []
    #: Feedback the origin gave the defender, in order.
    feedback: list[str] = []


class AlertEventInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One event of an alert's history."""

    id: str
    kind: str
    origin: str
    seq: int
    wall_ms: int


AlertRef = Annotated[str, Meta(pattern=r"^[0-9a-f]{6,64}$")]


class RaiseArgs(msgspec.Struct, frozen=True, kw_only=True):
    country: str
    subdivision: str | None = None
    incident_types: list[IncidentType]
    severity: Severity
    urgency: Urgency
    asks: list[Ask] = []
    languages: list[str] = []
    pseudonym: str | None = None
    exercise: bool = False
    #: Identifying details (encoded protocol.sealing.Details), sealed by the CLI to
    #: this node's key (node/control/transit.py); sealed to this member only in the alert.
    details: bytes | None = None
    consent: list[Consent] = []
    exclude: list[str] = []
    perpetrator_states: list[str] = []


class UpdateArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef
    subdivision: str | None = None
    incident_types: list[IncidentType] | None = None
    severity: Severity | None = None
    urgency: Urgency | None = None
    asks: list[Ask] | None = None
    languages: list[str] | None = None


class AlertArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef


class ShowArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef
    #: A one-request X25519 public key: readable details come back sealed to it.
    reply_to: Annotated[bytes, Meta(min_length=32, max_length=32)] | None = None


class ClaimArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef
    until_ms: int | None = None


class ReleaseArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef
    handover_to: str | None = None


class ShareArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef
    to: list[str]


class ActArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef
    action: ActionType
    channel: Channel = Channel.PRIVATE
    result: ActResult = ActResult.DONE


class PledgeArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef
    action: ActionType
    channel: Channel = Channel.PRIVATE
    by_ms: int | None = None


class FeedbackArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef
    feedback: FeedbackType


class ForgetArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef
    reason: TombstoneReason


class AsksArgs(msgspec.Struct, frozen=True, kw_only=True):
    #: Every ask on open alerts, not only those addressed to this member's roles.
    all: bool = False


class AskInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One ask as a supporter sees it."""

    alert: str
    country: str
    urgency: str
    action: str
    to: str
    channel: str
    deadline_ms: int | None
    overdue: bool
    pledged_by: list[str]
    done_by: list[str]
    #: When the ask was offered to this member (its turn came, PROTOCOL 4.3c); None:
    #: not (yet) offered to it.
    offered_ms: int | None = None
    #: This member's reply-by: unanswered then, its people are asked again.
    reply_by_ms: int | None = None
    #: When the ask is offered to the next member if still unanswered (None: it is not).
    next_offer_ms: int | None = None
    #: The members offered the ask so far, in turn order.
    offered_to: list[str] = []


class ResolveArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef
    outcome: Outcome


class CancelArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef
    reason: CancelReason


class NoArgs(msgspec.Struct, frozen=True):
    pass


class ListArgs(msgspec.Struct, frozen=True, kw_only=True):
    all: bool = False
    limit: Annotated[int, Meta(ge=1, le=10000)] = 200


class StatusInfo(msgspec.Struct, frozen=True, kw_only=True):
    org: str
    name: str
    version: str
    network: str
    roster_version: int
    #: The roster's escalation policy (node/membership/policy.py form).
    escalation: str = ""
    #: The roster's member limits (node/membership/policy.py form).
    limits: str = ""
    #: The mesh: full, or sparse with how many links per member.
    mesh: str = ""
    members: list[str]
    epoch: int
    seq: int
    events: int
    open_alerts: int
    appends_blocked: str | None
    frozen: list[str]
    nats_url: str
    metrics_url: str | None
    started_ms: int
    #: Members this node has a direct link to, and those of them it does not hear.
    linked: list[str] = []
    quiet: list[str] = []
    #: Events some peer holds and this node does not yet (catching up while > 0).
    behind: int = 0
    #: Whether it escalates and watches check-ins yet: a node that just started waits
    #: until it has caught up (at most SETTLE_MAX_S, node/peering/peers.py). A node
    #: restored from a backup may act and still sign nothing (`appends_blocked`).
    acting: bool = True
    #: Seconds nobody is on duty in the next 24 hours, by "region PE" / "language sw".
    coverage_gaps_24h_s: dict[str, float] = {}
    disk_free_bytes: int = 0
    #: Why the node is not ready (/readyz's reasons); empty when it is.
    not_ready: list[str] = []
    #: What this install runs (rrn version): tz database release, nats-server, lock digest.
    tz_database: str = ""
    nats_server: str = ""
    lock_sha256: str = ""


class CoverageArgs(msgspec.Struct, frozen=True, kw_only=True):
    tz: str
    now_ms: int | None = None


class AlertDetail(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertInfo
    events: list[AlertEventInfo]
    #: Members the sealed details are sealed to (empty: the alert has none).
    sealed_to: list[str] = []
    #: The details, sealed to the request's reply_to key, when this member may read them.
    sealed_details: bytes | None = None
    #: The details as the CLI opened them (never filled in by the daemon).
    details: dict[str, str] | None = None


def alert_info(v: AlertView, routing: Routing | None = None) -> AlertInfo:
    """The CLI form of an alert view (with whom it asks now, when known)."""
    return AlertInfo(
        id=v.alert.hex(),
        origin=v.origin,
        status=str(v.status),
        country=v.country,
        subdivision=v.subdivision,
        incident_types=[str(t) for t in v.incident_types],
        severity=str(v.severity),
        urgency=str(v.urgency),
        asks=list(v.asks),
        languages=list(v.languages),
        pseudonym=v.pseudonym,
        exercise=v.exercise,
        raised_ms=v.raised_ms,
        updated_ms=v.updated_ms,
        claimants=list(v.claimants),
        ended_by=v.ended_by,
        end_code=v.end_code,
        level=v.level,
        targets=list(v.targets),
        cause=str(v.level_cause) if v.level_cause is not None else None,
        handover_to=v.handover_to,
        asked=routing.asked if routing else list(v.targets),
        pool=routing.pool if routing else False,
        deadline_ms=routing.deadline_ms if routing else None,
        actions=list(v.actions),
        audience=list(v.audience),
        pledges=[(o, a, b) for o, a, b, _ in v.pledges],
        feedback=[f for f, _ in v.feedback],
    )
