"""Collective actions: which joins, withdrawals and signatures count, and the outcome
every node derives alike from them (docs/PROTOCOL.md 4.9).

Owns the rules of the collective facts of an alert and the assurance contract: a
proposal is met at the first signed time at which the members that joined and had
not withdrawn satisfy every quota of its threshold; from then on every joiner is
committed (a later join until the deadline too), and a withdrawal is recorded as
one after commitment. The outcome depends only on the signed facts, never on the
reader's clock: "expired" (deadline past, unmet) is for readers to say. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final

import msgspec

from rrn.federation.alerts import CollectiveFact
from rrn.protocol.collective import CollectiveProposed

__all__ = ["MAX_PROPOSALS", "CollectiveView", "by_proposal", "eligible", "judge", "outcome"]

#: Proposals one member may make on one alert: every proposal pages every eligible
#: supporter, so a member that floods them is refused (`too_many`) alike everywhere.
MAX_PROPOSALS: Final = 5


class CollectiveView(msgspec.Struct, frozen=True, kw_only=True):
    """One proposal as the rules leave it."""

    proposal: bytes
    proposer: str
    #: The proposal's signed time.
    proposed_ms: int
    action: str
    channel: str
    deadline_ms: int
    #: role -> count needed
    threshold: dict[str, int]
    #: Members that joined and stand (in the order they joined).
    joined: list[str]
    #: When the threshold was met (a signed time), or None.
    met_ms: int | None
    #: Bound to act: every joiner standing when the threshold was met, or joining later.
    committed: list[str]
    #: Committed members that withdrew afterwards (recorded as such).
    withdrew_after: list[str]
    #: text hash (hex) -> the committed members that signed it
    signatures: dict[str, list[str]]
    sealed_to: list[str] = []
    #: Who may join: members with one of these roles, or these members.
    join_roles: list[str] = []
    join_members: list[str] = []

    def may_join(self, org: str, roles: Mapping[str, frozenset[str]]) -> bool:
        """Whether `org` (roster `roles` by member) may join (the audience aside)."""
        return org in self.join_members or bool(roles.get(org, frozenset()) & set(self.join_roles))


Refusal = tuple[CollectiveFact, str]


def judge(
    facts: tuple[CollectiveFact, ...],
    *,
    within: Callable[[str], bool],
    roles: Mapping[str, frozenset[str]],
) -> tuple[tuple[CollectiveFact, ...], list[Refusal]]:
    """The collective facts the rules allow, and the refused ones with their reasons:
    a proposal from within the alert's audience (`outside_audience`), at most
    `MAX_PROPOSALS` per member on one alert in signed order (`too_many`); a join from within
    it by an eligible member (`not_eligible`), signed no earlier than the proposal
    (`too_soon`) and by the deadline (`too_late`), one per member (`joined_already`); a
    withdrawal by a member that joined (`not_joined`); a signature by a committed
    member (`not_committed`)."""
    proposals: dict[bytes, CollectiveFact] = {}
    refused: list[Refusal] = []
    made: dict[str, int] = {}
    for f in sorted((f for f in facts if f.kind == "proposed"), key=_signed_order):
        org = f.pos.org
        if not within(org):
            refused.append((f, "outside_audience"))
        elif made.get(org, 0) >= MAX_PROPOSALS:
            refused.append((f, "too_many"))
        else:
            made[org] = made.get(org, 0) + 1
            proposals[f.proposal] = f
    allowed = list(proposals.values())
    rest = sorted((f for f in facts if f.kind != "proposed"), key=_signed_order)
    for proposal, mine in by_proposal(rest).items():
        p = proposals.get(proposal)
        if p is None or p.proposed is None:
            refused += [(f, "no_proposal") for f in mine]
            continue
        kept, why = _judge_one(p, mine, within, roles)
        allowed += kept
        refused += why
    return tuple(sorted(allowed, key=lambda f: f.pos)), refused


def by_proposal(facts: Iterable[CollectiveFact]) -> dict[bytes, list[CollectiveFact]]:
    """The facts of each proposal, in the order given."""
    found: dict[bytes, list[CollectiveFact]] = {}
    for f in facts:
        found.setdefault(f.proposal, []).append(f)
    return found


def eligible(p: CollectiveProposed, org: str, roles: Mapping[str, frozenset[str]]) -> bool:
    """Whether `org` (with its roster `roles`) may join `p` (the audience aside)."""
    return org in p.members or bool(roles.get(org, frozenset()) & _join_roles(p))


def _join_roles(p: CollectiveProposed) -> set[str]:
    return {str(r) for r in p.roles} or {str(q.role) for q in p.threshold}


def _judge_one(
    proposal: CollectiveFact,
    facts: list[CollectiveFact],
    within: Callable[[str], bool],
    roles: Mapping[str, frozenset[str]],
) -> tuple[list[CollectiveFact], list[Refusal]]:
    p, since = proposal.proposed, proposal.pos.wall_ms
    assert p is not None
    kept: list[CollectiveFact] = []
    refused: list[Refusal] = []
    joined: set[str] = set()
    for given in facts:  # in signed order
        f, org = given, given.pos.org
        if f.kind == "joined":
            why = (
                "outside_audience" if not within(org)
                else "not_eligible" if not eligible(p, org, roles)
                else "too_soon" if f.pos.wall_ms < since
                else "too_late" if f.pos.wall_ms > p.deadline_ms
                else "joined_already" if org in joined
                else None
            )  # fmt: skip
            if why is None:
                joined.add(org)
                f = msgspec.structs.replace(f, roles=tuple(sorted(roles.get(org, ()))))
        elif f.kind == "withdrawn":
            why = None if org in joined else "not_joined"
            joined.discard(org)
        else:
            why = None  # a signature: judged against the outcome (outcome())
        if why is None:
            kept.append(f)
        else:
            refused.append((f, why))
    return kept, refused


def outcome(
    proposal: CollectiveFact, facts: Iterable[CollectiveFact]
) -> tuple[CollectiveView, list[Refusal]]:
    """The view of one proposal from its allowed facts (see `judge`: each join carries
    its member's roles; those of other proposals are passed over), and the signatures
    by members not committed (`not_committed`)."""
    p = proposal.proposed
    assert p is not None
    need = {str(q.role): q.count for q in p.threshold}
    standing: dict[str, int] = {}  # org -> order it joined
    held: dict[str, tuple[str, ...]] = {}
    met_ms: int | None = None
    committed: list[str] = []
    withdrew_after: list[str] = []
    signatures: dict[str, list[str]] = {}
    refused: list[Refusal] = []
    mine = sorted((f for f in facts if f.proposal == proposal.proposal and f.kind != "proposed"),
                  key=_signed_order)  # fmt: skip
    for f in mine:
        org = f.pos.org
        if f.kind == "joined":
            standing[org], held[org] = len(standing), f.roles
            if met_ms is not None:
                committed.append(org)
            elif _met(need, standing, held):
                met_ms, committed = f.pos.wall_ms, sorted(standing, key=standing.__getitem__)
        elif f.kind == "withdrawn":
            standing.pop(org, None)
            if met_ms is not None and org in committed:
                withdrew_after.append(org)
        elif org in committed:
            signatures.setdefault(f.text.hex(), []).append(org)
        else:
            refused.append((f, "not_committed"))
    view = CollectiveView(
        proposal=proposal.proposal,
        proposer=proposal.pos.org,
        proposed_ms=proposal.pos.wall_ms,
        action=str(p.action),
        channel=str(p.channel),
        deadline_ms=p.deadline_ms,
        threshold=need,
        joined=sorted(standing, key=standing.__getitem__),
        met_ms=met_ms,
        committed=committed,
        withdrew_after=withdrew_after,
        signatures={h: sorted(set(o)) for h, o in signatures.items()},
        sealed_to=list(proposal.sealed_to),
        join_roles=sorted(_join_roles(p)),
        join_members=list(p.members),
    )
    return view, refused


def _met(need: dict[str, int], standing: dict[str, int], held: dict[str, tuple[str, ...]]) -> bool:
    return all(sum(role in held[org] for org in standing) >= n for role, n in need.items())


def _signed_order(f: CollectiveFact) -> tuple[int, bytes]:
    return f.pos.wall_ms, f.pos.id
