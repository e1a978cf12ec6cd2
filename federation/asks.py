"""Supporters' asks: who an ask is addressed to, pledges, fulfilment, what is overdue.

Owns how an alert's asks meet the members that can carry them out. An ask is
addressed to a kind of supporter (`to`); a member answers the asks addressed to
its roster roles (responders and observers answer `ngo` and `un` asks) and the
asks to `any`. A pledge is fulfilled by a later action of the same member and
action that was not declined. An ask is overdue when its deadline passed on an
open alert and no member of the role asked pledged or acted on it. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import AlertState
from rrn.federation.authority import addressed_to, answers
from rrn.protocol.alerts import Ask
from rrn.protocol.roster import Roster
from rrn.protocol.vocabulary import ActResult

__all__ = ["AskStatus", "addressed_to", "answers", "ask_status", "fulfilled", "overdue_by_role"]


class AskStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One ask of one alert, and who answered it."""

    alert: bytes
    index: int
    ask: Ask
    pledged_by: list[str]
    done_by: list[str]
    overdue: bool


def ask_status(v: AlertView, roster: Roster, now_ms: int) -> list[AskStatus]:
    """Each ask of an alert with its pledges and actions by members of the role asked."""
    found = []
    for i, ask in enumerate(v.asks):

        def asked(org: str, ask: Ask = ask) -> bool:
            member = roster.known(org)
            return member is not None and addressed_to(ask, member.roles)

        action = str(ask.action)
        pledged = sorted({o for o, a, _, _ in v.pledges if a == action and asked(o)})
        done = sorted(
            {o for o, a, r in v.results if a == action and r != ActResult.DECLINED and asked(o)}
        )
        late = (
            v.status.is_open
            and ask.deadline_ms is not None
            and now_ms >= ask.deadline_ms
            and not pledged
            and not done
        )
        found.append(
            AskStatus(
                alert=v.alert, index=i, ask=ask, pledged_by=pledged, done_by=done, overdue=late
            )
        )
    return found


def overdue_by_role(views: Iterable[AlertView], roster: Roster, now_ms: int) -> dict[str, int]:
    """How many asks are overdue, by the role asked."""
    counts: dict[str, int] = {}
    for v in views:
        for status in ask_status(v, roster, now_ms):
            if status.overdue:
                role = str(status.ask.to)
                counts[role] = counts.get(role, 0) + 1
    return counts


def fulfilled(state: AlertState) -> set[tuple[str, str]]:
    """(member, action) of pledges followed by that member doing it (not declined)."""
    done = {
        (a.pos.org, str(a.body.action))
        for a in state.actions
        if a.body.result is not ActResult.DECLINED
    }
    return {(p.pos.org, str(p.body.action)) for p in state.pledges} & done
