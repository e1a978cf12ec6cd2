"""The packages' public surfaces are deliberate: a change here is a change of API."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "protocol": {
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
    "federation": {
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
    "node": {"Home", "Node", "init_home", "open_home"},
}


@pytest.mark.parametrize("package", sorted(EXPECTED))
def test_public_surface(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == EXPECTED[package]
    for name in module.__all__:
        assert hasattr(module, name), name


def test_protocol_and_federation_import_no_io() -> None:
    """protocol/ and federation/ stay pure: no asyncio, NATS or sqlite imports."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    io = {"asyncio", "nats", "aiosqlite", "sqlite3", "node", "time", "socket"}
    for package, forbidden in (("protocol", io | {"federation"}), ("federation", io)):
        for path in (root / package).glob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
