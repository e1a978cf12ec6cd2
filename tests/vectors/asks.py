"""The ask-turns vector of tests/vectors/events.json (PROTOCOL 4.3c): an alert asking the
companies, sealed to all but one of them, and the declines, action and pledge that move
and stop its turns, with the offer order and turn times every node derives from them
in any order.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from rrn.federation.authority import Authority
from rrn.federation.turns import ANSWER_WINDOW_FACTOR
from rrn.protocol.alerts import AlertActed, AlertPledged, Ask
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event
from rrn.protocol.kinds import AlertPayload, kind_of
from rrn.protocol.roster import Role, encode_cert
from rrn.protocol.vocabulary import ActionType, ActResult, SupporterRole
from tests.support import Chain, network, raised

ROLES = {
    "lima-hr": [Role.RESPONDER],
    "nairobi-dl": [Role.RESPONDER],
    "acme-co": [Role.COMPANY],
    "bolt-co": [Role.COMPANY],
    "cobalt-co": [Role.COMPANY],
    "delta-co": [Role.COMPANY],
}
AUDIENCE = sorted(o for o in ROLES if o != "delta-co")
ENGAGE = ActionType.BUSINESS_PARTNER_ENGAGEMENT


def _turn(org: str, start: int, window: int, end: int, *, declined: bool) -> dict[str, Any]:
    return {
        "org": org,
        "start_ms": start,
        "reply_by_ms": start + window,
        "end_ms": end,
        "declined": declined,
    }


def turns() -> dict[str, Any]:
    tn = network(*ROLES, roles=ROLES)
    c = {o: Chain(tn, o) for o in ROLES}
    body = msgspec.structs.replace(raised(0), asks=[Ask(action=ENGAGE, to=SupporterRole.COMPANY)])
    alert = c["lima-hr"].next(body)
    t0, a = alert.header.wall_ms, alert.id
    window = ANSWER_WINDOW_FACTOR * Authority.of(tn.roster).step_s[body.urgency] * 1000
    companies = [o for o in AUDIENCE if Role.COMPANY in ROLES[o]]
    order = sorted(companies, key=lambda o: hashlib.sha256(a + o.encode()).digest())

    def at(org: str, payload: AlertPayload, dt: int) -> Event:
        return c[org].raw(str(kind_of(payload)), encode(payload), wall_ms=t0 + dt)

    declined = AlertActed(alert=a, action=ENGAGE, result=ActResult.DECLINED)
    second = 60_000  # the first company declines a minute in: the second's turn starts
    third = second + 2 * window  # the second lets its turn run out
    facts = [
        at(order[0], declined, second),
        at("nairobi-dl", AlertActed(alert=a, action=ENGAGE), 10_000),  # not a company
        at(order[2], AlertPledged(alert=a, action=ENGAGE), third + 300_000),
    ]
    return {
        "description": (
            "PROTOCOL 4.3c. `alert` was sealed whole to `audience` (4.6); the roster's "
            "policy is the default (days step 2 h, immediate 10 min). Apply it and every "
            "fact, in any order: the alert's only ask has the answer window `window_ms` "
            "(3 steps of its urgency), the offer order `order` (the companies in the "
            "audience by SHA-256(alert id || org)) and the `turns` listed: the first "
            "company declines, which starts the second's turn; the second lets its turn "
            "run out; the third pledges, which answers the ask at `answered_ms`, so no "
            "further turn starts. nairobi-dl's action answers nothing: the ask is not "
            "addressed to it. delta-co, outside the audience, is never offered it."
        ),
        "genesis_cert": encode_cert(tn.cert).hex(),
        "network_id": tn.net.hex(),
        "audience": AUDIENCE,
        "alert": alert.envelope().hex(),
        "facts": [e.envelope().hex() for e in facts],
        "window_ms": window,
        "order": order,
        "turns": [
            _turn(order[0], t0, window, t0 + second, declined=True),
            _turn(order[1], t0 + second, window, t0 + third, declined=False),
            _turn(order[2], t0 + third, window, t0 + third + 2 * window, declined=False),
        ],
        "answered_ms": t0 + third + 300_000,
    }
