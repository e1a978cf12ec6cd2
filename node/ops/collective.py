"""`rrn collective propose|join|withdraw|sign|show|list`: supporters acting together.

Owns the operations on collective actions (protocol/collective.py, PROTOCOL 4.9):
proposing one on an alert (its text sealed to the alert's audience, handed to the
daemon sealed), joining, withdrawing, signing a version of the joint text, and
each proposal as this member may see it. Before a proposal's threshold is met,
who joined is not shown to anyone (only how many, by role); once met, every
committed member is named. The rules every node applies are
federation/collective.py; these operations refuse early, with a reason, what
those rules would refuse.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from rrn.federation.alert_view import AlertView, view
from rrn.federation.alerts import CollectiveFact
from rrn.federation.collective import MAX_PROPOSALS, CollectiveView, eligible
from rrn.node.control.channel import handler
from rrn.node.control.transit import open_request, seal_reply
from rrn.node.ops.book import AlertBook
from rrn.node.pipeline.ingest import SealFor
from rrn.protocol.collective import (
    CollectiveJoined,
    CollectiveProposed,
    CollectiveSigned,
    CollectiveWithdrawn,
    Quota,
    check_proposal,
)
from rrn.protocol.errors import ControlError, ProtocolError
from rrn.protocol.kinds import unseal
from rrn.protocol.roster import Role
from rrn.protocol.sealing import OpenKeys, Position, decode_sealed, open_sealed
from rrn.protocol.vocabulary import ActionType, Channel

__all__ = [
    "CollectiveInfo",
    "CollectiveListArgs",
    "CollectiveOps",
    "CollectiveSignArgs",
    "ProposalRefArgs",
    "ProposeArgs",
]

#: Longest text a proposal seals (its blob must stay under the 56 KiB field limit).
MAX_TEXT: Final = 48 * 1024
#: Alert states read at a time when looking for proposals.
_SLICE: Final = 500
#: Furthest a deadline may be set.
MAX_DEADLINE_MS: Final = 366 * 86_400_000

ProposalRef = Annotated[str, Meta(pattern=r"^[0-9a-f]{6,64}$")]
AlertRef = Annotated[str, Meta(pattern=r"^[0-9a-f]{6,64}$")]


class ProposeArgs(msgspec.Struct, frozen=True, kw_only=True):
    alert: AlertRef
    action: ActionType
    channel: Channel = Channel.PRIVATE
    threshold: list[Quota]
    deadline_ms: int
    roles: list[Role] = []
    members: list[str] = []
    #: The text, sealed to the daemon (node/control/transit.py), or None.
    text: bytes | None = None


class ProposalRefArgs(msgspec.Struct, frozen=True, kw_only=True):
    proposal: ProposalRef
    #: For `show`: a one-request key to seal the opened text to.
    reply_to: bytes | None = None


class CollectiveSignArgs(msgspec.Struct, frozen=True, kw_only=True):
    proposal: ProposalRef
    #: SHA-256 of the final text signed; None: the text as proposed.
    text: bytes | None = None


class CollectiveListArgs(msgspec.Struct, frozen=True, kw_only=True):
    #: Proposals of closed alerts too.
    all: bool = False
    #: Only the proposals on this alert (an alert's page).
    alert: AlertRef | None = None


class CollectiveInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A proposal as this member sees it (ids in hex)."""

    proposal: str
    alert: str
    proposer: str
    action: str
    channel: str
    deadline_ms: int
    #: role -> joiners needed
    threshold: dict[str, int]
    #: open (joins count), met, expired (deadline past, unmet: commits nobody)
    state: str
    #: role -> standing joiners (members count for each of their roles)
    joined_by_role: dict[str, int]
    #: Whether this member may join.
    eligible: bool
    #: This member: none, joined, committed, withdrew_after
    mine: str
    met_ms: int | None = None
    #: Named only once the threshold is met.
    committed: list[str] = []
    withdrew_after: list[str] = []
    #: text hash (hex) -> committed members that signed that version
    signatures: dict[str, list[str]] = {}
    #: SHA-256 (hex) of the text as proposed, if this member could open it.
    text_hash: str | None = None
    #: The text, sealed to the CLI's one-request key (`show`); `text` once opened.
    sealed_text: bytes | None = None
    text: str | None = None


