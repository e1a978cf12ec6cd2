"""rrn wire protocol: signed events, payload schemas, rosters, subjects. Pure.

Must not import federation/ or node/, asyncio, NATS, sqlite or the clock.
"""

from rrn.protocol.envelope import (
    MAX_ENVELOPE_BYTES,
    MAX_HEADER_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_REFS,
    PROTOCOL_VERSION,
    Event,
    Header,
    KeyResolver,
    event_id,
    open_envelope,
    sign_event,
    verify_event,
)
from rrn.protocol.errors import (
    ConfigError,
    ControlError,
    DecodeError,
    FederationError,
    OversizeError,
    PayloadError,
    ProtocolError,
    Reason,
    RrnError,
    SignatureError,
    StoreError,
    ValidationError,
)
from rrn.protocol.kinds import Kind, Payload, decode_payload, encode_payload

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_PAYLOAD_BYTES",
    "MAX_REFS",
    "PROTOCOL_VERSION",
    "ConfigError",
    "ControlError",
    "DecodeError",
    "Event",
    "FederationError",
    "Header",
    "KeyResolver",
    "Kind",
    "OversizeError",
    "Payload",
    "PayloadError",
    "ProtocolError",
    "Reason",
    "RrnError",
    "SignatureError",
    "StoreError",
    "ValidationError",
    "decode_payload",
    "encode_payload",
    "event_id",
    "open_envelope",
    "sign_event",
    "verify_event",
]
