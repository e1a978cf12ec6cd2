"""Who links to whom: at most one leafnode link per pair of members, dialled by one
side.

Owns the rule every node applies to the roster to decide its links (PROTOCOL.md
10.5; docs/OPERATIONS.md, "Topology"). The reachable side accepts; when both are
reachable the member whose org id sorts first dials; two members both behind NAT
never link and reach each other through relayed events. Without a `links` policy
every other pair links (a full mesh). With `links = k` the mesh is sparse: the
reachable members, in the order of a hash of their org ids, form a Harary graph
H(k, m) — each linked to its k/2 nearest on each side of the ring, and across it
when k is odd — which stays connected when any k − 1 of them fail or lie; each
member behind NAT links to k reachable members spread round that ring. Pure (it
keeps the plan of the last roster it was given, so a node works each out once).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from rrn.protocol.roster import Member, Roster

__all__ = ["Link", "backup_relayers", "edges", "heard_in", "hears_bits", "links", "ring_key"]

#: Members that republish each alert raise and escalation whatever their peers hear
#: (PROTOCOL.md 10.3): a second path, so that one stalled link does not delay it.
BACKUP_RELAYERS: Final = 2

_RING: Final = b"rrn/topology/v1\x00"


@dataclass(frozen=True)
class Link:
    """This node's side of its link with one peer."""

    peer: Member
    #: True: this node dials the peer at `peer.endpoints`; False: the peer dials us.
    dial: bool


def ring_key(org: str) -> bytes:
    """A member's place on the ring of a sparse mesh: SHA-256("rrn/topology/v1" 0x00
    org), so places do not follow the alphabet of names."""
    return hashlib.sha256(_RING + org.encode()).digest()


def edges(members: Iterable[tuple[str, bool]], k: int | None) -> set[tuple[str, str]]:
    """Every link of the network as (a, b) with a < b, from (org, reachable) pairs and
    the policy's `links` (None: a full mesh)."""
    listed = list(members)
    reach = sorted((org for org, r in listed if r), key=ring_key)
    nat = [org for org, r in listed if not r]
    m = len(reach)
    found: set[tuple[str, str]] = set()

    def add(a: str, b: str) -> None:
        if a != b:
            found.add((a, b) if a < b else (b, a))

    if k is None or k >= m - 1:
        for i, a in enumerate(reach):
            for b in reach[i + 1 :]:
                add(a, b)
    else:
        for i, a in enumerate(reach):
            for d in range(1, k // 2 + 1):
                add(a, reach[(i + d) % m])
        if k % 2:  # across the ring: m/2 away, or (m+1)/2 from the first half when m is odd
            for i in range((m + 1) // 2 if m % 2 else m // 2):
                add(reach[i], reach[(i + (m + 1) // 2) % m])
    keys = [ring_key(org) for org in reach]
    for org in nat:
        if k is None or m <= k:
            targets = reach
        else:
            start = bisect.bisect(keys, ring_key(org))
            targets = [reach[(start + j * m // k) % m] for j in range(k)]
        for peer in targets:
            add(org, peer)
    return found


def links(roster: Roster, me: str) -> list[Link]:
    """This node's direct links, sorted by peer; members it does not link to are absent."""
    mine = roster.member(me)
    if mine is None:
        return []
    mesh = _plan(roster).mesh
    found = []
    for peer in roster.members:
        if peer.org == me or (not mine.endpoints and not peer.endpoints):
            continue
        if mesh is not None and (min(me, peer.org), max(me, peer.org)) not in mesh:
            continue
        dial = bool(peer.endpoints) and (not mine.endpoints or me < peer.org)
        found.append(Link(peer, dial))
    return found


def backup_relayers(roster: Roster, origin: str) -> set[str]:
    """The members that republish `origin`'s alert raises and escalations in any mesh:
    the BACKUP_RELAYERS reachable members that follow it on the ring."""
    ring, keys = _plan(roster).ring, _plan(roster).keys
    start = bisect.bisect(keys, ring_key(origin))
    after = (ring[(start + j) % len(ring)] for j in range(len(ring)))
    return set(itertools.islice((o for o in after if o != origin), BACKUP_RELAYERS))


@dataclass(frozen=True)
class _Plan:
    """What a roster's topology rule gives, worked out once per roster a node holds."""

    roster: Roster
    #: The reachable members in ring order, and their ring keys.
    ring: list[str]
    keys: list[bytes]
    #: The sparse mesh's links; None when it is full (every pair not both behind NAT).
    mesh: set[tuple[str, str]] | None


_last: list[_Plan] = []


def _plan(roster: Roster) -> _Plan:
    if _last and _last[0].roster is roster:
        return _last[0]
    ring = sorted((m.org for m in roster.members if m.endpoints), key=ring_key)
    k = roster.policy.links if roster.policy is not None else None
    mesh = None
    if k is not None and k < len(ring):
        mesh = edges(((m.org, bool(m.endpoints)) for m in roster.members), k)
    _last[:] = [_Plan(roster, ring, [ring_key(o) for o in ring], mesh)]
    return _last[0]


def hears_bits(roster: Roster, heard: set[str]) -> bytes:
    """Which members a node hears directly, as a sign of life says it (PROTOCOL.md
    10.1b): one bit per member of the roster in org order, first member in the high
    bit of the first byte."""
    orgs = sorted(m.org for m in roster.members)
    bits = bytearray((len(orgs) + 7) // 8)
    for i, org in enumerate(orgs):
        if org in heard:
            bits[i // 8] |= 0x80 >> (i % 8)
    return bytes(bits)


def heard_in(roster: Roster, bits: bytes, org: str) -> bool:
    """Whether `bits` (hears_bits under the same roster) says `org` is heard directly."""
    orgs = sorted(m.org for m in roster.members)
    if org not in orgs:
        return False
    i = orgs.index(org)
    return i // 8 < len(bits) and bool(bits[i // 8] & (0x80 >> (i % 8)))
