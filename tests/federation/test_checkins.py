"""Missed check-ins become alerts every node derives alike: one alert per plan and
slot whoever publishes the miss, ended by a check-in with one of the slot's codes,
never raised early, outside the audience, or after the plan's end; the duress alert
only from the origin, to the origin alone."""

from __future__ import annotations

import itertools
import random

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.federation.alert_view import AlertView, derive
from rrn.federation.alerts import AlertState, AlertStatus, join
from rrn.federation.authority import Authority, Refused, authorise
from rrn.federation.keyring import Keyring
from rrn.federation.roster import verify_genesis
from rrn.node.pipeline.facts import Fact
from rrn.node.pipeline.projection import singles_of
from rrn.protocol.checkins import (
    CheckinEnded,
    CheckinMissed,
    CheckinPlanned,
    CheckinRecorded,
    DuressMap,
    commitment,
    missed_alert_id,
    new_code,
    normal_code,
)
from rrn.protocol.drills import moments, secret_commitment
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event, verify_event
from rrn.protocol.kinds import FactPayload, decode_payload
from rrn.protocol.roster import decode_cert
from rrn.protocol.sealing import Position, encode_sealed, seal
from tests.protocol.test_vectors import VECTORS
from tests.support import Chain, network, raised

ORGS = ("lima-hr", "nairobi-dl", "jakarta-pb", "acme-co")
TN = network(*ORGS)
AUTH = Authority.anyone(ORGS[:3])  # acme-co is not a member of this roster
GRACE = 600_000
CODES = [(new_code(), new_code()) for _ in range(3)]  # (check-in, duress) per slot


def plan(chain: Chain, *, slots: int = 3) -> Event:
    start = chain.wall_ms + 3_600_000
    duress_blob = seal(
        encode(DuressMap([1] * slots)),
        {"lima-hr": X25519PrivateKey.generate().public_key()},
        Position(TN.net, "lima-hr", 1, chain.seq + 1),
    )
    return chain.next(
        CheckinPlanned(
            alert=raised(1),
            slots=[start + k * 3_600_000 for k in range(slots)],
            grace_ms=GRACE,
            codes=[[commitment(c), commitment(d)] for c, d in CODES[:slots]],
            duress=encode_sealed(duress_blob),
        )
    )


def _judged(events: list[Event], auth: Authority = AUTH) -> list[tuple[AlertState, list[Refused]]]:
    facts: list[Fact] = []
    for e in events:
        assert e.payload is not None
        p = decode_payload(e.header.kind, e.payload)
        assert isinstance(p, FactPayload)
        facts.append((e, p, ()))
    states: dict[bytes, AlertState] = {}
    for single in singles_of(facts, {}, lambda a: a in states):
        known = states.get(single.alert)
        states[single.alert] = single if known is None else join(known, single)
    return [authorise(s, auth) for s in states.values()]


def views(events: list[Event]) -> dict[bytes, AlertView]:
    found = [derive(allowed) for allowed, _ in _judged(events)]
    return {v.alert: v for v in found if v is not None}


def refused(events: list[Event]) -> set[tuple[str, str, str]]:
    return {(r.pos.org, r.kind, r.reason) for _, rs in _judged(events) for r in rs}


def test_two_members_publishing_a_miss_make_one_alert_in_any_order() -> None:
    lima, nairobi, jakarta = (Chain(TN, o) for o in ORGS[:3])
    p = plan(lima)
    deadline = p and decode_payload(p.header.kind, p.payload or b"")
    assert isinstance(deadline, CheckinPlanned)
    due = deadline.slots[0] + GRACE
    miss_n = nairobi.raw("checkin.missed", encode(CheckinMissed(plan=p.id, slot=0)), wall_ms=due)
    miss_j = jakarta.raw(
        "checkin.missed", encode(CheckinMissed(plan=p.id, slot=0)), wall_ms=due + 5000
    )
    seen = set()
    for order in itertools.permutations([p, miss_n, miss_j]):
        v = views(list(order))
        assert list(v) == [missed_alert_id(p.id, 0)], "one alert, its id from plan and slot"
        alert = v[missed_alert_id(p.id, 0)]
        seen.add((alert.origin, alert.raised_ms, alert.status, alert.pseudonym))
    assert seen == {("lima-hr", due, AlertStatus.OPEN, raised(1).pseudonym)}


