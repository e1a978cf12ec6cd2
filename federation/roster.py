"""The rules that make a roster version valid, and the default threshold.

Owns genesis (every founder signs) and the step N -> N+1 (a threshold of
distinct member organisations of N, counted by organisation never by key, plus a
proof-of-possession signature from every newly added key). Pure; imports
protocol only.

Threshold rule (docs/OPERATIONS.md, "Thresholds"): with n members of which up to
f may be compromised and willing to sign two conflicting versions, any two sets
of q approvers overlap in 2q - n organisations; q > (n + f) / 2 makes that
overlap contain an honest organisation, and honest nodes approve at most one
roster per version, so two conflicting N+1 can never both be valid. q <= n - f
keeps the network able to remove f compromised members. Both hold for
f = floor((n - 1) / 3), which `default_threshold` uses.
"""

from __future__ import annotations

import msgspec

from rrn.protocol.errors import FederationError, Reason
from rrn.protocol.policy import NetworkPolicy
from rrn.protocol.roster import (
    ROSTER_VERSION,
    Card,
    Cutoff,
    Member,
    Role,
    Roster,
    RosterCert,
    decode_roster,
    encode_roster,
    member_from_card,
    roster_id,
    verify_approval,
)

__all__ = [
    "default_threshold",
    "make_genesis",
    "next_roster",
    "tolerated_faults",
    "verify_genesis",
    "verify_next",
]


def tolerated_faults(n: int) -> int:
    """How many double-signing members a network of n can tolerate (n >= 3f + 1)."""
    return (n - 1) // 3


def default_threshold(n: int) -> int:
    """The smallest q with q > (n + f) / 2 for f = tolerated_faults(n)."""
    return (n + tolerated_faults(n)) // 2 + 1


def make_genesis(
    cards: list[Card],
    *,
    threshold: int | None,
    created_ms: int,
    policy: NetworkPolicy | None = None,
    states: dict[str, str] | None = None,
) -> bytes:
    """Canonical bytes of a genesis roster built from the founders' cards.

    `states` records the state each diplomatic mission represents, by org.
    """
    orgs = [c.org for c in cards]
    if len(set(orgs)) != len(orgs):
        raise FederationError("two founder cards name the same org", Reason.BAD_ROSTER)
    by_org = _with_states({c.org: member_from_card(c) for c in cards}, states or {})
    members = sorted(by_org.values(), key=lambda m: m.org)
    roster = Roster(
        v=ROSTER_VERSION,
        version=0,
        prev=None,
        threshold=threshold if threshold is not None else default_threshold(len(members)),
        members=members,
        former=[],
        cutoffs=[],
        created_ms=created_ms,
        policy=policy,
    )
    return _encode_checked(roster)


def verify_genesis(cert: RosterCert) -> Roster:
    """The genesis roster, if every founder approved it with its own key."""
    roster = _decode(cert.roster)
    if roster.version != 0:
        raise FederationError("a genesis roster must have version 0", Reason.ROSTER_VERSION)
    approved = _approving_orgs(roster.members, cert)
    missing = [m.org for m in roster.members if m.org not in approved]
    if missing:
        raise FederationError(
            f"genesis lacks the approval of {len(missing)} founder(s): {', '.join(missing)}",
            Reason.ROSTER_THRESHOLD,
        )
    return roster


def verify_next(prev: Roster, prev_bytes: bytes, cert: RosterCert) -> Roster:
    """Roster N+1, if valid after `prev` (N); FederationError saying why not."""
    new = _decode(cert.roster)
    if new.version != prev.version + 1 or new.prev != roster_id(prev_bytes):
        raise FederationError(
            f"roster version {new.version} does not follow version {prev.version}",
            Reason.ROSTER_VERSION,
        )
    _check_history_kept(prev, new)
    approved = _approving_orgs(prev.members, cert, cutoff_roster=prev)
    if len(approved) < prev.threshold:
        orgs_signing = [a.org for a in cert.approvals]
        duplicated = len(orgs_signing) != len(set(orgs_signing))
        raise FederationError(
            f"roster version {new.version} has approvals from {len(approved)} member "
            f"organisation(s) of version {prev.version}; {prev.threshold} are needed"
            + (" (an organisation is counted once, however many keys sign)" if duplicated else ""),
            Reason.ROSTER_DUPLICATE_ORG if duplicated else Reason.ROSTER_THRESHOLD,
        )
    _check_new_keys_signed(prev, new, cert)
    return new


