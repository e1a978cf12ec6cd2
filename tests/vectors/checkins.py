"""The check-in vector of tests/vectors/events.json (PROTOCOL 4.7): a plan, the misses,
check-ins and end that refer to it, and the alerts every node derives from them.

The codes are written out so another implementation can check each commitment and
each derived alert id. The plan's `duress` blob is a placeholder of the right form
(its content only the origin reads, and is not part of the rules): the duress miss
is signed by the origin, as its node signs it on seeing a duress code.
"""

from __future__ import annotations

from typing import Any

from rrn.protocol.checkins import (
    CheckinEnded,
    CheckinMissed,
    CheckinPlanned,
    CheckinRecorded,
    commitment,
    missed_alert_id,
)
from rrn.protocol.drills import moments, secret_commitment
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event
from rrn.protocol.kinds import CheckinPayload, kind_of
from rrn.protocol.roster import Role, encode_cert
from rrn.protocol.sealing import SEAL_VERSION, WRAP_BYTES, Sealed, Wrap, encode_sealed
from tests.support import Chain, network, raised

ROLES = {
    "lima-hr": [Role.RESPONDER],
    "nairobi-dl": [Role.RESPONDER],
    "jakarta-pb": [Role.RESPONDER],
}
#: Per slot: (the check-in code, the duress code).
CODES = [("aaaabbbbccccdddd", "eeeeffffgggghhhh"), ("iiiijjjjkkkkllll", "mmmmnnnnoooopppp")]
GRACE = 600_000
PLACEHOLDER = encode_sealed(
    Sealed(
        v=SEAL_VERSION,
        commit=b"\x11" * 32,
        wraps=[Wrap("lima-hr", b"\0" * WRAP_BYTES)],
        ct=b"\0" * 24,
    )
)


def checkins() -> dict[str, Any]:
    tn = network(*ROLES, roles=ROLES)
    c = {o: Chain(tn, o) for o in ROLES}
    lima = c["lima-hr"]
    slots = [lima.wall_ms + 3_600_000, lima.wall_ms + 7_200_000]
    plan = lima.next(
        CheckinPlanned(
            alert=raised(0),
            slots=slots,
            grace_ms=GRACE,
            codes=[[commitment(a), commitment(b)] for a, b in CODES],  # duress second
            duress=PLACEHOLDER,
        )
    )
    p, due = plan.id, [s + GRACE for s in slots]

    def at(org: str, payload: CheckinPayload, wall_ms: int) -> Event:
        return c[org].raw(str(kind_of(payload)), encode(payload), wall_ms=wall_ms)

    facts = [
        (at("nairobi-dl", CheckinMissed(plan=p, slot=0), due[0] - 1), "missed", "too_soon"),
        (at("jakarta-pb", CheckinMissed(plan=p, slot=0), due[0]), None, None),
        (at("nairobi-dl", CheckinMissed(plan=p, slot=0), due[0] + 5_000), None, None),
        (
            at("jakarta-pb", CheckinRecorded(plan=p, slot=0, code=CODES[1][0]), due[0] + 6_000),
            "checkin",
            "bad_code",
        ),
        (
            at("nairobi-dl", CheckinRecorded(plan=p, slot=0, code=CODES[0][1]), due[0] + 9_000),
            None,
            None,
        ),
        (at("lima-hr", CheckinMissed(plan=p, slot=0, duress=True), due[0] + 20_000), None, None),
        (at("lima-hr", CheckinMissed(plan=p, slot=1, duress=False), due[0] + 25_000), None, None),
        (at("lima-hr", CheckinEnded(plan=p), due[1] - 60_000), None, None),
        (at("jakarta-pb", CheckinMissed(plan=p, slot=1), due[1]), "missed", "plan_ended"),
        (
            at("nairobi-dl", CheckinMissed(plan=p, slot=1, duress=True), due[1]),
            "missed",
            "not_origin",
        ),
    ]
    return {
        "description": (
            "PROTOCOL 4.7. Apply `plan` and every fact, in any order (the end after its "
            "plan, as in lima-hr's chain): the alerts that exist are exactly `alerts`; "
            "each fact listed with a reason is refused for it once its slot's alert has a "
            "raise. Slot 0 was missed (two members published it: one alert), a check-in "
            "with the slot's duress code ends it like its other code, and lima-hr raised "
            "the duress alert (and acknowledged slot 1 with duress false: nothing raised); "
            "the plan ended before slot 1's deadline."
        ),
        "genesis_cert": encode_cert(tn.cert).hex(),
        "network_id": tn.net.hex(),
        "codes": [{"code": a, "duress_code": b} for a, b in CODES],
        "commitments": [[commitment(a).hex(), commitment(b).hex()] for a, b in CODES],
        "plan": plan.envelope().hex(),
        "facts": [
            {"envelope": e.envelope().hex(), "refused": kind, "reason": reason}
            for e, kind, reason in facts
        ],
        "alerts": {
            missed_alert_id(p, 0).hex(): {
                "origin": "lima-hr",
                "raised_ms": due[0],
                "status": "cancelled",
                "end_code": "checked_in",
                "audience": [],
            },
            missed_alert_id(p, 0, duress=True).hex(): {
                "origin": "lima-hr",
                "raised_ms": due[0] + 20_000,
                "status": "open",
                "end_code": None,
                "audience": ["lima-hr"],
            },
        },
    }


def drills() -> dict[str, Any]:
    """PROTOCOL 4.8: a secret, its commitment, a window and the moments it gives."""
    secret = bytes(range(32))
    start, end = 1_767_225_600_000, 1_767_225_600_000 + 86_400_000
    return {
        "description": (
            'PROTOCOL 4.8. `commitment` is SHA-256("rrn/drill-secret/v1" 0x00 secret); '
            "exercise alert i of a drill with this window is due at moments[i]."
        ),
        "secret": secret.hex(),
        "commitment": secret_commitment(secret).hex(),
        "start_ms": start,
        "end_ms": end,
        "moments": moments(secret, start, end, 4),
    }
