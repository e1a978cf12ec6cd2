"""Who links to whom: one leafnode link per pair of members, dialled by one side.

Owns the rule every node applies to the roster to decide its links (docs/
OPERATIONS.md, "Topology"). The reachable side accepts; when both are
reachable the member whose org id sorts first dials; two members both behind
NAT have no direct link and reach each other through relayed events. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from rrn.protocol.roster import Member, Roster

__all__ = ["Link", "adjacency", "links", "relayed_signs"]


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


def adjacency(roster: Roster) -> dict[str, frozenset[str]]:
    """Every member's direct peers, as every node computes them."""
    return {
        m.org: frozenset(link.peer.org for link in links(roster, m.org)) for m in roster.members
    }


def relayed_signs(roster: Roster, me: str) -> tuple[bool, frozenset[str]]:
    """Signs of life (PROTOCOL.md 10.1b): whether `me` publishes its own (some member
    has no direct link to it), and whose `me` passes on (those of members that one of
    its direct peers has no direct link to)."""
    adj = adjacency(roster)
    mine = adj.get(me, frozenset())
    orgs = set(adj)
    publish = bool(orgs - mine - {me})
    passes = frozenset(
        origin for origin in orgs - {me} if any(m != origin and origin not in adj[m] for m in mine)
    )
    return publish, passes
