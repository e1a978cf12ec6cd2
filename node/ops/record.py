"""`rrn asks record`: this member's own record of answering the asks offered to it.

Owns the per-member side of "faster company response" (PROTOCOL 4.3c): for every
ask offered to this member (its turn came) on an alert raised in the period, when
it was offered and how long the member took to respond, pledge and act, and its
medians against the network's medians per role. Only this member's own record
is shown: other members' times are folded into the network's medians, never
listed (the metrics label them by role only). From signed times, so any node
reckons the same figures. Drills (exercise alerts) are listed, and left out of
the medians.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Annotated, Final

import msgspec
from msgspec import Meta

from rrn.federation.turns import Response, responses, turns_of
from rrn.protocol.roster import Roster

if TYPE_CHECKING:
    from rrn.node.ops.book import AlertBook

__all__ = ["AskRecord", "Medians", "OfferRecord", "RecordArgs", "ask_record"]

_DAY_MS: Final = 86_400_000


class RecordArgs(msgspec.Struct, frozen=True, kw_only=True):
    #: Alerts raised in the last so many days.
    days: Annotated[int, Meta(ge=1, le=3660)] = 90


class OfferRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One ask offered to this member, and how it answered (seconds from the offer)."""

    alert: str
    action: str
    to: str
    exercise: bool
    offered_ms: int
    responded_s: float | None
    pledged_s: float | None
    acted_s: float | None


class Medians(msgspec.Struct, frozen=True, kw_only=True):
    """Medians of answers to offered asks (seconds from the offer), real alerts only."""

    role: str
    offers: int
    responded: int
    response_s: float | None
    pledge_s: float | None
    action_s: float | None


class AskRecord(msgspec.Struct, frozen=True, kw_only=True):
    """This member's record, and the network's medians to compare it with."""

    org: str
    since_ms: int
    offers: list[OfferRecord]
    #: This member's medians (its role: its first role in the roster).
    own: Medians
    #: Every member's (this one's too), per role.
    network: list[Medians]


def _seconds(at: int | None, offered: int) -> float | None:
    return None if at is None else max(0, at - offered) / 1000


def _medians(role: str, found: list[Response]) -> Medians:
    def median(times: list[float | None]) -> float | None:
        known = [t for t in times if t is not None]
        return statistics.median(known) if known else None

    return Medians(
        role=role,
        offers=len(found),
        responded=sum(r.responded_ms is not None for r in found),
        response_s=median([_seconds(r.responded_ms, r.offered_ms) for r in found]),
        pledge_s=median([_seconds(r.pledged_ms, r.offered_ms) for r in found]),
        action_s=median([_seconds(r.acted_ms, r.offered_ms) for r in found]),
    )


def _role(roster: Roster, org: str) -> str:
    member = roster.known(org)
    return str(member.roles[0]) if member is not None and member.roles else "unknown"


async def ask_record(book: AlertBook, args: RecordArgs) -> AskRecord:
    """This member's record over the period `args` names."""
    network = book.ingestor.network
    org, now = book.ingestor.me.org, book.ingestor.clock.now_ms()
    since = now - args.days * _DAY_MS
    offers: list[OfferRecord] = []
    by_role: dict[str, list[Response]] = {}
    states = await book.store.alert_states(await book.store.alert_ids())
    for state in states.values():
        if state.raised is None or state.raised.pos.wall_ms < since:
            continue
        alert = turns_of(state, network.authority)
        if alert is None:
            continue
        v = alert.view
        for turns in alert.asks:
            for r in responses(alert.allowed, turns, now):
                if not v.exercise:
                    by_role.setdefault(_role(network.roster, r.org), []).append(r)
                if r.org == org:
                    offers.append(
                        OfferRecord(
                            alert=v.alert.hex(),
                            action=r.action,
                            to=r.to,
                            exercise=v.exercise,
                            offered_ms=r.offered_ms,
                            responded_s=_seconds(r.responded_ms, r.offered_ms),
                            pledged_s=_seconds(r.pledged_ms, r.offered_ms),
                            acted_s=_seconds(r.acted_ms, r.offered_ms),
                        )
                    )
    mine = [r for rs in by_role.values() for r in rs if r.org == org]
    return AskRecord(
        org=org,
        since_ms=since,
        offers=sorted(offers, key=lambda o: (o.offered_ms, o.alert, o.action)),
        own=_medians(_role(network.roster, org), mine),
        network=[_medians(role, rs) for role, rs in sorted(by_role.items())],
    )
