"""The packages' public surfaces are deliberate: a change here is a change of API."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "rrn.protocol": {
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
    },
    "rrn.federation": {
        "AlertState",
        "AlertStatus",
        "AlertView",
        "ForkProof",
        "Head",
        "Keyring",
        "Verdict",
        "check_fork_proof",
        "classify",
        "default_threshold",
        "fact",
        "fork_proof",
        "join",
        "make_genesis",
        "verify_genesis",
        "verify_next",
        "view",
    },
    "rrn.node": {"Home", "Node", "init_home", "open_home"},
}


@pytest.mark.parametrize("package", sorted(EXPECTED))
def test_public_surface(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == EXPECTED[package]
    for name in module.__all__:
        assert hasattr(module, name), name
