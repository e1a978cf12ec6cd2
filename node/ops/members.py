"""Operations on membership and peers: `rrn member …` and `rrn peers`.

Owns the argument and result types of the membership operations and their
implementation: proposing roster version N+1 (a `roster.proposed` event with
this node's approval), approving one (a `roster.approved` event, which may also
carry approvals collected from others, such as a newcomer's), listing pending
proposals, and describing peers. An honest member approves at most one
proposal per version; this API refuses to approve a second.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import msgspec
from msgspec import Meta

from rrn.federation.roster import next_roster
from rrn.node.control.channel import handler
from rrn.node.membership.policy import changed_policy
from rrn.node.membership.rosters import RosterKeeper
from rrn.node.peering.peering import Peering
from rrn.node.peering.peers import PeerState
from rrn.node.pipeline.ingest import Ingestor
from rrn.node.store.network import Network
from rrn.protocol.errors import ConfigError, ControlError, FederationError, ProtocolError
from rrn.protocol.membership import RosterApproved, RosterProposed
from rrn.protocol.policy import NetworkPolicy
from rrn.protocol.roster import (
    Approval,
    Card,
    Cutoff,
    Role,
    Roster,
    decode_roster,
    open_card,
    roster_id,
    sign_roster,
)

__all__ = [
    "ApproveArgs",
    "MembersApi",
    "PeerInfo",
    "ProposalInfo",
    "ProposeArgs",
]


class ProposeArgs(msgspec.Struct, frozen=True, kw_only=True):
    add: list[bytes] = []  # signed cards
    remove: list[str] = []
    roles: dict[str, list[Role]] = {}
    #: The state a diplomatic mission represents ("" clears it), by org.
    states: dict[str, str] = {}
    rotate: list[bytes] = []  # signed cards with a new key epoch
    cut: list[tuple[str, int, int]] = []  # org, epoch, last valid seq
    threshold: int | None = None
    #: Escalation policy changes, e.g. "immediate=5m" (node/membership/policy.py).
    escalation: str | None = None
    #: Member limits changes, e.g. "day_events=5000" (node/membership/policy.py).
    limits: str | None = None
    #: The mesh's links per member, or "full" (node/membership/policy.py).
    links: str | None = None


class ApproveArgs(msgspec.Struct, frozen=True, kw_only=True):
    roster: Annotated[str, Meta(pattern=r"^[0-9a-f]{6,64}$")] | None = None
    roster_bytes: bytes | None = None
    approvals: list[Approval] = []


class ProposalInfo(msgspec.Struct, frozen=True, kw_only=True):
    roster_id: str
    version: int
    proposed_by: str | None
    approved_by: list[str]
    threshold_needed: int
    valid_now: bool
    problem: str | None
    roster: bytes | None
    approvals: list[Approval]


class PeerInfo(msgspec.Struct, frozen=True, kw_only=True):
    org: str
    name: str
    link: str  # dials | accepts | relayed
    #: The link's state (heartbeats; for a relayed member, its signs of life through
    #: others): up | down | never.
    state: str
    last_heartbeat_s: float | None
    clock_skew_s: float | None
    roster_version: int | None
    #: Events per origin it says it holds and this node lacks (a claim, until served).
    behind: dict[str, int]
    #: False once it failed to serve what it said it holds: its claims are not counted.
    believed: bool = True
    #: Heard alive lately, directly or through others (10.1b): escalation skips it if not.
    live: bool = False
    #: What it last announced it runs (PROTOCOL.md 10.1a; its claim).
    rrn: str | None = None
    nats_server: str | None = None
    tz_database: str | None = None
    lock: str | None = None


def _state(age: float | None, heartbeat_s: float) -> str:
    return "never" if age is None else "up" if age <= 3 * heartbeat_s else "down"


class NoArgs(msgspec.Struct, frozen=True):
    pass


class MembersApi:
    """Membership and peer operations of one running node."""

    def __init__(self, *, ingestor: Ingestor, rosters: RosterKeeper, peering: Peering) -> None:
        self._ingestor = ingestor
        self._rosters = rosters
        self._peering = peering

    def handlers(self) -> dict[str, Callable[[bytes], Awaitable[object]]]:
        """Operation name -> handler of its encoded arguments."""
        return {
            "peers": handler(NoArgs, lambda _: self.peers()),
            "member.propose": handler(ProposeArgs, self.propose),
            "member.approve": handler(ApproveArgs, self.approve),
            "member.proposals": handler(NoArgs, lambda _: self.proposals()),
        }

    # -- roster changes -----------------------------------------------------------

    def _approval(self, roster_bytes: bytes) -> Approval:
        """This member's approval, by the key the current roster lists for it (a key
        rotation in the chain leaves the roster's key in charge of approvals until a
        roster version records the new one)."""
        me = self._ingestor.me
        member = self._ingestor.network.roster.member(me.org)
        epoch = member.key().epoch if member is not None else me.epoch
        key = me.key_of(epoch)
        if key is None:
            raise ControlError(
                f"this node no longer holds its signing key of epoch {epoch}, which the roster "
                "lists for it: it cannot approve roster changes (see docs/OPERATIONS.md, "
                "'Rotating keys')"
            )
        return sign_roster(key, me.org, epoch, roster_bytes)

    async def propose(self, args: ProposeArgs) -> ProposalInfo:
        network = self._ingestor.network
        for card in map(_card, args.rotate):
            taken = network.keyring.pub(card.org, card.sign_key.epoch)
            if taken is not None and taken != card.sign_key.pub:
                raise ControlError(
                    f"{card.org} already has another key at epoch {card.sign_key.epoch} (a key "
                    "rotation in its chain): ask it for a new card"
                )
        try:
            data = next_roster(
                network.roster,
                network.roster_bytes,
                add=[_card(c) for c in args.add],
                remove=list(args.remove),
                roles=dict(args.roles),
                states=dict(args.states),
                rotate=[_card(c) for c in args.rotate],
                cut=[
                    *(Cutoff(org=o, epoch=e, last_seq=s) for o, e, s in args.cut),
                    *self._removal_cuts(network, args),
                ],
                threshold=args.threshold,
                policy=_policy(network.roster, args),
                created_ms=time.time_ns() // 1_000_000,
            )
        except (FederationError, ProtocolError, ConfigError) as exc:
            raise ControlError(f"cannot propose this change: {exc}") from exc
        self._refuse_second_approval(data)
        await self._ingestor.append(RosterProposed(roster=data, approvals=[self._approval(data)]))
        return self._info(roster_id(data))

    def _removal_cuts(self, network: Network, args: ProposeArgs) -> list[Cutoff]:
        """For each member removed: a cutoff of every key epoch of it this node knows, at the
        last event of it this node holds (what stays valid of its history)."""
        given = {(o, e) for o, e, _ in args.cut}
        cuts = []
        for org in args.remove:
            latest = network.keyring.latest(org) or 0
            for epoch in range(1, latest + 1):
                if not network.keyring.knows(org, epoch) or (org, epoch) in given:
                    continue
                if network.roster.cutoff(org, epoch) is not None:
                    continue
                head = self._ingestor.heads.get((org, epoch))
                cuts.append(Cutoff(org=org, epoch=epoch, last_seq=head.seq if head else 0))
        return cuts

    async def approve(self, args: ApproveArgs) -> ProposalInfo:
        data = args.roster_bytes or self._find(args.roster)
        try:
            decode_roster(data)
        except ProtocolError as exc:
            raise ControlError("that is not a valid roster") from exc
        self._refuse_second_approval(data)
        rid = roster_id(data)
        known = self._rosters.proposals.get(rid)
        if known is None or known.roster_bytes is None:
            # Not seen in any chain yet: carry the proposal itself.
            payload: RosterProposed | RosterApproved = RosterProposed(
                roster=data, approvals=[*args.approvals, self._approval(data)]
            )
        else:
            payload = RosterApproved(roster=rid, approvals=[*args.approvals, self._approval(data)])
        await self._ingestor.append(payload)
        return self._info(rid)

    def _find(self, prefix: str | None) -> bytes:
        if prefix is None:
            raise ControlError("name a proposal (its roster id) or give its file")
        found = [p for p in self._rosters.pending() if p.roster_id.hex().startswith(prefix)]
        if len(found) != 1 or found[0].roster_bytes is None:
            raise ControlError(
                f"no single pending proposal starts with {prefix} (see 'rrn member proposals')"
            )
        return found[0].roster_bytes

    def _refuse_second_approval(self, data: bytes) -> None:
        me = self._ingestor.me.org
        version = decode_roster(data).version
        rid = roster_id(data)
        for p in self._rosters.pending():
            mine = any(a.org == me for a in p.approvals.values())
            if p.version == version and p.roster_id != rid and mine:
                raise ControlError(
                    f"this node already approved proposal {p.roster_id.hex()[:12]} for roster "
                    f"version {version}; approving two could make two conflicting rosters valid"
                )

    async def proposals(self) -> list[ProposalInfo]:
        return [self._info(p.roster_id) for p in self._rosters.pending()]

    def _info(self, rid: bytes) -> ProposalInfo:
        p = self._rosters.proposals.get(rid)
        current = self._ingestor.network.roster
        if p is None:  # adopted already, or not yet seen
            return ProposalInfo(
                roster_id=rid.hex(),
                version=current.version,
                proposed_by=None,
                approved_by=[],
                threshold_needed=current.threshold,
                valid_now=False,
                problem=None,
                roster=None,
                approvals=[],
            )
        self._rosters.proposals.ready()  # refreshes each proposal's problem
        return ProposalInfo(
            roster_id=rid.hex(),
            version=p.version or 0,
            proposed_by=p.proposed_by,
            approved_by=sorted({a.org for a in p.approvals.values()}),
            threshold_needed=current.threshold,
            valid_now=p.problem is None and p.roster_bytes is not None,
            problem=p.problem,
            roster=p.roster_bytes,
            approvals=list(p.approvals.values()),
        )

    # -- peers --------------------------------------------------------------------

    async def peers(self) -> list[PeerInfo]:
        roster = self._ingestor.network.roster
        me = self._ingestor.me.org
        kinds = self._peering.peers.link_kinds()
        now = self._peering.monotonic()
        heartbeat = self._peering.config.heartbeat_s
        found = []
        for member in roster.members:
            if member.org == me:
                continue
            state = self._peering.peers.states.get(member.org)
            seen = state.last_heartbeat if state else None
            age = None if seen is None else now - seen
            heard = self._peering.peers.last_heard(member.org)  # directly or through others
            heard_age = None if heard is None else now - heard
            behind = {
                origin: seq - self._ingestor.heads[(origin, epoch)].seq
                if (origin, epoch) in self._ingestor.heads
                else seq
                for (origin, epoch), seq in (state.heads.items() if state else [])
            }
            found.append(
                PeerInfo(
                    org=member.org,
                    name=member.name,
                    link=kinds[member.org],
                    state=_state(age if kinds[member.org] != "relayed" else heard_age, heartbeat),
                    live=heard_age is not None and heard_age <= self._peering.peers.down_after_s(),
                    last_heartbeat_s=None if age is None else round(age, 1),
                    clock_skew_s=None if state is None or seen is None else state.skew_ms / 1000,
                    roster_version=state.roster_ver if state and seen else None,
                    behind={o: n for o, n in behind.items() if n > 0},
                    believed=seen is None or self._peering.peers.believes(member.org),
                    **_software(state),
                )
            )
        return found


def _software(state: PeerState | None) -> dict[str, str]:
    sw = state.software if state else None
    if sw is None:
        return {}
    return {
        "rrn": sw.rrn,
        "nats_server": sw.nats_server,
        "tz_database": sw.tz_database,
        "lock": sw.lock,
    }


def _policy(roster: Roster, args: ProposeArgs) -> NetworkPolicy | None:
    """The roster's policy with the changes asked (None: unchanged)."""
    return changed_policy(roster.policy, args.escalation, args.limits, args.links)


def _card(data: bytes) -> Card:
    try:
        return open_card(data)
    except ProtocolError as exc:
        raise ControlError(f"a card does not verify ({exc.reason})") from exc
