"""rrn federation: the rules every node applies identically. Pure functions.

Imports protocol/ only; never node/, asyncio, NATS, sqlite or a clock (time is
passed in).
"""

from rrn.federation.alert_view import AlertView, view
from rrn.federation.alerts import AlertState, AlertStatus, fact, join
from rrn.federation.chain import ForkProof, Head, Verdict, check_fork_proof, classify, fork_proof
from rrn.federation.keyring import Keyring
from rrn.federation.roster import default_threshold, make_genesis, verify_genesis, verify_next

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
