"""rrn federation: the rules every node applies identically. Pure functions.

Imports protocol/ only; never node/, asyncio, NATS, sqlite or a clock (time is
passed in).

Names load on first use (PEP 562): importing one module of the package must not
load all of it (every `rrn` command paid for the whole package at start-up).
"""

from __future__ import annotations

from rrn.protocol.lazy import lazy_names

__all__ = [
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
]

_LAZY = {
    "AlertState": "rrn.federation.alerts",
    "AlertStatus": "rrn.federation.alerts",
    "AlertView": "rrn.federation.alert_view",
    "ForkProof": "rrn.federation.chain",
    "Head": "rrn.federation.chain",
    "Keyring": "rrn.federation.keyring",
    "Verdict": "rrn.federation.chain",
    "check_fork_proof": "rrn.federation.chain",
    "classify": "rrn.federation.chain",
    "default_threshold": "rrn.federation.roster",
    "fact": "rrn.federation.alerts",
    "fork_proof": "rrn.federation.chain",
    "join": "rrn.federation.alerts",
    "make_genesis": "rrn.federation.roster",
    "verify_genesis": "rrn.federation.roster",
    "verify_next": "rrn.federation.roster",
    "view": "rrn.federation.alert_view",
}


__getattr__ = lazy_names(__name__, _LAZY)
