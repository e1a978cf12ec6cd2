"""What supporters do about an alert: see the asks addressed to them, pledge, and the
origin's feedback to the defender.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rrn.federation.asks import addressed_to, ask_status
from rrn.federation.turns import turns_of
from rrn.node.control.channel import handler
from rrn.node.ops.book import AlertBook
from rrn.node.ops.record import RecordArgs, ask_record
from rrn.node.ops.types import (
    AlertInfo,
    AskInfo,
    AsksArgs,
    FeedbackArgs,
    PledgeArgs,
)
from rrn.protocol.alerts import (
    AlertFeedback,
    AlertPledged,
)
from rrn.protocol.errors import ControlError

__all__ = ["SupporterOps"]


class SupporterOps:
    """`rrn asks` (and `asks record`), `alert pledge` and `alert feedback`."""

    def __init__(self, book: AlertBook) -> None:
        self._book = book

    def handlers(self) -> dict[str, Callable[[bytes], Awaitable[object]]]:
        """Operation name -> handler of its encoded arguments."""
        return {
            "alert.pledge": handler(PledgeArgs, self.pledge),
            "alert.feedback": handler(FeedbackArgs, self.feedback),
            "asks.list": handler(AsksArgs, self.list_asks),
            "asks.record": handler(RecordArgs, lambda args: ask_record(self._book, args)),
        }

    async def pledge(self, args: PledgeArgs) -> AlertInfo:
        alert = await self._book.resolve(args.alert)
        v = await self._book.view(alert)
        if not v.status.is_open:
            raise ControlError("that alert is closed; pledges are made on open alerts")
        me = self._book.ingestor.network.roster.member(self._book.ingestor.me.org)
        roles = me.roles if me is not None else []
        if not any(a.action is args.action and addressed_to(a, roles) for a in v.asks):
            raise ControlError(
                f"the alert asks no {args.action} of this member's roles; see rrn asks"
            )
        await self._book.append(
            AlertPledged(alert=alert, action=args.action, channel=args.channel, by_ms=args.by_ms)
        )
        return await self._book.info(alert)

    async def feedback(self, args: FeedbackArgs) -> AlertInfo:
        alert = await self._book.resolve(args.alert, must_be_mine=True)
        await self._book.append(AlertFeedback(alert=alert, feedback=args.feedback))
        return await self._book.info(alert)

    async def list_asks(self, args: AsksArgs) -> list[AskInfo]:
        network = self._book.ingestor.network
        org = self._book.ingestor.me.org
        me = network.roster.member(org)
        roles = me.roles if me is not None else []
        now = self._book.ingestor.clock.now_ms()
        found = []
        for state in await self._book.store.open_alert_states():
            alert = turns_of(state, network.authority)
            if alert is None:
                continue
            v = alert.view
            statuses = ask_status(v, network.roster, now)
            for st, turns in zip(statuses, alert.asks, strict=True):
                if not (args.all or addressed_to(st.ask, roles)):
                    continue
                mine = turns.turn_of(org, now)
                found.append(
                    AskInfo(
                        alert=v.alert.hex(),
                        country=v.country,
                        urgency=str(v.urgency),
                        action=str(st.ask.action),
                        to=str(st.ask.to),
                        channel=str(st.ask.channel),
                        deadline_ms=st.ask.deadline_ms,
                        overdue=st.overdue,
                        pledged_by=st.pledged_by,
                        done_by=st.done_by,
                        offered_ms=None if mine is None else mine.start_ms,
                        reply_by_ms=None if mine is None else mine.reply_by_ms,
                        next_offer_ms=turns.next_offer_ms(now),
                        offered_to=[t.org for t in turns.offered(now)],
                    )
                )
        return sorted(found, key=lambda a: (a.deadline_ms is None, a.deadline_ms or 0, a.alert))
