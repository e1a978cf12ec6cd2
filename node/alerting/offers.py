"""Asks offered to this member in turn: telling its people when its turn comes, and
again when the ask is still unanswered at the turn's reply-by.

Owns this node's part in PROTOCOL 4.3c. Whose turn it is comes from the signed
facts and the roster alone (federation/turns.py), so no node publishes anything:
each member's own node tells its own people, with an `ask` notice when its turn
starts and a `reask` at start + W, each once per ask and turn
(node/alerting/notices.py keeps what was sent across restarts). Nobody is told
of an ask already answered, of one it declined, or of a closed alert.
"""

from __future__ import annotations

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import AlertState
from rrn.federation.authority import addressed_to, authorise
from rrn.federation.turns import AskTurns, ask_turns
from rrn.node.alerting.notices import Notifier, Offer
from rrn.node.store.network import Network

__all__ = ["AskOffers"]


class AskOffers:
    """Tells this member's people of the asks offered to it (`ask`, `reask`)."""

    def __init__(self, notifier: Notifier, me: str) -> None:
        self.notifier = notifier
        self.me = me

    async def examine(
        self, state: AlertState, v: AlertView, network: Network, now_ms: int
    ) -> int | None:
        """Send the notices due by `now_ms`; when the next one falls due (None: on change)."""
        me = network.roster.member(self.me)
        if me is None or not v.status.is_open:
            return None
        if not any(addressed_to(a, me.roles) for a in v.asks):
            return None
        allowed = authorise(state, network.authority)[0]
        wake: list[int] = []
        for turns in ask_turns(allowed, v, network.authority):
            for k, turn in enumerate(turns.turns):
                if turn.org != self.me:
                    continue
                if turn.start_ms > now_ms:
                    wake.append(turn.start_ms)
                elif turns.answered_ms is None and not turn.declined:
                    wake += await self._due(v, turns, k, now_ms)
        return min(wake, default=None)

    async def _due(self, v: AlertView, turns: AskTurns, k: int, now_ms: int) -> list[int]:
        """Notify of turn `k` (this member's, started, unanswered); when to look again."""
        turn = turns.turns[k]
        reask = turns.reask_ms(turn)
        if reask is not None and reask <= now_ms:
            kind, reason, until = "reask", "unanswered", turn.end_ms
        else:
            before = turns.turns[k - 1] if k else None
            kind, until = "ask", turn.reply_by_ms
            reason = "first" if before is None else "declined" if before.declined else "unanswered"
        offer = Offer(
            kind=kind,
            ask=turns.index,
            turn=k,
            action=str(turns.ask.action),
            to=str(turns.ask.to),
            reason=reason,
            deadline_ms=until,
        )
        await self.notifier.offered(v, offer)
        return [reask] if kind == "ask" and reask is not None else []
