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
from typing import Final

import msgspec

from protocol.alerts import (
    AlertActed,
    AlertCancelled,
    AlertClaimed,
    AlertEscalated,
    AlertRaised,
    AlertReleased,
    AlertResolved,
    AlertUpdated,
    check_alert_fields,
)
from protocol.coverage import CoverageDeclared, check_declaration
from protocol.encoding import DECODE_ERRORS, encode, redact
from protocol.errors import PayloadError, ProtocolError, Reason
from protocol.membership import RosterApproved, RosterProposed
from protocol.roster import decode_roster

__all__ = ["AlertPayload", "Kind", "Payload", "decode_payload", "encode_payload", "kind_of"]


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
    ROSTER_PROPOSED = "roster.proposed"
    ROSTER_APPROVED = "roster.approved"
    COVERAGE_DECLARED = "coverage.declared"


AlertPayload = (
    AlertRaised
    | AlertUpdated
    | AlertClaimed
    | AlertResolved
    | AlertCancelled
    | AlertEscalated
    | AlertReleased
    | AlertActed
)
Payload = AlertPayload | RosterProposed | RosterApproved | CoverageDeclared

_TYPES: Final[dict[Kind, type[Payload]]] = {
    Kind.ALERT_RAISED: AlertRaised,
    Kind.ALERT_UPDATED: AlertUpdated,
    Kind.ALERT_CLAIMED: AlertClaimed,
    Kind.ALERT_RESOLVED: AlertResolved,
    Kind.ALERT_CANCELLED: AlertCancelled,
    Kind.ALERT_ESCALATED: AlertEscalated,
    Kind.ALERT_RELEASED: AlertReleased,
    Kind.ALERT_ACTED: AlertActed,
    Kind.ROSTER_PROPOSED: RosterProposed,
    Kind.ROSTER_APPROVED: RosterApproved,
    Kind.COVERAGE_DECLARED: CoverageDeclared,
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


def decode_payload(kind: str, data: bytes) -> Payload:
    """Decode and check the payload of an event of `kind`.

    Raises PayloadError with reason unknown_kind or malformed_payload.
    """
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise PayloadError("event kind is not known to this node", Reason.UNKNOWN_KIND)
    try:
        payload = decoder.decode(data)
    except DECODE_ERRORS as exc:
        raise PayloadError(
            f"{kind} payload does not decode: {redact(exc)}", Reason.MALFORMED_PAYLOAD
        ) from exc
    problem = _semantic_problem(payload)
    if problem is not None:
        raise PayloadError(f"{kind} payload: {problem}", Reason.MALFORMED_PAYLOAD)
    return payload


def _semantic_problem(payload: Payload) -> str | None:
    if isinstance(payload, AlertRaised):
        return check_alert_fields(payload.country, payload.subdivision, payload.incident_types)
    if isinstance(payload, AlertUpdated):
        return check_alert_fields(None, None, payload.incident_types)
    if isinstance(payload, AlertEscalated) and len(set(payload.targets)) != len(payload.targets):
        return "targets lists a member twice"
    if isinstance(payload, CoverageDeclared):
        return check_declaration(payload) or _check_zone(payload.tz)
    if isinstance(payload, RosterProposed):
        try:
            decode_roster(payload.roster)
        except ProtocolError as exc:
            return f"proposed roster is invalid ({exc.reason})"
    return None


def _check_zone(name: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "tz is not an IANA time zone this node knows"
    return None
