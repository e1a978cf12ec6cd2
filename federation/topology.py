"""Who links to whom: one leafnode link per pair of members, dialled by one side.

Owns the rule every node applies to the roster to decide its links (docs/
OPERATIONS.md, "Topology"). The reachable side accepts; when both are
reachable the member whose org id sorts first dials; two members both behind
NAT have no direct link and reach each other through relayed events. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from rrn.protocol.roster import Member, Roster

__all__ = ["Link", "heard_in", "hears_bits", "links"]


@dataclass(frozen=True)
class Link:
    """This node's side of its link with one peer."""

    peer: Member
    #: True: this node dials the peer at `peer.endpoints`; False: the peer dials us.
    dial: bool


def links(roster: Roster, me: str) -> list[Link]:
    """This node's direct links, sorted by peer; members it cannot link to are absent."""
    mine = roster.member(me)
    if mine is None:
        return []
    found = []
    for peer in roster.members:
        if peer.org == me:
            continue
        i_listen, they_listen = bool(mine.endpoints), bool(peer.endpoints)
        if not i_listen and not they_listen:
            continue
        dial = they_listen and (not i_listen or me < peer.org)
        found.append(Link(peer, dial))
    return found


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
