"""Alert life-cycle payloads.

Owns the schema of each alert event kind's payload and its field rules; the
closed sets they draw from are protocol/vocabulary.py. Pure.

Only coarse, routable metadata lives here. Anything that identifies a person
(name, contacts, exact place, free text) goes in `sealed`: a blob that only its
recipients can open (protocol/sealing.py).
"""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from rrn.protocol.countries import is_country
from rrn.protocol.types import Hash32, NonNeg, OrgId
from rrn.protocol.vocabulary import (
    ActionType,
    ActResult,
    Audience,
    CancelReason,
    Channel,
    ConsentSource,
    EscalationCause,
    FeedbackType,
    IncidentType,
    Outcome,
    Severity,
    SupporterRole,
    TombstoneReason,
    Urgency,
)

__all__ = [
    "MAX_LEVEL",
    "PSEUDONYM_PATTERN",
    "AlertActed",
    "AlertCancelled",
    "AlertClaimed",
    "AlertEscalated",
    "AlertFeedback",
    "AlertPledged",
    "AlertRaised",
    "AlertReleased",
    "AlertResolved",
    "AlertShared",
    "AlertTombstoned",
    "AlertUpdated",
    "Ask",
    "Consent",
    "check_alert_fields",
    "check_audience",
    "check_drill_alert",
    "new_pseudonym",
]

# Payloads are immutable and without cycles: `gc=False` keeps the garbage collector
# from tracking them (a node catching up holds thousands at a time).


class Consent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Consent to share with one audience: who gave it, when, and until when."""

    audience: Audience
    given_by: ConsentSource
    given_ms: NonNeg
    until_ms: NonNeg | None = None

    def holds_at(self, at_ms: int) -> bool:
        """Whether this consent is in force at `at_ms`."""
        return self.given_ms <= at_ms and (self.until_ms is None or at_ms < self.until_ms)


#: Pseudonyms are minted by rrn ("hrd-" + 8 base32 characters), so a person's
#: name can never be typed into this routable field.
PSEUDONYM_PATTERN: Final = r"^hrd-[a-z2-7]{8}$"

Country = Annotated[str, Meta(pattern=r"^[A-Z]{2}$")]
Subdivision = Annotated[str, Meta(pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$")]
Language = Annotated[str, Meta(pattern=r"^[a-z]{2,3}$")]
Pseudonym = Annotated[str, Meta(pattern=PSEUDONYM_PATTERN)]
IncidentTypes = Annotated[list[IncidentType], Meta(min_length=1, max_length=8)]
Languages = Annotated[list[Language], Meta(max_length=8)]


class Ask(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One requested action, addressed to a kind of supporter."""

    action: ActionType
    to: SupporterRole
    channel: Channel = Channel.PRIVATE
    deadline_ms: NonNeg | None = None


#: An encoded sealed blob (protocol/sealing.py); its form is checked on receipt.
SealedBlob = Annotated[bytes, Meta(min_length=1, max_length=56 * 1024)]
Asks = Annotated[list[Ask], Meta(max_length=16)]


