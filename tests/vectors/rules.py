"""The rule vectors of tests/vectors/events.json: what verified events do.

Envelope vectors (generate.py) say whether bytes are an event. These say what a
node does with events that are: the rules along a chain (PROTOCOL 3.7), a
payload's form (1, 4), who may change an alert (4.3b) and what a removed member
may still sign (6). Each section brings its own genesis certificate, so it can be
checked with nothing else.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec

from rrn.federation.limits import DEFAULT_LIMITS, MAX_FUTURE_MS
from rrn.federation.roster import next_roster
from rrn.protocol.alerts import AlertClaimed, AlertEscalated, AlertResolved
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event
from rrn.protocol.roster import Cutoff, Role, RosterCert, encode_cert, sign_roster
from rrn.protocol.vocabulary import EscalationCause, Outcome
from tests.support import Chain, Net, network, raised

#: Small enough that a vector can reach it (the least a roster may set).
DAY_EVENTS = 100
CLOCK_MS = 1_767_230_000_000


def _cert(tn: Net) -> str:
    return encode_cert(tn.cert).hex()


def _envelopes(*events: Event) -> list[str]:
    return [e.envelope().hex() for e in events]


def chain_rules() -> dict[str, Any]:
    """PROTOCOL 3.7: each case is one chain of lima-hr, walked from empty."""
    limits = msgspec.structs.replace(DEFAULT_LIMITS, day_events=DAY_EVENTS)
    tn = network("lima-hr", "nairobi-dl", limits=limits)
    cases = []

    c = Chain(tn, "lima-hr")
    first = c.next(raised(0))
    cases.append(
        _case(
            "refs on a kind this version defines",
            [first, c.next(AlertClaimed(alert=first.id), refs=[first.id])],
            ["applied", "refs_not_empty"],
        )
    )
    c = Chain(tn, "lima-hr")
    later = c.raw("alert.raised", encode(raised(1)), wall_ms=CLOCK_MS - 1_000)
    earlier = c.raw("alert.raised", encode(raised(2)), wall_ms=CLOCK_MS - 2_000)
    after = c.raw("alert.raised", encode(raised(3)), wall_ms=CLOCK_MS - 1_000)
    cases.append(
        _case(
            "time goes back (kept unapplied; the next event at the latest time applies)",
            [later, earlier, after],
            ["applied", "time_regression", "applied"],
        )
    )
    c = Chain(tn, "lima-hr")
    day = [c.raw("x.note", b"\x01", wall_ms=CLOCK_MS - 60_000 + i) for i in range(DAY_EVENTS + 1)]
    cases.append(
        _case(
            f"a day's quota: event {DAY_EVENTS + 1} of one UTC day",
            day,
            ["applied"] * DAY_EVENTS + ["quota_exceeded"],
        )
    )
    c = Chain(tn, "lima-hr")
    near = c.raw("alert.raised", encode(raised(4)), wall_ms=CLOCK_MS + MAX_FUTURE_MS)
    far = c.raw("alert.raised", encode(raised(5)), wall_ms=CLOCK_MS + MAX_FUTURE_MS + 1)
    cases.append(
        _case(
            "the far future waits: held until its time is near",
            [near, far],
            ["applied", "held"],
        )
    )
    return {
        "description": (
            "PROTOCOL 3.7. Walk each case's events in order as one chain from empty, "
            "with the receiver's clock at clock_ms, under the genesis roster's member "
            "limits (day_events is given for convenience). Each event verifies (3.5); "
            "its outcome is 'applied', a reason it is kept but not applied "
            "(time_regression, refs_not_empty), 'quota_exceeded' (refused; the chain "
            "stops there) or 'held' (kept aside until clock_ms reaches wall_ms - "
            f"{MAX_FUTURE_MS})."
        ),
        "genesis_cert": _cert(tn),
        "network_id": tn.net.hex(),
        "clock_ms": CLOCK_MS,
        "day_events": DAY_EVENTS,
        "max_future_ms": MAX_FUTURE_MS,
        "cases": cases,
    }


def _case(name: str, events: list[Event], outcomes: list[str]) -> dict[str, Any]:
    return {"name": name, "envelopes": _envelopes(*events), "outcomes": outcomes}


def payload_rules(tn: Net) -> list[dict[str, Any]]:
    """Payloads that verify as events but do not decode (PROTOCOL 1, 4)."""
    body = encode(raised(0))
    assert body[0] & 0xF0 == 0x80, "a fixmap"
    twice = bytes([body[0] + 1]) + body[1:] + encode("country") + encode("KE")
    c = Chain(tn, "lima-hr")
    return [
        {
            "name": "a key twice in a payload map (the last would win in most decoders)",
            "envelope": c.raw("alert.raised", twice).envelope().hex(),
            "reason": "malformed_payload",
        }
    ]


AUTHORITY_ROLES = {
    "lima-hr": [Role.RESPONDER],
    "nairobi-dl": [Role.RESPONDER],
    "jakarta-pb": [Role.RESPONDER],
    "acme-co": [Role.COMPANY],
}


def authority() -> dict[str, Any]:
    """PROTOCOL 4.3b: an alert lima-hr raised sealed to all but jakarta-pb; an outsider
    and members without the right try to change it, then a responder does."""
    tn = network(*AUTHORITY_ROLES, roles=AUTHORITY_ROLES)
    audience = ["acme-co", "lima-hr", "nairobi-dl"]
    c = {o: Chain(tn, o) for o in AUTHORITY_ROLES}
    r = c["lima-hr"].next(raised(0))
    a = r.id
    deadline = EscalationCause.DEADLINE
    steps = [
        (c["acme-co"].next(AlertClaimed(alert=a)), "claimed", "not_a_responder"),
        (c["jakarta-pb"].next(AlertClaimed(alert=a)), "claimed", "outside_audience"),
        (
            c["acme-co"].next(AlertResolved(alert=a, outcome=Outcome.SAFE)),
            "ended",
            "not_origin",
        ),
        (
            c["acme-co"].next(
                AlertEscalated(alert=a, level=10_000, targets=["acme-co"], cause=deadline)
            ),
            "escalated",
            "level",
        ),
        (c["nairobi-dl"].next(AlertClaimed(alert=a)), None, None),
        (c["nairobi-dl"].next(AlertResolved(alert=a, outcome=Outcome.SAFE)), None, None),
    ]
    return {
        "description": (
            "PROTOCOL 4.3b. `raise` was sealed whole to `audience` (4.6). Apply every "
            "event (any order gives the same result); each fact listed with a reason is "
            "refused for it and changes nothing; the rest give `view`."
        ),
        "genesis_cert": _cert(tn),
        "network_id": tn.net.hex(),
        "audience": audience,
        "raise": r.envelope().hex(),
        "facts": [
            {"envelope": e.envelope().hex(), "refused": kind, "reason": reason}
            for e, kind, reason in steps
        ],
        "view": {
            "status": "resolved",
            "claimants": ["nairobi-dl"],
            "ended_by": "nairobi-dl",
            "level": 0,
        },
    }


def removal() -> dict[str, Any]:
    """PROTOCOL 6: acme-co is removed with its epoch 1 cut at seq 1; what it signs after
    the cut is refused everywhere, what it signed before still verifies."""
    tn = network(*AUTHORITY_ROLES, roles=AUTHORITY_ROLES)
    c = Chain(tn, "acme-co")
    before, after = c.next(raised(0)), c.next(raised(1))
    data = next_roster(
        tn.roster,
        tn.roster_bytes,
        remove=["acme-co"],
        cut=[Cutoff(org="acme-co", epoch=1, last_seq=1)],
        created_ms=1_767_226_000_000,
    )
    approvers = ("jakarta-pb", "lima-hr", "nairobi-dl")
    cert = RosterCert(
        roster=data, approvals=[sign_roster(tn.keys[o], o, 1, data) for o in approvers]
    )
    return {
        "description": (
            "PROTOCOL 6. Roster version 1 moves acme-co to former and cuts its epoch 1 "
            "at seq 1. Under it, `before` verifies and `after` is refused."
        ),
        "genesis_cert": _cert(tn),
        "network_id": tn.net.hex(),
        "roster_v1_cert": encode_cert(cert).hex(),
        "before": before.envelope().hex(),
        "after": {"envelope": after.envelope().hex(), "reason": "epoch_cut_off"},
    }


def export(tn: Net) -> dict[str, Any]:
    """PROTOCOL 7: what a node that received these events of nairobi-dl's chain (the
    fourth missing) writes with `rrn log export`, line for line."""
    c = Chain(tn, "nairobi-dl")
    first = c.next(raised(2))
    second = c.next(AlertClaimed(alert=first.id))
    third = c.next(AlertResolved(alert=first.id, outcome=Outcome.SAFE), refs=[first.id])
    c.next(raised(3))  # never sent: a gap
    fifth = c.next(raised(4))
    cert = base64.b64encode(encode_cert(tn.cert)).decode()
    lines = [
        json.dumps({"type": "roster", "version": 0, "cert": cert}),
        json.dumps(
            {"type": "head", "origin": "nairobi-dl", "epoch": 1, "seq": 3, "id": third.id.hex()}
        ),
    ]
    for kind, event, status in (
        ("event", first, "applied"),
        ("event", second, "applied"),
        ("event", third, "unapplied"),  # refs_not_empty (3.7)
        ("held", fifth, "held"),
    ):
        h = event.header
        lines.append(
            json.dumps(
                {
                    "type": kind,
                    "id": event.id.hex(),
                    "origin": h.origin,
                    "epoch": h.epoch,
                    "seq": h.seq,
                    "kind": h.kind,
                    "wall_ms": h.wall_ms,
                    "status": status,
                    "envelope": base64.b64encode(event.envelope()).decode(),
                }
            )
        )
    return {
        "description": (
            "PROTOCOL 7. A node of lima-hr that received `received` (nairobi-dl's events 1, "
            "2, 3 and 5) exports exactly `lines`: the roster, the chain's head (seq 3: the "
            "tail a reader must find), the events in chain order with what the node did "
            "with each (3 names refs: kept unapplied), then the event held behind the gap."
        ),
        "received": _envelopes(first, second, third, fifth),
        "lines": lines,
    }