class CollectiveOps:
    """The collective operations of one node."""

    def __init__(self, book: AlertBook, enc_key: OpenKeys | None) -> None:
        self._book = book
        self._key = enc_key

    def handlers(self) -> dict[str, Callable[[bytes], Awaitable[object]]]:
        """Operation name -> handler of its encoded arguments."""
        return {
            "collective.propose": handler(ProposeArgs, self.propose),
            "collective.join": handler(ProposalRefArgs, self.join),
            "collective.withdraw": handler(ProposalRefArgs, self.withdraw),
            "collective.sign": handler(CollectiveSignArgs, self.sign),
            "collective.show": handler(ProposalRefArgs, self.show),
            "collective.list": handler(CollectiveListArgs, self.list_proposals),
        }

    @property
    def _me(self) -> str:
        return self._book.ingestor.me.org

    async def propose(self, args: ProposeArgs) -> CollectiveInfo:
        alert = await self._book.resolve(args.alert)
        v = await self._book.view(alert)
        if not v.status.is_open:
            raise ControlError("that alert is closed; collective actions are proposed on open ones")
        audience = v.audience or self._book.ingestor.network.roster.orgs()
        if self._me not in audience:
            raise ControlError("this member is outside the alert's audience")
        if sum(c.proposer == self._me for c in v.collectives) >= MAX_PROPOSALS:
            raise ControlError(f"this member has made {MAX_PROPOSALS} proposals on that alert")
        now = self._book.ingestor.clock.now_ms()
        if not now < args.deadline_ms <= now + MAX_DEADLINE_MS:
            raise ControlError("the deadline must be in the future, and within a year")
        payload = CollectiveProposed(
            alert=alert,
            action=args.action,
            channel=args.channel,
            threshold=sorted(args.threshold, key=lambda q: q.role),
            deadline_ms=args.deadline_ms,
            roles=sorted(args.roles),
            members=sorted(args.members),
        )
        problem = check_proposal(payload) or self._feasible(payload, audience)
        if problem is not None:
            raise ControlError(problem)
        seal = SealFor(self._text(args.text), tuple(audience)) if args.text else None
        event = await self._book.append(payload, seal=seal)
        return await self._info(event.id)

    def _feasible(self, p: CollectiveProposed, audience: Sequence[str]) -> str | None:
        """Why the threshold can never be met by the alert's audience, if so."""
        roles = self._roles()
        for org in p.members:
            if org not in audience:
                raise ControlError(f"{org} is not a member within the alert's audience")
        can = [o for o in audience if eligible(p, o, roles)]
        for q in p.threshold:
            have = sum(str(q.role) in roles[o] for o in can)
            if have < q.count:
                return (
                    f"the threshold needs {q.count} {q.role} member(s); the alert's audience "
                    f"has {have} that may join"
                )
        return None

    def _text(self, sealed: bytes) -> bytes:
        if self._key is None:
            raise ControlError("this node holds no sealing key")
        me, net = self._me, self._book.ingestor.network.net
        text = open_request(sealed, me, self._key, net)
        if len(text) > MAX_TEXT:
            raise ControlError(f"the text is over {MAX_TEXT // 1024} KiB; seal a summary")
        return text

    async def join(self, args: ProposalRefArgs) -> CollectiveInfo:
        v, c = await self._find(args.proposal)
        if not c.may_join(self._me, self._roles()) or (v.audience and self._me not in v.audience):
            raise ControlError("this member may not join that proposal (see who may: show)")
        if self._book.ingestor.clock.now_ms() > c.deadline_ms:
            raise ControlError("the proposal's deadline has passed")
        if self._me in c.joined:
            raise ControlError("this member has joined already")
        await self._book.append(CollectiveJoined(alert=v.alert, proposal=c.proposal))
        return await self._info(c.proposal)

    async def withdraw(self, args: ProposalRefArgs) -> CollectiveInfo:
        v, c = await self._find(args.proposal)
        if self._me not in c.joined:
            raise ControlError("this member has not joined that proposal")
        await self._book.append(CollectiveWithdrawn(alert=v.alert, proposal=c.proposal))
        return await self._info(c.proposal)

    async def sign(self, args: CollectiveSignArgs) -> CollectiveInfo:
        v, c = await self._find(args.proposal)
        if self._me not in c.committed:
            raise ControlError("only members committed to a met proposal sign its text")
        text = args.text
        if text is None:
            proposed = await self._open_text(v, c)
            if proposed is None:
                raise ControlError("the proposal has no text this member can open; give --text")
            text = hashlib.sha256(proposed).digest()
        if len(text) != 32:
            raise ControlError("a text hash is 32 bytes (SHA-256)")
        if self._me in c.signatures.get(text.hex(), []):
            raise ControlError("this member signed that text already")
        await self._book.append(CollectiveSigned(alert=v.alert, proposal=c.proposal, text=text))
        return await self._info(c.proposal)

    async def show(self, args: ProposalRefArgs) -> CollectiveInfo:
        v, c = await self._find(args.proposal)
        info = await self._describe(v, c)
        if args.reply_to is None:
            return info
        text = await self._open_text(v, c)
        if text is None:
            return info
        me, net = self._me, self._book.ingestor.network.net
        return msgspec.structs.replace(info, sealed_text=seal_reply(text, args.reply_to, me, net))

    async def list_proposals(self, args: CollectiveListArgs) -> list[CollectiveInfo]:
        found = []
        if args.alert is not None:
            views = [await self._book.view(await self._book.resolve(args.alert))]
        else:
            views = await self._views(args.all)
        for v in views:
            for c in v.collectives:
                found.append(await self._describe(v, c))
        return sorted(found, key=lambda i: (i.state != "open", i.deadline_ms, i.proposal))

    # -- helpers ----------------------------------------------------------------

    async def _views(self, every: bool) -> list[AlertView]:
        """The views of the open alerts (or all) holding collective proposals: states
        read by id in slices, and only those with proposals viewed (viewing every open
        alert's state took seconds on years of history)."""
        store, authority = self._book.store, self._book.ingestor.network.authority
        ids = await (store.alert_ids() if every else store.open_alert_ids())
        found = []
        for start in range(0, len(ids), _SLICE):
            for state in (await store.alert_states(ids[start : start + _SLICE])).values():
                v = view(state, authority) if state.collective else None
                if v is not None and (every or v.status.is_open):
                    found.append(v)
        return found

    async def _find(self, ref: str) -> tuple[AlertView, CollectiveView]:
        for every in (False, True):
            matches = [
                (v, c)
                for v in await self._views(every)
                for c in v.collectives
                if c.proposal.hex().startswith(ref)
            ]
            if len(matches) > 1:
                raise ControlError(f"{ref} matches {len(matches)} proposals; give more of the id")
            if matches:
                return matches[0]
        raise ControlError(f"no collective proposal with id {ref} is known here")

    async def _info(self, proposal: bytes) -> CollectiveInfo:
        return await self._describe(*await self._find(proposal.hex()))

    async def _describe(self, v: AlertView, c: CollectiveView) -> CollectiveInfo:
        return describe(
            v,
            c,
            me=self._me,
            now_ms=self._book.ingestor.clock.now_ms(),
            roles=self._roles(),
            text=await self._open_text(v, c),
        )

    def _roles(self) -> dict[str, frozenset[str]]:
        roster = self._book.ingestor.network.roster
        return {m.org: frozenset(str(r) for r in m.roles) for m in roster.members}

    async def _fact(self, v: AlertView, c: CollectiveView) -> CollectiveFact:
        state, _ = await self._book.known(v.alert)
        return next(
            f for f in state.collective if f.kind == "proposed" and f.proposal == c.proposal
        )

    async def _payload(self, v: AlertView, c: CollectiveView) -> CollectiveProposed | None:
        fact = await self._fact(v, c)
        pos = fact.pos
        event = await self._book.store.event_at(pos.org, pos.epoch, pos.seq)
        if event is None or event.payload is None:
            return None
        net = self._book.ingestor.network.net
        try:
            _, payload, _ = unseal(event.header, event.payload, self._me, self._key, net)
        except ProtocolError:
            return fact.proposed
        return payload if isinstance(payload, CollectiveProposed) else fact.proposed

    async def _open_text(self, v: AlertView, c: CollectiveView) -> bytes | None:
        """The proposal's text, if sealed to this member and it opens."""
        if self._key is None or self._me not in c.sealed_to:
            return None
        payload = await self._payload(v, c)
        if payload is None or payload.sealed is None:
            return None
        pos = (await self._fact(v, c)).pos
        at = Position(self._book.ingestor.network.net, pos.org, pos.epoch, pos.seq)
        try:
            return open_sealed(decode_sealed(payload.sealed), self._me, self._key, at)
        except ProtocolError:
            return None


