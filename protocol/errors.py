"""The error tree of rrn, and the stable rejection reasons used in metrics.

Owns every exception type the project raises on purpose. Imports nothing from
federation/ or node/.

    RrnError
    ├── ProtocolError            a message or event is not acceptable (has .reason)
    │   ├── OversizeError        a size limit was exceeded, checked before parsing
    │   ├── DecodeError          bytes are not a strict, canonical encoding
    │   ├── SignatureError       a signature does not verify
    │   ├── PayloadError         payload bytes do not match the signed hash/length
    │   └── ValidationError      well-formed but not valid here (network, key, field)
    ├── FederationError          the network's rules refuse something (has .reason)
    ├── StoreError               the local store is missing, damaged or inconsistent
    ├── ConfigError              a node home or its configuration is wrong
    └── ControlError             the CLI could not get an answer from the daemon

Every ProtocolError and FederationError carries a `reason` from `Reason`. Reasons
are part of the public contract: they name metric label values
(`rrn_ingest_rejected_total{reason=...}`) and the expected outcome of each invalid
test vector, so they never change meaning once published.

Messages never contain defender data: they name fields and limits, not values
taken from an alert.
"""

from __future__ import annotations

import enum

__all__ = [
    "ConfigError",
    "ControlError",
    "DaemonUnavailable",
    "DecodeError",
    "FederationError",
    "OversizeError",
    "PayloadError",
    "ProtocolError",
    "Reason",
    "RrnError",
    "SignatureError",
    "StoreError",
    "ValidationError",
]


class Reason(enum.StrEnum):
    """Stable, bounded names for every way an input can be refused."""

    # sizes (checked before any parsing)
    OVERSIZE_ENVELOPE = "oversize_envelope"
    OVERSIZE_HEADER = "oversize_header"
    OVERSIZE_PAYLOAD = "oversize_payload"
    # decoding
    MALFORMED_ENVELOPE = "malformed_envelope"
    MALFORMED_HEADER = "malformed_header"
    NON_CANONICAL = "non_canonical"
    UNSUPPORTED_VERSION = "unsupported_version"
    # validity against the network
    WRONG_NETWORK = "wrong_network"
    UNKNOWN_ORIGIN = "unknown_origin"
    UNKNOWN_EPOCH = "unknown_epoch"
    EPOCH_CUT_OFF = "epoch_cut_off"
    # cryptography
    BAD_SIGNATURE = "bad_signature"
    # payload binding
    PAYLOAD_LENGTH_MISMATCH = "payload_length_mismatch"
    PAYLOAD_HASH_MISMATCH = "payload_hash_mismatch"
    MALFORMED_PAYLOAD = "malformed_payload"
    # chain (per origin and key epoch)
    FEED_FROZEN = "feed_frozen"
    GAP_OVERFLOW = "gap_overflow"
    QUOTA_EXCEEDED = "quota_exceeded"
    TIME_REGRESSION = "time_regression"
    REFS_NOT_EMPTY = "refs_not_empty"
    ROSTER_REGRESSION = "roster_regression"
    # authorisation of an authentic event (kept in the chain, not applied)
    NOT_AUTHORISED = "not_authorised"
    UNKNOWN_KIND = "unknown_kind"
    # roster and membership
    BAD_ROSTER = "bad_roster"
    ROSTER_THRESHOLD = "roster_threshold"
    ROSTER_DUPLICATE_ORG = "roster_duplicate_org"
    ROSTER_MISSING_NEW_KEY = "roster_missing_new_key"
    ROSTER_VERSION = "roster_version"
    BAD_CARD = "bad_card"
    BAD_ROTATION = "bad_rotation"
    # peers
    RATE_LIMITED = "rate_limited"
    MALFORMED_MESSAGE = "malformed_message"
    STALE_MESSAGE = "stale_message"


class RrnError(Exception):
    """Base of every error rrn raises deliberately."""


class ProtocolError(RrnError):
    """Bytes or an event that the protocol does not accept."""

    reason: Reason = Reason.MALFORMED_ENVELOPE

    def __init__(self, message: str, reason: Reason | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class OversizeError(ProtocolError):
    """A size limit was exceeded; raised before the bytes are parsed."""

    reason = Reason.OVERSIZE_ENVELOPE


class DecodeError(ProtocolError):
    """Not a strict, canonical encoding of the expected structure."""

    reason = Reason.MALFORMED_HEADER


class SignatureError(ProtocolError):
    """A signature does not verify under the key the roster names."""

    reason = Reason.BAD_SIGNATURE


class PayloadError(ProtocolError):
    """Payload bytes do not match the signed hash or length, or do not decode."""

    reason = Reason.PAYLOAD_HASH_MISMATCH


class ValidationError(ProtocolError):
    """Well-formed, but not valid in this network or for this field."""

    reason = Reason.WRONG_NETWORK


class FederationError(RrnError):
    """The network's shared rules refuse an action or a document."""

    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.reason = reason


class StoreError(RrnError):
    """The local store is missing, damaged or would be made inconsistent."""


class ConfigError(RrnError):
    """A node home or its configuration is missing or wrong."""


class ControlError(RrnError):
    """The running daemon refused a request, or could not be asked."""


class DaemonUnavailable(ControlError):
    """No daemon runs for the home, or none answered."""