class AlertRaised(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A new alert. Its event id is the alert id."""

    country: Country
    subdivision: Subdivision | None = None
    incident_types: IncidentTypes
    severity: Severity
    urgency: Urgency
    asks: Asks = []
    languages: Languages = []
    pseudonym: Pseudonym
    exercise: bool = False
    #: Sealed details (identity, exact place, contacts, risk, narrative): an encoded
    #: protocol.sealing.Sealed blob, bound to this event's chain position.
    sealed: SealedBlob | None = None
    #: Consent per audience. Empty: none recorded, which shares with the NGO
    #: network only (federation/consent.py).
    consent: Annotated[list[Consent], Meta(max_length=8)] = []
    #: Members that must learn nothing of the alert (e.g. an implicated company).
    exclude: Annotated[list[OrgId], Meta(max_length=64)] = []
    #: States flagged as perpetrators: their diplomatic missions learn nothing.
    perpetrator_states: Annotated[list[Country], Meta(max_length=8)] = []
    #: An exercise alert of a drill (protocol/drills.py): the drill's id, and which of
    #: its exercise alerts this is.
    drill: Hash32 | None = None
    drill_index: Annotated[int, Meta(ge=0, lt=32)] | None = None


class AlertUpdated(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Changes to an alert's routable fields; a nil field is left unchanged."""

    alert: Hash32
    subdivision: Subdivision | None = None
    incident_types: IncidentTypes | None = None
    severity: Severity | None = None
    urgency: Urgency | None = None
    asks: Asks | None = None
    languages: Languages | None = None
    sealed: None = None


class AlertShared(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The alert's sealed details, resealed to more members (e.g. to the claimant).

    `sealed` is a new blob with a new content key, bound to this event's position.
    """

    alert: Hash32
    sealed: SealedBlob


class AlertClaimed(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A member takes responsibility for responding, optionally until a time."""

    alert: Hash32
    until_ms: NonNeg | None = None


#: Highest escalation level (at the default 10 minutes a step: over two months).
MAX_LEVEL: Final = 10_000


class AlertEscalated(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The alert moves to step `level` of its ladder (computed alike by every node).

    Any live node may publish it; several nodes publishing the same level merge
    into one state. `targets` are the members of that step as the publisher
    computed them, so everyone sees whom it went to.
    """

    alert: Hash32
    level: Annotated[int, Meta(ge=1, le=MAX_LEVEL)]
    targets: Annotated[list[OrgId], Meta(min_length=1, max_length=256)]
    cause: EscalationCause


class AlertReleased(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The member gives up its claim, optionally handing the alert to another member."""

    alert: Hash32
    handover_to: OrgId | None = None


class AlertActed(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A member did something for the alert: carried out an ask, or other help.

    Any member may record one (supporters included); the first one starts the
    "time to first action" every node measures from signed times. `result` is
    the outcome of the action (several events may record one action's progress).
    """

    alert: Hash32
    action: ActionType
    channel: Channel = Channel.PRIVATE
    result: ActResult = ActResult.DONE


class AlertPledged(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A supporter commits to carry out an ask, by a time if given.

    The pledge is fulfilled by a later `alert.acted` of the same member and action.
    """

    alert: Hash32
    action: ActionType
    channel: Channel = Channel.PRIVATE
    by_ms: NonNeg | None = None


class AlertFeedback(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The origin records that it gave the defender feedback on the response."""

    alert: Hash32
    feedback: FeedbackType


class AlertTombstoned(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The origin deletes the alert: every node drops the payloads of `events`.

    `events` lists the alert's events (any member's) whose payloads go; the
    headers stay, so every chain still verifies. A node deletes a listed event's
    payload when it is the tombstone origin's own alert event, or when the node
    can see that the event belongs to this alert.
    """

    alert: Hash32
    reason: TombstoneReason
    events: Annotated[list[Hash32], Meta(min_length=1, max_length=1024)]


class AlertResolved(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The response is over."""

    alert: Hash32
    outcome: Outcome


class AlertCancelled(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The alert is withdrawn."""

    alert: Hash32
    reason: CancelReason


def new_pseudonym() -> str:
    """A fresh defender pseudonym: 'hrd-' and 40 random bits in base32 (lower case)."""
    return "hrd-" + base64.b32encode(secrets.token_bytes(5)).decode().lower()


def check_drill_alert(p: AlertRaised) -> str | None:
    """The problem with an alert's drill fields, or None."""
    if (p.drill is None) != (p.drill_index is None):
        return "drill and drill_index go together"
    if p.drill is not None and not p.exercise:
        return "an alert of a drill is an exercise"
    return None


def check_audience(p: AlertRaised) -> str | None:
    """The problem with an alert's consent and exclusions, or None."""
    audiences = [c.audience for c in p.consent]
    if len(set(audiences)) != len(audiences):
        return "consent lists an audience twice"
    if any(c.until_ms is not None and c.until_ms <= c.given_ms for c in p.consent):
        return "consent ends before it was given"
    if len(set(p.exclude)) != len(p.exclude):
        return "exclude lists a member twice"
    if len(set(p.perpetrator_states)) != len(p.perpetrator_states):
        return "perpetrator_states lists a state twice"
    if not all(is_country(c) for c in p.perpetrator_states):
        return "perpetrator_states holds a code that is not a country"
    return None


def check_alert_fields(
    country: str | None, subdivision: str | None, incident_types: list[IncidentType] | None
) -> str | None:
    """The problem with field values a schema cannot judge alone, or None.

    The message names the field, never the value.
    """
    if country is not None and not is_country(country):
        return "country is not an ISO 3166-1 alpha-2 code"
    if subdivision is not None and country is not None and not subdivision.startswith(country):
        return "subdivision is not in the alert's country"
    if incident_types is not None and len(set(incident_types)) != len(incident_types):
        return "incident_types lists a type twice"
    return None