def describe(
    v: AlertView,
    c: CollectiveView,
    *,
    me: str,
    now_ms: int,
    roles: dict[str, frozenset[str]],
    text: bytes | None,
) -> CollectiveInfo:
    """A proposal as `me` may see it: joiners named only once the threshold is met."""
    met = c.met_ms is not None
    state = "met" if met else "expired" if now_ms > c.deadline_ms else "open"
    counts = {role: sum(role in roles.get(o, ()) for o in c.joined) for role in c.threshold}
    mine = (
        "withdrew_after" if me in c.withdrew_after
        else "committed" if me in c.committed
        else "joined" if me in c.joined
        else "none"
    )  # fmt: skip
    within = not v.audience or me in v.audience
    return CollectiveInfo(
        proposal=c.proposal.hex(),
        alert=v.alert.hex(),
        proposer=c.proposer,
        action=c.action,
        channel=c.channel,
        deadline_ms=c.deadline_ms,
        threshold=c.threshold,
        state=state,
        joined_by_role=counts,
        eligible=within and c.may_join(me, roles),
        mine=mine,
        met_ms=c.met_ms,
        committed=c.committed if met else [],
        withdrew_after=c.withdrew_after if met else [],
        signatures=c.signatures if met else {},
        text_hash=hashlib.sha256(text).hexdigest() if text is not None else None,
    )
