"""rrn wire protocol: signed events, payload schemas, rosters, subjects. Pure.

Must not import federation/ or node/, asyncio, NATS, sqlite or the clock.

Names load on first use (PEP 562): importing one module of the package must not
load all of it (every `rrn` command paid for the whole package at start-up).
"""

from __future__ import annotations

from rrn.protocol.lazy import lazy_names

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

_LAZY = {
    "ConfigError": "rrn.protocol.errors",
    "ControlError": "rrn.protocol.errors",
    "DecodeError": "rrn.protocol.errors",
    "Event": "rrn.protocol.envelope",
    "FederationError": "rrn.protocol.errors",
    "Header": "rrn.protocol.envelope",
    "KeyResolver": "rrn.protocol.envelope",
    "Kind": "rrn.protocol.kinds",
    "MAX_ENVELOPE_BYTES": "rrn.protocol.envelope",
    "MAX_HEADER_BYTES": "rrn.protocol.envelope",
    "MAX_PAYLOAD_BYTES": "rrn.protocol.envelope",
    "MAX_REFS": "rrn.protocol.envelope",
    "OversizeError": "rrn.protocol.errors",
    "PROTOCOL_VERSION": "rrn.protocol.envelope",
    "Payload": "rrn.protocol.kinds",
    "PayloadError": "rrn.protocol.errors",
    "ProtocolError": "rrn.protocol.errors",
    "Reason": "rrn.protocol.errors",
    "RrnError": "rrn.protocol.errors",
    "SignatureError": "rrn.protocol.errors",
    "StoreError": "rrn.protocol.errors",
    "ValidationError": "rrn.protocol.errors",
    "decode_payload": "rrn.protocol.kinds",
    "encode_payload": "rrn.protocol.kinds",
    "event_id": "rrn.protocol.envelope",
    "open_envelope": "rrn.protocol.envelope",
    "sign_event": "rrn.protocol.envelope",
    "verify_event": "rrn.protocol.envelope",
}


__getattr__ = lazy_names(__name__, _LAZY)