def _decode(data: bytes) -> Roster:
    try:
        return decode_roster(data)
    except Exception as exc:
        reason = getattr(exc, "reason", Reason.BAD_ROSTER)
        raise FederationError(f"roster is malformed: {exc}", reason) from exc


def _encode_checked(roster: Roster) -> bytes:
    try:
        return encode_roster(roster)
    except Exception as exc:
        raise FederationError(f"roster would be invalid: {exc}", Reason.BAD_ROSTER) from exc


def _approving_orgs(
    signers: list[Member], cert: RosterCert, *, cutoff_roster: Roster | None = None
) -> set[str]:
    """Orgs among `signers` with a valid approval by their current key."""
    by_org = {m.org: m for m in signers}
    approved: set[str] = set()
    for approval in cert.approvals:
        member = by_org.get(approval.org)
        if member is None or approval.epoch != member.key().epoch:
            continue
        if (
            cutoff_roster is not None
            and cutoff_roster.cutoff(member.org, approval.epoch) is not None
        ):
            continue
        if verify_approval(member.key().pub, approval, cert.roster):
            approved.add(member.org)
    return approved


def _check_history_kept(prev: Roster, new: Roster) -> None:
    """Keys never change under an epoch; nobody and no cutoff is forgotten."""
    for old in [*prev.members, *prev.former]:
        now = new.known(old.org)
        if now is None:
            raise FederationError(
                "a roster change may not forget an organisation; removed members move to former",
                Reason.BAD_ROSTER,
            )
        for key in old.sign_keys:
            kept = now.key_for(key.epoch)
            if kept is None or kept.pub != key.pub:
                raise FederationError(
                    "a roster change may not alter or drop an existing signing key",
                    Reason.BAD_ROSTER,
                )
    for cut in prev.cutoffs:
        if new.cutoff(cut.org, cut.epoch) != cut.last_seq:
            raise FederationError("a roster change may not lift a key cutoff", Reason.BAD_ROSTER)
    _check_removals_cut(prev, new)


def _check_removals_cut(prev: Roster, new: Roster) -> None:
    """A member removed by this version is cut at its current key epoch: a former member
    signs nothing new, and the cut bounds what stays valid of its history."""
    for gone in new.former:
        old = prev.member(gone.org)
        if old is not None and new.cutoff(gone.org, old.key().epoch) is None:
            raise FederationError(
                f"removing {gone.org} must cut its key epoch {old.key().epoch} (a cutoff at the "
                "last event of it that stays valid)",
                Reason.BAD_ROSTER,
            )


def _check_new_keys_signed(prev: Roster, new: Roster, cert: RosterCert) -> None:
    """Every key added by this version must have signed it (proof of possession)."""
    for member in new.members:
        old = prev.known(member.org)
        for key in member.sign_keys:
            if old is not None and old.key_for(key.epoch) is not None:
                continue
            signed = any(
                a.org == member.org
                and a.epoch == key.epoch
                and verify_approval(key.pub, a, cert.roster)
                for a in cert.approvals
            )
            if not signed:
                raise FederationError(
                    f"the new key of {member.org} (epoch {key.epoch}) has not signed the roster",
                    Reason.ROSTER_MISSING_NEW_KEY,
                )