def test_a_check_in_with_either_code_ends_the_alert_a_wrong_code_does_not() -> None:
    lima, nairobi, jakarta = (Chain(TN, o) for o in ORGS[:3])
    p = plan(lima)
    body = decode_payload(p.header.kind, p.payload or b"")
    assert isinstance(body, CheckinPlanned)
    due = body.slots[0] + GRACE
    miss = nairobi.raw("checkin.missed", encode(CheckinMissed(plan=p.id, slot=0)), wall_ms=due)
    wrong = jakarta.raw(
        "checkin.recorded",
        encode(CheckinRecorded(plan=p.id, slot=0, code=CODES[1][0])),  # slot 1's code
        wall_ms=due + 1000,
    )
    alert = missed_alert_id(p.id, 0)
    assert views([p, miss, wrong])[alert].status is AlertStatus.OPEN
    assert ("jakarta-pb", "checkin", "bad_code") in refused([p, miss, wrong])
    for code in CODES[0]:  # the check-in code, or the duress one: alike to all
        late = jakarta.raw(
            "checkin.recorded",
            encode(CheckinRecorded(plan=p.id, slot=0, code=code)),
            wall_ms=due + 2000,
        )
        for order in itertools.permutations([p, miss, late]):
            v = views(list(order))[alert]
            assert (v.status, v.end_code) == (AlertStatus.CANCELLED, "checked_in")


def test_no_alert_before_the_deadline_outside_the_audience_or_after_the_end() -> None:
    lima, nairobi = Chain(TN, "lima-hr"), Chain(TN, "nairobi-dl")
    acme = Chain(TN, "acme-co")
    p = plan(lima)
    body = decode_payload(p.header.kind, p.payload or b"")
    assert isinstance(body, CheckinPlanned)
    due = body.slots[1] + GRACE
    early = nairobi.raw("checkin.missed", encode(CheckinMissed(plan=p.id, slot=1)), wall_ms=due - 1)
    outsider = acme.raw("checkin.missed", encode(CheckinMissed(plan=p.id, slot=1)), wall_ms=due)
    assert views([p, early, outsider]) == {}
    assert refused([p, early, outsider]) == {
        ("nairobi-dl", "missed", "too_soon"),
        ("acme-co", "missed", "not_a_member"),
    }
    end = lima.raw("checkin.ended", encode(CheckinEnded(plan=p.id)), wall_ms=due - 60_000)
    miss = nairobi.raw("checkin.missed", encode(CheckinMissed(plan=p.id, slot=1)), wall_ms=due + 10)
    for order in itertools.permutations([p, end, miss]):
        if order.index(p) > order.index(end):
            continue  # the end follows its plan in the origin's chain
        assert views(list(order)) == {}, "the plan ended before the deadline"


def test_the_duress_alert_is_the_origins_alone() -> None:
    lima, nairobi = Chain(TN, "lima-hr"), Chain(TN, "nairobi-dl")
    p = plan(lima)
    body = decode_payload(p.header.kind, p.payload or b"")
    assert isinstance(body, CheckinPlanned)
    at = body.slots[0] + GRACE
    forged = nairobi.raw(
        "checkin.missed", encode(CheckinMissed(plan=p.id, slot=0, duress=True)), wall_ms=at
    )
    assert views([p, forged]) == {}
    own = lima.raw(
        "checkin.missed", encode(CheckinMissed(plan=p.id, slot=0, duress=True)), wall_ms=at
    )
    v = views([p, forged, own])[missed_alert_id(p.id, 0, duress=True)]
    assert v.audience == ("lima-hr",) and v.origin == "lima-hr"


