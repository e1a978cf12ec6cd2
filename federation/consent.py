"""Who may learn of an alert: consent per audience, and exclusions.

Owns the rule that turns an alert's consent and exclusions into its audience:
the members that may hold its routable metadata and route it. Pure.

A member belongs to the audiences of its roster roles (responder and observer:
the NGO network; embassy: embassies; company and investor: companies). It may
learn of an alert only when consent for every one of those audiences holds at
the time of the raise, it is not excluded by name, and it is not the mission of
a state flagged as perpetrator (nor, when any state is flagged, a mission whose
state the roster does not record). An alert without recorded consent is shared
with the NGO network only. The origin is always in its own audience.
"""

from __future__ import annotations

from typing import Final

from rrn.protocol.alerts import AlertRaised
from rrn.protocol.roster import Member, Role, Roster
from rrn.protocol.vocabulary import Audience

__all__ = ["AUDIENCE_OF_ROLE", "audience", "consented", "permitted"]

#: The audience each roster role belongs to.
AUDIENCE_OF_ROLE: Final = {
    Role.RESPONDER: Audience.NETWORK,
    Role.OBSERVER: Audience.NETWORK,
    Role.EMBASSY: Audience.EMBASSIES,
    Role.COMPANY: Audience.COMPANIES,
    Role.INVESTOR: Audience.COMPANIES,
}


def consented(alert: AlertRaised, who: Audience, at_ms: int) -> bool:
    """Whether the alert may be shared with audience `who` at `at_ms`."""
    if not alert.consent:
        return who is Audience.NETWORK
    return any(c.audience is who and c.holds_at(at_ms) for c in alert.consent)


def permitted(member: Member, alert: AlertRaised, at_ms: int) -> bool:
    """Whether `member` may learn of the alert (at the time it is raised or shared)."""
    if member.org in alert.exclude:
        return False
    if (
        Role.EMBASSY in member.roles
        and alert.perpetrator_states
        and (member.state is None or member.state in alert.perpetrator_states)
    ):
        return False  # a mission of a flagged state, or one whose state is not on record
    return all(consented(alert, AUDIENCE_OF_ROLE[r], at_ms) for r in member.roles)


def audience(roster: Roster, alert: AlertRaised, origin: str, at_ms: int) -> list[str] | None:
    """The members that may hold the alert, sorted; None when that is every member.

    When it is not every member, the alert travels sealed to exactly these
    members, and the others hold only an opaque event.
    """
    allowed = [m.org for m in roster.members if m.org == origin or permitted(m, alert, at_ms)]
    return None if len(allowed) == len(roster.members) else allowed