def _with_states(members: dict[str, Member], states: dict[str, str]) -> dict[str, Member]:
    """Members with the given states of diplomatic missions set ("" clears one)."""
    for org, state in states.items():
        if org not in members:
            raise FederationError(f"{org} is not a current member", Reason.BAD_ROSTER)
        if state and Role.EMBASSY not in members[org].roles:
            raise FederationError(
                f"{org} is not an embassy: only missions record a state", Reason.BAD_ROSTER
            )
        members[org] = msgspec.structs.replace(members[org], state=state or None)
    return members


def next_roster(
    current: Roster,
    current_bytes: bytes,
    *,
    add: list[Card] | None = None,
    remove: list[str] | None = None,
    roles: dict[str, list[Role]] | None = None,
    states: dict[str, str] | None = None,
    rotate: list[Card] | None = None,
    cut: list[Cutoff] | None = None,
    threshold: int | None = None,
    policy: NetworkPolicy | None = None,
    created_ms: int,
) -> bytes:
    """Canonical bytes of version N+1 with the given changes applied.

    The escalation policy is kept unless a new one is given.

    Without an explicit threshold, a change of membership resets it to
    `default_threshold` of the new member count; otherwise it is kept.
    """
    members = {m.org: m for m in current.members}
    former = {m.org: m for m in current.former}
    for card in add or []:
        if card.org in members or card.org in former:
            raise FederationError(f"{card.org} is or was a member already", Reason.BAD_ROSTER)
        members[card.org] = member_from_card(card)
    _remove(current, members, former, remove or [], cut or [])
    for org, new_roles in (roles or {}).items():
        if org not in members:
            raise FederationError(f"{org} is not a current member", Reason.BAD_ROSTER)
        members[org] = msgspec.structs.replace(members[org], roles=list(new_roles))
    members = _with_states(members, states or {})
    for card in rotate or []:
        members[card.org] = _rotated(members, card)
    cutoffs = list(current.cutoffs)
    for c in cut or []:
        if current.cutoff(c.org, c.epoch) is None:
            cutoffs.append(c)
    if threshold is None:
        changed = set(members) != set(current.orgs())
        threshold = default_threshold(len(members)) if changed else current.threshold
    roster = Roster(
        v=ROSTER_VERSION,
        version=current.version + 1,
        prev=roster_id(current_bytes),
        threshold=threshold,
        members=sorted(members.values(), key=lambda m: m.org),
        former=sorted(former.values(), key=lambda m: m.org),
        cutoffs=sorted(cutoffs, key=lambda c: (c.org, c.epoch)),
        created_ms=created_ms,
        policy=policy if policy is not None else current.policy,
    )
    return _encode_checked(roster)


def _remove(
    current: Roster,
    members: dict[str, Member],
    former: dict[str, Member],
    orgs: list[str],
    cut: list[Cutoff],
) -> None:
    """Move members to former; each must be cut at its current key epoch."""
    for org in orgs:
        if org not in members:
            raise FederationError(f"{org} is not a current member", Reason.BAD_ROSTER)
        former[org] = members.pop(org)
        epoch = former[org].key().epoch
        if current.cutoff(org, epoch) is None and not any(
            c.org == org and c.epoch == epoch for c in cut
        ):
            raise FederationError(
                f"removing {org} needs a cutoff of its key epoch {epoch}", Reason.BAD_ROSTER
            )


def _rotated(members: dict[str, Member], card: Card) -> Member:
    """A member with the new key epoch (and current other keys) from its new card."""
    old = members.get(card.org)
    if old is None:
        raise FederationError(f"{card.org} is not a current member", Reason.BAD_ROSTER)
    if card.sign_key.epoch <= old.key().epoch:
        raise FederationError(
            f"the new card of {card.org} must carry a key epoch after {old.key().epoch}",
            Reason.BAD_ROSTER,
        )
    return msgspec.structs.replace(
        member_from_card(card),
        roles=list(old.roles),
        sign_keys=[*old.sign_keys, card.sign_key],
        state=old.state,
    )
