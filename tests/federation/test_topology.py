"""The sparse mesh a roster's `links = k` asks for (PROTOCOL.md 10.5): every node
works out the same links, nobody behind NAT links to another, and the mesh stays
connected whichever k − 1 members fail or lie (pure rules)."""

from __future__ import annotations

import itertools
import random

import msgspec
import pytest

from rrn.federation.escalation import DEFAULT_POLICY
from rrn.federation.limits import DEFAULT_LIMITS
from rrn.federation.topology import backup_relayers, edges, links, ring_key
from rrn.node.membership.policy import changed_policy, describe_mesh
from rrn.protocol.errors import ConfigError, DecodeError
from rrn.protocol.roster import decode_roster, encode_roster
from tests.support import network


def _orgs(n: int, nat: int = 0) -> list[tuple[str, bool]]:
    return [(f"org-{i:03d}", i >= nat) for i in range(n)]


def _degrees(mesh: set[tuple[str, str]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for a, b in mesh:
        found[a] = found.get(a, 0) + 1
        found[b] = found.get(b, 0) + 1
    return found


def _connected(nodes: set[str], mesh: set[tuple[str, str]]) -> bool:
    if not nodes:
        return True
    seen, todo = set(), [next(iter(nodes))]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo += [b if a == n else a for a, b in mesh if n in (a, b) and {a, b} <= nodes]
    return seen == nodes


@pytest.mark.parametrize(
    ("n", "nat", "k"), [(7, 0, 2), (8, 0, 3), (9, 0, 3), (10, 3, 4), (12, 4, 3)]
)
def test_no_k_minus_one_members_can_cut_the_mesh(n: int, nat: int, k: int) -> None:
    """Whichever k − 1 members are down or drop what they should pass on, every other
    member still reaches every other through the rest."""
    members = _orgs(n, nat)
    mesh = edges(members, k)
    everyone = {org for org, _ in members}
    for gone in itertools.combinations(sorted(everyone), k - 1):
        rest = everyone - set(gone)
        assert _connected(rest, mesh), f"{gone} cut the mesh"


def test_each_member_holds_about_k_links_and_nat_pairs_none() -> None:
    members = _orgs(40, nat=10)
    mesh = edges(members, 4)
    reachable = {org for org, r in members if r}
    degrees = _degrees(mesh)
    for org, r in members:
        if r:
            assert 4 <= degrees[org] <= 4 + 4, (org, degrees[org])  # plus NAT members' links
        else:
            assert degrees[org] == 4
    assert all(a in reachable or b in reachable for a, b in mesh), "two NAT members never link"
    assert len(mesh) < 40 * 39 // 2 // 4, "sparse: far fewer links than a full mesh"


def test_every_node_works_out_the_same_mesh_whatever_order_it_reads() -> None:
    members = _orgs(30, nat=8)
    shuffled = list(members)
    random.Random(7).shuffle(shuffled)
    assert edges(members, 3) == edges(shuffled, 3)
    # places follow a hash of the org id, not the alphabet of names
    order = sorted((org for org, r in members if r), key=ring_key)
    assert order != sorted(order)


def test_without_links_or_with_k_at_least_the_members_it_is_a_full_mesh() -> None:
    members = _orgs(6, nat=2)
    full = {(a, b) for (a, ra), (b, rb) in itertools.combinations(members, 2) if ra or rb}
    assert edges(members, None) == full
    assert edges(members, 4) == full  # 4 reachable: k ≥ m
    assert edges(members, 3) != full  # a NAT member holds 3 of the 4


def test_links_from_a_roster_agree_on_both_sides() -> None:
    orgs = [f"m{i}-org" for i in range(9)]
    tn = network(*orgs)
    reachable = set(orgs[:7])
    members = [
        msgspec.structs.replace(
            m, endpoints=[f"{m.org}.example:7422"] if m.org in reachable else []
        )
        for m in tn.roster.members
    ]
    policy = msgspec.structs.replace(DEFAULT_POLICY, limits=DEFAULT_LIMITS, links=3)
    roster = msgspec.structs.replace(tn.roster, members=members, policy=policy)
    plan = {o: {link.peer.org: link.dial for link in links(roster, o)} for o in orgs}
    for o in orgs:
        assert len(plan[o]) >= 3
        for peer, dial in plan[o].items():
            assert plan[peer][o] is not dial, "the link is known to both, dialled by one"
    assert sum(len(p) for p in plan.values()) // 2 < 9 * 8 // 2 - 2


def test_a_roster_with_links_keeps_one_encoding() -> None:
    tn = network("a-org", "b-org", "c-org")
    with_links = msgspec.structs.replace(
        tn.roster, policy=msgspec.structs.replace(DEFAULT_POLICY, limits=DEFAULT_LIMITS, links=4)
    )
    data = encode_roster(with_links)
    assert decode_roster(data).policy == with_links.policy
    assert msgspec.msgpack.decode(data)[-1][-1] == 4, "links is the policy's sixth element"
    plain = msgspec.structs.replace(tn.roster, policy=DEFAULT_POLICY)
    assert len(msgspec.msgpack.decode(encode_roster(plain))[-1]) == 4, "absent when unset"
    no_limits = msgspec.structs.replace(
        tn.roster, policy=msgspec.structs.replace(DEFAULT_POLICY, links=4)
    )
    with pytest.raises(DecodeError, match="links gives its limits"):
        encode_roster(no_limits)
    too_few = msgspec.structs.replace(
        tn.roster, policy=msgspec.structs.replace(DEFAULT_POLICY, limits=DEFAULT_LIMITS, links=1)
    )
    with pytest.raises(DecodeError):
        encode_roster(too_few)


def test_each_origin_has_two_reachable_backup_relayers_next_on_the_ring() -> None:
    orgs = [f"m{i}-org" for i in range(6)]
    tn = network(*orgs)
    members = [
        msgspec.structs.replace(m, endpoints=[] if m.org == "m0-org" else [f"{m.org}.x:7422"])
        for m in tn.roster.members
    ]
    roster = msgspec.structs.replace(tn.roster, members=members)
    ring = sorted(orgs[1:], key=ring_key)
    for origin in orgs:
        backups = backup_relayers(roster, origin)
        assert len(backups) == 2 and origin not in backups
        assert "m0-org" not in backups, "a member behind NAT accepts no links: it cannot back up"
        if origin in ring:
            i = ring.index(origin)
            assert backups == {ring[(i + 1) % 5], ring[(i + 2) % 5]}
    spread = [backup_relayers(roster, o) for o in ring]
    assert len(set().union(*spread)) == 5, "the load is spread over every reachable member"


def test_links_as_operators_write_them() -> None:
    """`--links K|full` (rrn network genesis, member propose, devnet up): a clear error
    for what the roster would refuse; a sparse policy carries its limits written out."""
    sparse = changed_policy(None, links="4")
    assert sparse is not None and (sparse.links, sparse.limits) == (4, DEFAULT_LIMITS)
    assert describe_mesh(sparse) == "sparse, 4 links per member"
    full = changed_policy(sparse, links="full")
    assert full is not None and full.links is None
    assert describe_mesh(full).startswith("full")
    both = changed_policy(None, escalation="immediate=5m", links="3")
    assert both is not None and (both.immediate_s, both.links) == (300, 3)
    assert changed_policy(sparse) is None, "nothing asked: the policy stays as it is"
    for bad in ("1", "256", "four", "-3"):
        with pytest.raises(ConfigError, match="give 2 to 255 links per member"):
            changed_policy(None, links=bad)
