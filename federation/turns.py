"""Asks to supporters: answer windows, the order an ask is offered in, and its turns.

Owns when each ask of an alert is offered to which supporter (docs/PROTOCOL.md
4.3c), and how long each took to answer. Every node derives the same turns from
the alert's allowed facts and the current roster, with no event of its own:

- the answer window W is `ANSWER_WINDOW_FACTOR` times the policy's step for the
  alert's urgency;
- the offer order is every current member the ask addresses, within the alert's
  audience, but the origin, sorted by SHA-256(alert id || org), so which supporter
  is asked first rotates from alert to alert;
- turn 0 starts at the raise; a turn lasts 2W, or ends when its member declines;
  the next member's turn starts then (offers accumulate); a member that declined
  before its turn came is passed over; no turn starts once the ask is answered
  (a pledge or an action not declined by a member it addresses) or the alert
  ended, nor after the last member.

A turn's member is re-asked (by its own node, to its own people) at start + W.
Turns are computed for every future the facts held give; a reader with a clock
counts a turn from its start on. Pure; imports protocol and federation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final, NamedTuple

import msgspec

from rrn.federation.alert_view import AlertView, derive
from rrn.federation.alerts import AlertState
from rrn.federation.authority import Authority, addressed_to, authorise
from rrn.protocol.alerts import Ask
from rrn.protocol.vocabulary import ActResult

__all__ = [
    "ANSWER_WINDOW_FACTOR",
    "AlertTurns",
    "AskTurns",
    "Response",
    "Turn",
    "answer_window_ms",
    "ask_turns",
    "offer_order",
    "responses",
    "turns_of",
]

#: An ask's answer window is this many escalation steps (of the alert's urgency).
ANSWER_WINDOW_FACTOR: Final = 3


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    """One member's turn: offered the ask from `start_ms` (and from then on)."""

    org: str
    start_ms: int
    #: start + W: still unanswered then, the member's node re-asks its own people.
    reply_by_ms: int
    #: When the next member's turn starts: start + 2W, or when this one declined.
    end_ms: int
    declined: bool = False


class AskTurns(msgspec.Struct, frozen=True, kw_only=True):
    """One ask of an alert, whom it is offered to and when."""

    index: int
    ask: Ask
    window_ms: int
    #: Every member the ask may be offered to, in turn order.
    order: list[str]
    #: The turns the facts give, in order (a turn counts once its start has come).
    turns: list[Turn]
    #: When the ask was first answered (a pledge or an action not declined), if it was.
    answered_ms: int | None
    #: When the alert ended, if it did (no turn starts, nobody is re-asked, from then).
    ended_ms: int | None = None

    def offered(self, now_ms: int) -> list[Turn]:
        """The turns that have started by `now_ms`: the members offered the ask."""
        return [t for t in self.turns if t.start_ms <= now_ms]

    def turn_of(self, org: str, now_ms: int) -> Turn | None:
        """`org`'s turn, once it started."""
        return next((t for t in self.offered(now_ms) if t.org == org), None)

    def next_offer_ms(self, now_ms: int) -> int | None:
        """When the ask is next offered to another member (None: it is not, as things stand)."""
        return next((t.start_ms for t in self.turns if t.start_ms > now_ms), None)

    def reask_ms(self, turn: Turn) -> int | None:
        """When `turn`'s member is re-asked: its reply-by, unless it declined or the ask
        was answered by then (None)."""
        if turn.declined and turn.end_ms <= turn.reply_by_ms:
            return None
        stops = [t for t in (self.answered_ms, self.ended_ms) if t is not None]
        return None if any(t <= turn.reply_by_ms for t in stops) else turn.reply_by_ms


class Response(msgspec.Struct, frozen=True, kw_only=True):
    """How a member offered an ask answered it (signed times; None: not yet)."""

    org: str
    action: str
    to: str
    offered_ms: int
    #: Its first pledge, action or decline on the ask's action.
    responded_ms: int | None
    pledged_ms: int | None
    #: Its first action not declined.
    acted_ms: int | None


def answer_window_ms(authority: Authority, v: AlertView) -> int:
    """W: how long a member has to answer an ask of this alert before it is re-asked."""
    return ANSWER_WINDOW_FACTOR * authority.step_s[v.urgency] * 1000


def offer_order(ask: Ask, v: AlertView, authority: Authority) -> list[str]:
    """The members the ask may be offered to, in turn order."""
    audience = set(v.audience)
    found = [
        org
        for org, roles in authority.roles.items()
        if org != v.origin and (not audience or org in audience) and addressed_to(ask, roles)
    ]
    return sorted(found, key=lambda org: (hashlib.sha256(v.alert + org.encode()).digest(), org))