def test_the_checkin_vector_in_any_order() -> None:
    section = VECTORS["checkins"]
    roster = verify_genesis(decode_cert(bytes.fromhex(section["genesis_cert"])))
    net, resolve = bytes.fromhex(section["network_id"]), Keyring(roster).resolve
    plan = verify_event(bytes.fromhex(section["plan"]), net=net, resolve=resolve)
    body = decode_payload(plan.header.kind, plan.payload or b"")
    assert isinstance(body, CheckinPlanned)
    codes = [[c["code"], c["duress_code"]] for c in section["codes"]]
    assert [[commitment(c).hex() for c in pair] for pair in codes] == section["commitments"]
    assert [[h.hex() for h in pair] for pair in body.codes] == section["commitments"]
    facts = [verify_event(bytes.fromhex(f["envelope"]), net=net, resolve=resolve)
             for f in section["facts"]]  # fmt: skip
    refused_expected = sorted(
        (e.id.hex(), f["refused"], f["reason"])
        for e, f in zip(facts, section["facts"], strict=True)
        if f["reason"] is not None
    )
    rng = random.Random(7)
    for _ in range(12):
        order = [plan, *rng.sample(facts, len(facts))]
        end = next(e for e in facts if e.header.kind == "checkin.ended")
        judged = _judged(order, Authority.of(roster))
        refused = sorted((r.pos.id.hex(), r.kind, r.reason) for _, rs in judged for r in rs)
        assert refused == refused_expected, f"in the order ending with {end.id.hex()[:8]}"
        found = {
            v.alert.hex(): {
                "origin": v.origin,
                "raised_ms": v.raised_ms,
                "status": str(v.status),
                "end_code": v.end_code,
                "audience": list(v.audience),
            }
            for v in (derive(allowed) for allowed, _ in judged)
            if v is not None
        }
        assert found == section["alerts"]


def test_the_drill_vector() -> None:
    v = VECTORS["drills"]
    secret = bytes.fromhex(v["secret"])
    assert secret_commitment(secret).hex() == v["commitment"]
    due = moments(secret, v["start_ms"], v["end_ms"], len(v["moments"]))
    assert due == v["moments"] and all(v["start_ms"] <= m < v["end_ms"] for m in due)
    assert moments(b"\x01" * 32, v["start_ms"], v["end_ms"], 4) != due, "another secret"


def test_a_code_as_read_over_a_bad_line_is_the_code() -> None:
    code = "lzndf335i3rm62zz"
    assert normal_code("LZND-F335-I3RM-62ZZ") == code
    assert normal_code("1znd f335 i3rm 62zz") == code, "1 for l"
    assert commitment(normal_code("0l8a-aaaa-aaaa-aaaa")) == commitment("olbaaaaaaaaaaaaa")


def test_a_plan_cannot_make_the_others_raise_its_past() -> None:
    """A slot due before its plan was signed (or over a year after) raises nothing, so a
    member cannot make the others sign misses for the past."""
    lima, nairobi = Chain(TN, "lima-hr"), Chain(TN, "nairobi-dl")
    past = lima.wall_ms - 3_600_000
    body = CheckinPlanned(
        alert=raised(1),
        slots=[past],
        grace_ms=GRACE,
        codes=[[commitment(CODES[0][0]), commitment(CODES[0][1])]],
        duress=encode_sealed(
            seal(
                encode(DuressMap([1])),
                {"lima-hr": X25519PrivateKey.generate().public_key()},
                Position(TN.net, "lima-hr", 1, 1),
            )
        ),
    )
    p = lima.next(body)
    miss = nairobi.raw(
        "checkin.missed", encode(CheckinMissed(plan=p.id, slot=0)), wall_ms=p.header.wall_ms
    )
    assert views([p, miss]) == {}
    assert ("nairobi-dl", "missed", "slot_out_of_plan") in refused([p, miss])
