"""Event kinds and the payload schema of each.

Owns the registry kind name -> payload type, and payload encoding/decoding with
the semantic checks a schema alone cannot make. Pure.

Versioning (docs/PROTOCOL.md, "Versioning"): within protocol version 1 a payload
may gain optional fields, which older nodes ignore; anything else is a new kind.
A node that meets a kind it does not know keeps the event in the chain (the
chain must stay whole) and does not apply it.
"""

from __future__ import annotations

import enum
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from rrn.protocol.alerts import (
    AlertActed,
    AlertCancelled,
    AlertClaimed,
    AlertEscalated,
    AlertFeedback,
    AlertPledged,
    AlertRaised,
    AlertReleased,
    AlertResolved,
    AlertShared,
    AlertTombstoned,
    AlertUpdated,
    SealedBlob,
    check_alert_fields,
    check_audience,
    check_drill_alert,
)
from rrn.protocol.checkins import (
    CheckinEnded,
    CheckinMissed,
    CheckinPlanned,
    CheckinRecorded,
    check_plan,
)
from rrn.protocol.collective import (
    CollectiveJoined,
    CollectiveProposed,
    CollectiveSigned,
    CollectiveWithdrawn,
    check_proposal,
)
from rrn.protocol.coverage import CoverageDeclared, check_declaration
from rrn.protocol.drills import DrillRevealed, DrillScheduled, check_drill
from rrn.protocol.encoding import (
    DECODE_ERRORS,
    check_unique_keys,
    decode_canonical,
    encode,
    redact,
)
from rrn.protocol.envelope import Header
from rrn.protocol.errors import DecodeError, PayloadError, ProtocolError, Reason
from rrn.protocol.membership import KeyRotated, RosterApproved, RosterProposed
from rrn.protocol.roster import decode_roster
from rrn.protocol.sealing import (
    MAX_SEALED_EVENT_BYTES,
    OpenKeys,
    Position,
    SealError,
    decode_sealed,
    encode_sealed,
    open_sealed,
    seal,
)

__all__ = [
    "AlertPayload",
    "CheckinPayload",
    "FactPayload",
    "Kind",
    "Payload",
    "SealedEvent",
    "check_own",
    "decode_payload",
    "encode_payload",
    "kind_of",
    "open_event",
    "seal_event",
    "unseal",
]


class Kind(enum.StrEnum):
    """Event kinds this version of rrn understands."""

    ALERT_RAISED = "alert.raised"
    ALERT_UPDATED = "alert.updated"
    ALERT_CLAIMED = "alert.claimed"
    ALERT_RESOLVED = "alert.resolved"
    ALERT_CANCELLED = "alert.cancelled"
    ALERT_ESCALATED = "alert.escalated"
    ALERT_RELEASED = "alert.released"
    ALERT_ACTED = "alert.acted"
    ALERT_SHARED = "alert.shared"
    ALERT_PLEDGED = "alert.pledged"
    ALERT_FEEDBACK = "alert.feedback"
    ALERT_TOMBSTONED = "alert.tombstoned"
    SEALED = "sealed"
    ROSTER_PROPOSED = "roster.proposed"
    ROSTER_APPROVED = "roster.approved"
    COVERAGE_DECLARED = "coverage.declared"
    KEY_ROTATED = "key.rotated"
    CHECKIN_PLANNED = "checkin.planned"
    CHECKIN_RECORDED = "checkin.recorded"
    CHECKIN_MISSED = "checkin.missed"
    CHECKIN_ENDED = "checkin.ended"
    DRILL_SCHEDULED = "drill.scheduled"
    DRILL_REVEALED = "drill.revealed"
    COLLECTIVE_PROPOSED = "collective.proposed"
    COLLECTIVE_JOINED = "collective.joined"
    COLLECTIVE_WITHDRAWN = "collective.withdrawn"
    COLLECTIVE_SIGNED = "collective.signed"


AlertPayload = (
    AlertRaised
    | AlertUpdated
    | AlertClaimed
    | AlertResolved
    | AlertCancelled
    | AlertEscalated
    | AlertReleased
    | AlertActed
    | AlertShared
    | AlertPledged
    | AlertFeedback
    | AlertTombstoned
    | CollectiveProposed
    | CollectiveJoined
    | CollectiveWithdrawn
    | CollectiveSigned
)
CheckinPayload = CheckinPlanned | CheckinRecorded | CheckinMissed | CheckinEnded
#: What the alert projection reads: alert events, and the check-in events that raise
#: and end the alerts of missed check-ins (protocol/checkins.py).
FactPayload = AlertPayload | CheckinPayload


class SealedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event whose kind and payload are sealed (an alert with a restricted audience).

    `sealed` is a protocol.sealing blob, bound to this event's chain position,
    whose plaintext is msgpack [kind, payload bytes] of the inner event. Members
    it is not sealed to keep it as an opaque link of the origin's chain.
    """

    sealed: SealedBlob


class _Inner(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    kind: str
    payload: bytes


Payload = (
    AlertPayload
    | CheckinPayload
    | RosterProposed
    | RosterApproved
    | CoverageDeclared
    | SealedEvent
    | KeyRotated
    | DrillScheduled
    | DrillRevealed
)

_TYPES: Final[dict[Kind, type[Payload]]] = {
    Kind.ALERT_RAISED: AlertRaised,
    Kind.ALERT_UPDATED: AlertUpdated,
    Kind.ALERT_CLAIMED: AlertClaimed,
    Kind.ALERT_RESOLVED: AlertResolved,
    Kind.ALERT_CANCELLED: AlertCancelled,
    Kind.ALERT_ESCALATED: AlertEscalated,
    Kind.ALERT_RELEASED: AlertReleased,
    Kind.ALERT_ACTED: AlertActed,
    Kind.ALERT_SHARED: AlertShared,
    Kind.ALERT_PLEDGED: AlertPledged,
    Kind.ALERT_FEEDBACK: AlertFeedback,
    Kind.ALERT_TOMBSTONED: AlertTombstoned,
    Kind.SEALED: SealedEvent,
    Kind.ROSTER_PROPOSED: RosterProposed,
    Kind.ROSTER_APPROVED: RosterApproved,
    Kind.COVERAGE_DECLARED: CoverageDeclared,
    Kind.KEY_ROTATED: KeyRotated,
    Kind.CHECKIN_PLANNED: CheckinPlanned,
    Kind.CHECKIN_RECORDED: CheckinRecorded,
    Kind.CHECKIN_MISSED: CheckinMissed,
    Kind.CHECKIN_ENDED: CheckinEnded,
    Kind.DRILL_SCHEDULED: DrillScheduled,
    Kind.DRILL_REVEALED: DrillRevealed,
    Kind.COLLECTIVE_PROPOSED: CollectiveProposed,
    Kind.COLLECTIVE_JOINED: CollectiveJoined,
    Kind.COLLECTIVE_WITHDRAWN: CollectiveWithdrawn,
    Kind.COLLECTIVE_SIGNED: CollectiveSigned,
}
_KIND_OF: Final = {t: k for k, t in _TYPES.items()}
_DECODERS: Final[dict[str, msgspec.msgpack.Decoder[Payload]]] = {
    str(k): msgspec.msgpack.Decoder(t) for k, t in _TYPES.items()
}


def kind_of(payload: Payload) -> Kind:
    """The event kind that carries this payload type."""
    return _KIND_OF[type(payload)]


def encode_payload(payload: Payload) -> bytes:
    """Encode a payload for signing; refuses values receivers would refuse."""
    data = encode(payload)
    decode_payload(kind_of(payload), data)
    return data


def check_own(payload: Payload) -> None:
    """Refuse a payload receivers would refuse, before it is signed. A check-in plan's
    sealed fields are made as it is signed (node/pipeline/own.py): its other rules."""
    if isinstance(payload, CheckinPlanned | DrillScheduled):
        problem = (
            check_plan(payload) if isinstance(payload, CheckinPlanned) else check_drill(payload)
        )
        if problem is not None:
            raise PayloadError(f"{kind_of(payload)} payload: {problem}", Reason.MALFORMED_PAYLOAD)
    else:
        encode_payload(payload)


def decode_payload(kind: str, data: bytes) -> Payload:
    """Decode and check the payload of an event of `kind`.

    Raises PayloadError with reason unknown_kind or malformed_payload.
    """
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise PayloadError("event kind is not known to this node", Reason.UNKNOWN_KIND)
    try:
        check_unique_keys(data)
        payload = decoder.decode(data)
    except DECODE_ERRORS as exc:
        raise PayloadError(
            f"{kind} payload does not decode: {redact(exc)}", Reason.MALFORMED_PAYLOAD
        ) from exc
    except DecodeError as exc:
        raise PayloadError(f"{kind} payload: {exc}", Reason.MALFORMED_PAYLOAD) from exc
    problem = _semantic_problem(payload)
    if problem is not None:
        raise PayloadError(f"{kind} payload: {problem}", Reason.MALFORMED_PAYLOAD)
    return payload


def _semantic_problem(payload: Payload) -> str | None:
    check = _CHECKS.get(type(payload))
    return check(payload) if check is not None else None


def _check_raised(p: AlertRaised) -> str | None:
    return (
        check_alert_fields(p.country, p.subdivision, p.incident_types)
        or check_audience(p)
        or check_drill_alert(p)
        or _check_sealed(p.sealed)
    )


def _check_targets(p: AlertEscalated) -> str | None:
    return "targets lists a member twice" if len(set(p.targets)) != len(p.targets) else None


def _check_roster(p: RosterProposed) -> str | None:
    try:
        decode_roster(p.roster)
    except ProtocolError as exc:
        return f"proposed roster is invalid ({exc.reason})"
    return None


def _check_sealed(blob: bytes | None) -> str | None:
    if blob is None:
        return None
    try:
        decode_sealed(blob)
    except ProtocolError as exc:
        return f"sealed blob is malformed ({exc.reason})"
    return None


def _check_zone(name: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "tz is not an IANA time zone this node knows"
    return None


_CHECKS: Final[dict[type[Payload], Callable[[Any], str | None]]] = {
    AlertRaised: _check_raised,
    AlertShared: lambda p: _check_sealed(p.sealed),
    SealedEvent: lambda p: _check_sealed(p.sealed),
    AlertTombstoned: lambda p: (
        "events lists an event twice" if len(set(p.events)) != len(p.events) else None
    ),
    AlertUpdated: lambda p: check_alert_fields(None, None, p.incident_types),
    AlertEscalated: _check_targets,
    CoverageDeclared: lambda p: check_declaration(p) or _check_zone(p.tz),
    RosterProposed: _check_roster,
    CollectiveProposed: lambda p: check_proposal(p) or _check_sealed(p.sealed),
    CheckinPlanned: lambda p: (
        check_plan(p) or _check_sealed(p.alert.sealed) or _check_sealed(p.duress)
    ),
}


#: Kinds that may travel inside a sealed event: alert and check-in events, except the
#: tombstone (which every node, excluded ones too, must read to delete payloads).
_SEALABLE: Final = frozenset(_KIND_OF[t] for t in FactPayload.__args__) - {Kind.ALERT_TOMBSTONED}
_INNER_DECODER: Final = msgspec.msgpack.Decoder(_Inner)


def seal_event(
    payload: FactPayload, recipients: Mapping[str, X25519PublicKey], pos: Position
) -> SealedEvent:
    """Wrap an alert or check-in payload into a sealed event for `recipients`, at `pos`."""
    kind = kind_of(payload)
    if kind not in _SEALABLE:
        raise SealError(f"{kind} events are never sealed")
    inner = encode(_Inner(str(kind), encode_payload(payload)))
    blob = seal(inner, recipients, pos, limit=MAX_SEALED_EVENT_BYTES)
    return SealedEvent(sealed=encode_sealed(blob))


def open_event(
    event: SealedEvent, me: str, private: OpenKeys, pos: Position
) -> tuple[Kind, FactPayload, list[str]]:
    """The inner kind, payload and recipients of a sealed event sealed to `me`.

    Raises SealError (not_authorised when it is not sealed to `me`) or PayloadError.
    """
    blob = decode_sealed(event.sealed)
    plaintext = open_sealed(blob, me, private, pos)
    inner = decode_canonical(plaintext, _INNER_DECODER, "sealed event", Reason.MALFORMED_PAYLOAD)
    if inner.kind not in _SEALABLE:
        raise PayloadError(
            "a sealed event holds a kind that is never sealed", Reason.MALFORMED_PAYLOAD
        )
    payload = decode_payload(inner.kind, inner.payload)
    assert isinstance(payload, FactPayload)
    return Kind(inner.kind), payload, blob.recipients()


def unseal(
    header: Header, data: bytes, me: str, private: OpenKeys | None, net: bytes
) -> tuple[str, Payload, tuple[str, ...]]:
    """The kind and payload an event carries, and the members it was sealed to whole.

    A `sealed` event sealed to `me` gives the inner kind and payload and its
    recipients; one sealed to others (or opened without a key) raises SealError
    with reason not_authorised. Any other event gives its own kind and payload,
    and no recipients. Raises ProtocolError when the payload is bad.
    """
    payload = decode_payload(header.kind, data)
    if not isinstance(payload, SealedEvent):
        return header.kind, payload, ()
    if private is None:
        raise SealError("this node holds no key to open sealed events", Reason.NOT_AUTHORISED)
    pos = Position(net, header.origin, header.epoch, header.seq)
    kind, inner, recipients = open_event(payload, me, private, pos)
    return str(kind), inner, tuple(recipients)