class AlertTurns(NamedTuple):
    """An alert's allowed facts, its view, and each of its asks' turns."""

    allowed: AlertState
    view: AlertView
    asks: list[AskTurns]


def turns_of(state: AlertState, authority: Authority) -> AlertTurns | None:
    """The alert's asks and their turns, from its state (None: no view yet)."""
    allowed = authorise(state, authority)[0]
    v = derive(allowed)
    return None if v is None else AlertTurns(allowed, v, ask_turns(allowed, v, authority))


def ask_turns(allowed: AlertState, v: AlertView, authority: Authority) -> list[AskTurns]:
    """Each ask's turns, from the alert's allowed facts (`authorise`) and their view."""
    window = answer_window_ms(authority, v)
    ended = min((e.pos.wall_ms for e in allowed.ends), default=None)
    found = []
    for i, ask in enumerate(v.asks):
        order = offer_order(ask, v, authority)
        answered = _answered(allowed, ask, authority)
        stop = min((t for t in (answered, ended) if t is not None), default=None)
        declines = _declines(allowed, ask, set(order))
        turns, start = [], v.raised_ms
        for org in order:
            if stop is not None and start >= stop:
                break
            mine = declines.get(org, [])
            if mine and mine[0] <= start:
                continue  # declined before its turn came: passed over
            end = start + 2 * window
            declined = any(t < end for t in mine)
            end = min([end, *mine])
            turns.append(
                Turn(
                    org=org,
                    start_ms=start,
                    reply_by_ms=start + window,
                    end_ms=end,
                    declined=declined,
                )
            )
            start = end
        found.append(
            AskTurns(
                index=i,
                ask=ask,
                window_ms=window,
                order=order,
                turns=turns,
                answered_ms=answered,
                ended_ms=ended,
            )
        )
    return found


def responses(allowed: AlertState, turns: AskTurns, now_ms: int | None = None) -> list[Response]:
    """How each member offered the ask (by `now_ms`, or ever) answered it."""
    ask, action = turns.ask, str(turns.ask.action)
    offered = turns.turns if now_ms is None else turns.offered(now_ms)
    orgs = {t.org for t in offered}
    pledged = _first(
        (p.pos.org, p.pos.wall_ms)
        for p in allowed.pledges
        if str(p.body.action) == action and p.pos.org in orgs
    )
    acts = [a for a in allowed.actions if str(a.body.action) == action and a.pos.org in orgs]
    acted = _first(
        (a.pos.org, a.pos.wall_ms) for a in acts if a.body.result is not ActResult.DECLINED
    )
    any_act = _first((a.pos.org, a.pos.wall_ms) for a in acts)
    found = []
    for t in offered:
        first = [x for x in (pledged.get(t.org), any_act.get(t.org)) if x is not None]
        found.append(
            Response(
                org=t.org,
                action=action,
                to=str(ask.to),
                offered_ms=t.start_ms,
                responded_ms=min(first, default=None),
                pledged_ms=pledged.get(t.org),
                acted_ms=acted.get(t.org),
            )
        )
    return found


def _answered(allowed: AlertState, ask: Ask, authority: Authority) -> int | None:
    """When a member the ask addresses first pledged or acted (not declined) on it."""

    def asked(org: str) -> bool:
        return org in authority.roles and addressed_to(ask, authority.roles[org])

    times = [
        p.pos.wall_ms for p in allowed.pledges if p.body.action is ask.action and asked(p.pos.org)
    ]
    times += [
        a.pos.wall_ms
        for a in allowed.actions
        if a.body.action is ask.action
        and a.body.result is not ActResult.DECLINED
        and asked(a.pos.org)
    ]
    return min(times, default=None)


def _declines(allowed: AlertState, ask: Ask, orgs: set[str]) -> dict[str, list[int]]:
    """Signed times of each member's declines of the ask's action, in order."""
    found: dict[str, list[int]] = {}
    for a in allowed.actions:
        declined = a.body.result is ActResult.DECLINED
        if declined and a.body.action is ask.action and a.pos.org in orgs:
            found.setdefault(a.pos.org, []).append(a.pos.wall_ms)
    return {org: sorted(ts) for org, ts in found.items()}


def _first(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for org, at in pairs:
        found[org] = min(at, found.get(org, at))
    return found
