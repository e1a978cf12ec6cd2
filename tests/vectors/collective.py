"""The collective-action vector of tests/vectors/events.json (PROTOCOL 4.9): an alert, a
proposal on it, and joins, withdrawals and signatures, some of which the rules refuse,
with the outcome every node derives from them in any order.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from rrn.federation.collective import MAX_PROPOSALS
from rrn.protocol.collective import (
    CollectiveJoined,
    CollectiveProposed,
    CollectiveSigned,
    CollectiveWithdrawn,
    Quota,
)
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event
from rrn.protocol.kinds import AlertPayload, kind_of
from rrn.protocol.roster import Role, encode_cert
from rrn.protocol.vocabulary import ActionType
from tests.support import Chain, network, raised

ROLES = {
    "lima-hr": [Role.RESPONDER],
    "nairobi-dl": [Role.RESPONDER],
    "acme-co": [Role.COMPANY],
    "bolt-co": [Role.COMPANY],
    "cobalt-co": [Role.COMPANY],
    "paris-emb": [Role.EMBASSY],
}
HOUR = 3_600_000
TEXT = b"Dear Minister, we write together about the case of hrd-abcdefg2."


def collective() -> dict[str, Any]:
    tn = network(*ROLES, roles=ROLES)
    c = {o: Chain(tn, o) for o in ROLES}
    lima = c["lima-hr"]
    alert = lima.next(raised(0))
    t0 = alert.header.wall_ms
    proposed = CollectiveProposed(
        alert=alert.id,
        action=ActionType.JOINT_STATEMENT,
        threshold=[Quota(role=Role.COMPANY, count=2), Quota(role=Role.EMBASSY, count=1)],
        deadline_ms=t0 + HOUR,
    )
    proposal = lima.next(proposed)
    a, p = alert.id, proposal.id
    text = hashlib.sha256(TEXT).digest()

    def at(org: str, payload: AlertPayload, dt: int) -> Event:
        return c[org].raw(str(kind_of(payload)), encode(payload), wall_ms=t0 + dt)

    joined, withdrawn = (
        CollectiveJoined(alert=a, proposal=p),
        CollectiveWithdrawn(alert=a, proposal=p),
    )
    facts: list[tuple[Event, str | None]] = [
        (at("acme-co", joined, 1_000), None),
        (at("nairobi-dl", joined, 1_100), "not_eligible"),
        (at("acme-co", joined, 1_500), "joined_already"),
        (at("bolt-co", joined, 2_000), None),
        (at("bolt-co", withdrawn, 2_500), None),  # before the threshold: undone
        (at("paris-emb", joined, 3_000), None),
        (at("bolt-co", joined, 4_000), None),  # the threshold is met here
        (at("acme-co", CollectiveSigned(alert=a, proposal=p, text=text), 5_000), None),
        (at("paris-emb", CollectiveSigned(alert=a, proposal=p, text=text), 5_500), None),
        (
            at("nairobi-dl", CollectiveSigned(alert=a, proposal=p, text=text), 5_600),
            "not_committed",
        ),
        (at("bolt-co", withdrawn, 6_000), None),  # after: recorded, still committed
        (at("bolt-co", withdrawn, 6_500), "not_joined"),
        (at("cobalt-co", joined, HOUR + 1), "too_late"),
        (at("cobalt-co", CollectiveJoined(alert=a, proposal=a), 7_000), "no_proposal"),
        (at("cobalt-co", joined, 500), "too_soon"),  # signed before the proposal
    ]
    # nairobi-dl proposes again and again: the sixth by signed time is one too many
    for n in range(MAX_PROPOSALS + 1):
        again = msgspec.structs.replace(proposed, action=ActionType.PRIVATE_DIPLOMACY)
        when = 9_000 - n * 100 if n < MAX_PROPOSALS else 9_500
        facts.append((at("nairobi-dl", again, when), None if n < MAX_PROPOSALS else "too_many"))
    return {
        "description": (
            "PROTOCOL 4.9. Apply `alert`, `proposal` and every fact, in any order: each "
            "fact with a reason is refused (kind `collective`), and the proposal's outcome "
            "is `outcome`. Joins and withdrawals count in order of (wall_ms, id): bolt-co's "
            "first join is withdrawn before the threshold; it is met by bolt-co's second "
            "join; its later withdrawal is recorded and it stays committed. `text_sha256` "
            "is SHA-256 of `text`, the version signed. nairobi-dl's proposals beyond "
            f"{MAX_PROPOSALS}, counted in order of (wall_ms, id), are refused; the view "
            "holds `collectives` proposals."
        ),
        "genesis_cert": encode_cert(tn.cert).hex(),
        "network_id": tn.net.hex(),
        "alert": alert.envelope().hex(),
        "proposal": proposal.envelope().hex(),
        "text": TEXT.decode(),
        "text_sha256": text.hex(),
        "facts": [{"envelope": e.envelope().hex(), "reason": why} for e, why in facts],
        "collectives": 1 + MAX_PROPOSALS,
        "outcome": {
            "proposal": p.hex(),
            "met_ms": t0 + 4_000,
            "joined": ["acme-co", "paris-emb"],
            "committed": ["acme-co", "paris-emb", "bolt-co"],
            "withdrew_after": ["bolt-co"],
            "signatures": {text.hex(): ["acme-co", "paris-emb"]},
        },
    }
