"""What a node can be asked to do: the operations behind the CLI.

Owns the argument and result types of each operation and their implementation
on top of the ingest pipeline and the store. Transport-free: node/daemon/node.py
exposes `Api.handlers()` on the control channel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from rrn.federation.alert_view import AlertView
from rrn.federation.consent import audience, consented, permitted
from rrn.node.alerting.escalator import Routing
from rrn.node.alerting.retention import forget
from rrn.node.alerting.sharing import open_plaintext, share
from rrn.node.control.channel import handler
from rrn.node.control.transit import open_request, seal_reply
from rrn.node.ops.book import OPEN, AlertBook
from rrn.node.ops.checkins import CheckinOps
from rrn.node.ops.collective import CollectiveOps
from rrn.node.ops.coverage import CoverageOps
from rrn.node.ops.drills import DrillHooks, DrillOps
from rrn.node.ops.supporters import SupporterOps
from rrn.node.ops.types import (
    ActArgs,
    AlertDetail,
    AlertEventInfo,
    AlertInfo,
    CancelArgs,
    ClaimArgs,
    ForgetArgs,
    ListArgs,
    NoArgs,
    RaiseArgs,
    ReleaseArgs,
    ResolveArgs,
    ShareArgs,
    ShowArgs,
    StatusInfo,
    UpdateArgs,
)
from rrn.node.pipeline.ingest import Ingestor, SealFor
from rrn.node.store.db import Store
from rrn.protocol.alerts import (
    AlertActed,
    AlertCancelled,
    AlertClaimed,
    AlertRaised,
    AlertReleased,
    AlertResolved,
    AlertUpdated,
    new_pseudonym,
)
from rrn.protocol.envelope import Event
from rrn.protocol.errors import ControlError, ProtocolError
from rrn.protocol.kinds import Kind, unseal
from rrn.protocol.roster import Role
from rrn.protocol.sealing import OpenKeys, decode_details, encode_details
from rrn.protocol.vocabulary import Audience, Channel, SupporterRole

__all__ = ["Api"]


#: The audience whose consent an ask needs, by whom it is addressed to.
_AUDIENCE_OF_ASK: Final = {
    SupporterRole.NGO: Audience.NETWORK,
    SupporterRole.EMBASSY: Audience.EMBASSIES,
    SupporterRole.COMPANY: Audience.COMPANIES,
    SupporterRole.INVESTOR: Audience.COMPANIES,
    SupporterRole.UN: Audience.UN,
}


class Api:
    """The operations of one running node."""

    def __init__(
        self,
        *,
        ingestor: Ingestor,
        store: Store,
        status: Callable[[], StatusInfo],
        routing: Callable[[AlertView], Awaitable[Routing]] | None = None,
        enc_key: OpenKeys | None = None,
        drills: DrillHooks | None = None,
    ):
        self._ingestor = ingestor
        self._store = store
        self._status = status
        self._enc_key = enc_key
        self._book = AlertBook(ingestor=ingestor, store=store, routing=routing)
        self._supporters = SupporterOps(self._book)
        self._coverage = CoverageOps(self._book)
        self._checkins = CheckinOps(self._book, self.prepare_raise)
        self._drills = DrillOps(self._book, drills)
        self._collective = CollectiveOps(self._book, enc_key)

    def handlers(self) -> dict[str, Callable[[bytes], Awaitable[object]]]:
        """Operation name -> handler of its encoded arguments."""
        return (
            {
                "status": handler(NoArgs, lambda _: self.status()),
                "alert.raise": handler(RaiseArgs, self.raise_alert),
                "alert.update": handler(UpdateArgs, self.update_alert),
                "alert.claim": handler(ClaimArgs, self.claim_alert),
                "alert.release": handler(ReleaseArgs, self.release_alert),
                "alert.act": handler(ActArgs, self.act_on_alert),
                "alert.share": handler(ShareArgs, self.share_alert),
                "alert.resolve": handler(ResolveArgs, self.resolve_alert),
                "alert.forget": handler(ForgetArgs, self.forget_alert),
                "alert.cancel": handler(CancelArgs, self.cancel_alert),
                "alert.list": handler(ListArgs, self.list_alerts),
                "alert.show": handler(ShowArgs, self.show_alert),
            }
            | self._supporters.handlers()
            | self._coverage.handlers()
            | self._checkins.handlers()
            | self._drills.handlers()
            | self._collective.handlers()
        )

    async def status(self) -> StatusInfo:
        return self._status()

    async def raise_alert(self, args: RaiseArgs) -> AlertInfo:
        payload, restricted, sealing = self.prepare_raise(args)
        event = await self._book.append(payload, seal=sealing, audience=restricted)
        return await self._book.info(event.id)

    def prepare_raise(
        self, args: RaiseArgs
    ) -> tuple[AlertRaised, list[str] | None, SealFor | None]:
        """The raise `args` ask for, checked: its payload, the audience it is sealed to
        whole (None: the network) and its details to seal (also a check-in plan's)."""
        payload = AlertRaised(
            country=args.country,
            subdivision=args.subdivision,
            incident_types=list(args.incident_types),
            severity=args.severity,
            urgency=args.urgency,
            asks=list(args.asks),
            languages=list(args.languages),
            pseudonym=args.pseudonym or new_pseudonym(),
            exercise=args.exercise,
            consent=sorted(args.consent, key=lambda c: c.audience),
            exclude=sorted(args.exclude),
            perpetrator_states=sorted(args.perpetrator_states),
        )
        now = self._ingestor.clock.now_ms()
        self._check_consent(payload, now)
        restricted = audience(self._ingestor.network.roster, payload, self._ingestor.me.org, now)
        sealing = None
        if args.details is not None:
            if self._enc_key is None:
                raise ControlError("this node holds no sealing key")
            me, net = self._ingestor.me.org, self._ingestor.network.net
            plaintext = open_request(args.details, me, self._enc_key, net)
            try:
                sealing = SealFor(encode_details(decode_details(plaintext)), (me,))
            except ProtocolError as exc:
                raise ControlError(str(exc)) from exc
        return payload, restricted, sealing

    def _check_consent(self, payload: AlertRaised, now: int) -> None:
        """Refuse asks that consent does not allow, and exclusions of nobody known."""
        members = self._ingestor.network.roster.orgs()
        me = self._ingestor.me.org
        if any(org not in members or org == me for org in payload.exclude):
            raise ControlError("exclude other current members of the network, by org id")
        for ask in payload.asks:
            needed = _AUDIENCE_OF_ASK.get(ask.to)
            if needed is not None and not consented(payload, needed, now):
                raise ControlError(
                    f"an ask to {ask.to} needs consent for the audience {needed} "
                    "(--consent), which is not recorded or not in force"
                )
            if ask.channel is Channel.PUBLIC and not consented(payload, Audience.PUBLIC, now):
                raise ControlError(
                    "a public ask needs consent for public naming (--consent public)"
                )

    async def update_alert(self, args: UpdateArgs) -> AlertInfo:
        alert = await self._book.resolve(args.alert, must_be_mine=True)
        await self._open(alert)
        payload = AlertUpdated(
            alert=alert,
            subdivision=args.subdivision,
            incident_types=None if args.incident_types is None else list(args.incident_types),
            severity=args.severity,
            urgency=args.urgency,
            asks=None if args.asks is None else list(args.asks),
            languages=None if args.languages is None else list(args.languages),
        )
        await self._book.append(payload)
        return await self._book.info(alert)

    async def _open(self, alert: bytes) -> AlertView:
        """The alert's view, if it is still open: a closed alert changes no more, so
        nothing is signed for it (never a second resolution)."""
        v = await self._book.view(alert)
        if not v.status.is_open:
            by = f" by {v.ended_by}" if v.ended_by else ""
            raise ControlError(f"that alert is already {v.status}{by}: nothing was signed")
        return v

    async def claim_alert(self, args: ClaimArgs) -> AlertInfo:
        alert = await self._book.resolve(args.alert)
        v = await self._open(alert)
        me = self._ingestor.me.org
        if me in v.claimants and args.until_ms is None:
            raise ControlError("this member already holds a claim on that alert")
        if Role.RESPONDER not in self._ingestor.network.authority.roles.get(me, frozenset()):
            raise ControlError("only members with the responder role claim alerts")
        await self._book.append(AlertClaimed(alert=alert, until_ms=args.until_ms))
        return await self._book.info(alert)

    async def release_alert(self, args: ReleaseArgs) -> AlertInfo:
        alert = await self._book.resolve(args.alert)
        me = self._ingestor.me.org
        if me not in (await self._book.view(alert)).claimants:
            raise ControlError("this member holds no claim on that alert to release")
        to = args.handover_to
        if to is not None and (to == me or to not in self._ingestor.network.roster.orgs()):
            raise ControlError("hand over to another current member of the network")
        await self._book.append(AlertReleased(alert=alert, handover_to=to))
        return await self._book.info(alert)

    async def share_alert(self, args: ShareArgs) -> AlertInfo:
        alert = await self._book.resolve(args.alert)
        members = self._ingestor.network.roster.orgs()
        unknown = sorted(set(args.to) - set(members))
        if not args.to or unknown:
            raise ControlError("share with current members of the network, by org id")
        state, _ = await self._book.known(alert)
        if self._enc_key is None:
            raise ControlError("this node holds no sealing key")
        assert state.raised is not None
        roster, now = self._ingestor.network.roster, self._ingestor.clock.now_ms()
        refused = [
            org
            for org in args.to
            if (m := roster.member(org)) is not None
            and (
                not permitted(m, state.raised.body, now)
                or (state.raised.audience and org not in state.raised.audience)
            )
        ]
        if refused:
            raise ControlError(
                f"consent or the alert's exclusions do not allow sharing with {', '.join(refused)}"
            )
        try:
            await share(self._ingestor, self._store, self._enc_key, state, tuple(sorted(args.to)))
        except ProtocolError as exc:
            raise ControlError(str(exc)) from exc
        return await self._book.info(alert)

    async def act_on_alert(self, args: ActArgs) -> AlertInfo:
        alert = await self._book.resolve(args.alert)
        await self._open(alert)
        act = AlertActed(alert=alert, action=args.action, channel=args.channel, result=args.result)
        await self._book.append(act)
        return await self._book.info(alert)

    async def forget_alert(self, args: ForgetArgs) -> int:
        """Tombstone one of this member's alerts: every node deletes its payloads.

        Returns how many events the tombstone lists.
        """
        alert = await self._book.resolve(args.alert, must_be_mine=True)
        state, _ = await self._book.known(alert)
        try:
            return await forget(self._ingestor, state, args.reason)
        except ProtocolError as exc:
            raise ControlError(str(exc)) from exc

    async def resolve_alert(self, args: ResolveArgs) -> AlertInfo:
        alert = await self._book.resolve(args.alert)
        current = await self._open(alert)
        me = self._ingestor.me.org
        if current.origin != me and me not in current.claimants:
            raise ControlError(
                "only the alert's origin or an organisation that claimed it may resolve it"
            )
        await self._book.append(AlertResolved(alert=alert, outcome=args.outcome))
        return await self._book.info(alert)

    async def cancel_alert(self, args: CancelArgs) -> AlertInfo:
        alert = await self._book.resolve(args.alert, must_be_mine=True)
        await self._open(alert)
        await self._book.append(AlertCancelled(alert=alert, reason=args.reason))
        return await self._book.info(alert)

    async def list_alerts(self, args: ListArgs) -> list[AlertInfo]:
        views = await self._store.alerts(
            statuses=None if args.all else OPEN,
            limit=args.limit,
            authority=self._ingestor.network.authority,
        )
        return [await self._book.info_of(v) for v in views]

    async def show_alert(self, args: ShowArgs) -> AlertDetail:
        alert = await self._book.resolve(args.alert)
        state, v = await self._book.known(alert)
        events = []
        for pos in sorted(state.positions(), key=lambda p: (p.wall_ms, p.org, p.seq)):
            event = await self._store.event_at(pos.org, pos.epoch, pos.seq)
            kind = self._kind_of(event) if event else "?"
            events.append(
                AlertEventInfo(
                    id=pos.id.hex(), kind=kind, origin=pos.org, seq=pos.seq, wall_ms=pos.wall_ms
                )
            )
        sealed = None
        if self._enc_key is not None and args.reply_to is not None:
            me, net = self._ingestor.me.org, self._ingestor.network.net
            plaintext = await open_plaintext(self._store, state, me, self._enc_key, net)
            if plaintext is not None:
                sealed = seal_reply(plaintext, args.reply_to, me, net)
        info = await self._book.info_of(v)
        return AlertDetail(
            alert=info, events=events, sealed_to=list(v.sealed_to), sealed_details=sealed
        )

    # -- helpers ----------------------------------------------------------------

    def _kind_of(self, event: Event) -> str:
        """An event's kind; for a sealed one this member can open, the kind inside."""
        h = event.header
        if h.kind != Kind.SEALED or event.payload is None:
            return h.kind
        me, net = self._ingestor.me.org, self._ingestor.network.net
        try:
            inner, _, _ = unseal(h, event.payload, me, self._enc_key, net)
        except ProtocolError:
            return h.kind
        return f"{inner} (sealed)"
