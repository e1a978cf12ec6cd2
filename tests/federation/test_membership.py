"""Topology, sync planning, rate limits and roster assembly (pure rules)."""

from __future__ import annotations

import msgspec

from rrn.federation.membership import Proposals
from rrn.federation.ratelimit import TokenBucket
from rrn.federation.sync import Gap, gaps
from rrn.federation.topology import heard_in, hears_bits, links
from rrn.protocol.messages import HeadEntry
from rrn.protocol.roster import encode_roster, member_from_card, roster_id, sign_roster
from tests.support import Net, card, key, network

ORGS = ("a-org", "b-org", "c-org", "d-org")


def _with_endpoints(tn: Net, reachable: set[str]) -> Net:
    members = [
        msgspec.structs.replace(
            m, endpoints=[f"{m.org}.example:7422"] if m.org in reachable else []
        )
        for m in tn.roster.members
    ]
    tn.roster = msgspec.structs.replace(tn.roster, members=members)
    return tn


def test_each_pair_has_one_dialler_and_nat_pairs_have_none() -> None:
    tn = _with_endpoints(network(*ORGS), {"a-org", "b-org"})
    plan = {o: {link.peer.org: link.dial for link in links(tn.roster, o)} for o in ORGS}
    assert plan["a-org"] == {"b-org": True, "c-org": False, "d-org": False}
    assert plan["b-org"] == {"a-org": False, "c-org": False, "d-org": False}
    assert plan["c-org"] == {"a-org": True, "b-org": True}  # behind NAT: dials out
    assert plan["d-org"] == {"a-org": True, "b-org": True}
    for x in ORGS:
        for y, dial in plan[x].items():
            assert plan[y][x] is not dial, "exactly one side of each link dials"


def test_a_sign_of_life_says_whom_its_signer_hears_one_bit_each() -> None:
    tn = network(*ORGS)
    bits = hears_bits(tn.roster, {"b-org", "d-org"})
    assert bits == bytes([0b0101_0000])
    assert [heard_in(tn.roster, bits, o) for o in ORGS] == [False, True, False, True]
    assert not heard_in(tn.roster, b"", "b-org"), "a short bitmap hears nobody"
    assert not heard_in(tn.roster, bits, "x-org")


def test_gaps_follow_the_peer_heads() -> None:
    theirs = [
        HeadEntry(origin="a-org", epoch=1, seq=10, id=b"\x00" * 32),
        HeadEntry(origin="b-org", epoch=1, seq=3, id=b"\x00" * 32),
        HeadEntry(origin="c-org", epoch=2, seq=5, id=b"\x00" * 32),
        HeadEntry(origin="x-org", epoch=1, seq=5, id=b"\x00" * 32),
    ]
    mine = {("a-org", 1): 4, ("b-org", 1): 3}
    got = gaps(mine, theirs, frozen={("c-org", 2): 2}, known_orgs={"a-org", "b-org", "c-org"})
    assert got == [Gap("a-org", 1, 5, 10), Gap("c-org", 2, 1, 2)]


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=10, burst=5, now_s=0)
    assert sum(bucket.allow(0) for _ in range(20)) == 5
    assert not bucket.allow(0.05)
    assert bucket.allow(0.1)
    assert sum(bucket.allow(100) for _ in range(20)) == 5, "saving up stops at the burst"


def _proposal(tn: Net) -> tuple[bytes, bytes]:
    newcomer = key("e-org")
    members = sorted(
        [*tn.roster.members, member_from_card(card("e-org", newcomer))], key=lambda m: m.org
    )
    new = msgspec.structs.replace(
        tn.roster, version=1, prev=roster_id(tn.roster_bytes), members=members
    )
    data = encode_roster(new)
    return data, roster_id(data)


def test_proposal_becomes_valid_once_threshold_and_newcomer_signed() -> None:
    tn = network(*ORGS)  # threshold 3
    data, rid = _proposal(tn)
    props = Proposals(tn.roster, tn.roster_bytes)
    props.approve(rid, [sign_roster(tn.keys["b-org"], "b-org", 1, data)])  # before the proposal
    props.propose(data, [sign_roster(tn.keys["a-org"], "a-org", 1, data)], by="a-org")
    assert props.ready() is None
    props.approve(rid, [sign_roster(tn.keys["c-org"], "c-org", 1, data)])
    assert props.ready() is None
    assert "e-org" in (props.get(rid).problem or "")  # type: ignore[union-attr]
    props.approve(rid, [sign_roster(key("e-org"), "e-org", 1, data)])
    cert = props.ready()
    assert cert is not None and cert.roster == data
    props.advance(msgspec.msgpack.decode(data, type=type(tn.roster)), data)
    assert props.pending() == []


def test_junk_approval_does_not_block_a_real_one() -> None:
    tn = network(*ORGS)
    data, rid = _proposal(tn)
    props = Proposals(tn.roster, tn.roster_bytes)
    forged = sign_roster(key("intruder"), "b-org", 1, data)
    props.propose(data, [forged, sign_roster(tn.keys["a-org"], "a-org", 1, data)], by="a-org")
    real = [sign_roster(tn.keys[o], o, 1, data) for o in ("b-org", "c-org")]
    props.approve(rid, [*real, sign_roster(key("e-org"), "e-org", 1, data)])
    assert props.ready() is not None
