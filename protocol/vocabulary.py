"""The routable vocabulary of alerts: incident types, severity, urgency, addressees,
actions, outcomes and the other closed sets alert payloads draw from.

Owns the documented taxonomies, which docs/PROTOCOL.md ("Alert vocabulary") maps
to the terms protection organisations use. Pure.
"""

from __future__ import annotations

import enum

__all__ = [
    "ActResult",
    "ActionType",
    "Audience",
    "CancelReason",
    "Channel",
    "ConsentSource",
    "EscalationCause",
    "FeedbackType",
    "IncidentType",
    "Outcome",
    "Severity",
    "SupporterRole",
    "TombstoneReason",
    "Urgency",
]


class IncidentType(enum.StrEnum):
    """What happened or is threatened (several may apply to one alert)."""

    KILLING = "killing"
    DEATH_THREAT = "death_threat"
    INTIMIDATION = "intimidation"
    PHYSICAL_ATTACK = "physical_attack"
    ARBITRARY_DETENTION = "arbitrary_detention"
    JUDICIAL_HARASSMENT = "judicial_harassment"
    ABDUCTION_DISAPPEARANCE = "abduction_disappearance"
    TORTURE = "torture"
    SEXUAL_VIOLENCE = "sexual_violence"
    SMEAR_CAMPAIGN = "smear_campaign"
    SURVEILLANCE_DIGITAL_ATTACK = "surveillance_digital_attack"
    RAID = "raid"
    TRAVEL_BAN = "travel_ban"
    ATTACK_ON_FAMILY = "attack_on_family"
    ORGANISATION_CLOSURE = "organisation_closure"
    OTHER = "other"


class Severity(enum.StrEnum):
    """Harm done so far, on the CAP 1.2 scale (minor < moderate < severe < extreme)."""

    MINOR = "minor"
    MODERATE = "moderate"
    SEVERE = "severe"
    EXTREME = "extreme"


class Urgency(enum.StrEnum):
    """How soon a response is needed: immediate (< 24 h), days, weeks."""

    IMMEDIATE = "immediate"
    DAYS = "days"
    WEEKS = "weeks"


class SupporterRole(enum.StrEnum):
    """Who an ask is addressed to."""

    NGO = "ngo"
    EMBASSY = "embassy"
    COMPANY = "company"
    INVESTOR = "investor"
    UN = "un"
    ANY = "any"


class ActionType(enum.StrEnum):
    """What an ask requests (catalogue from NGO, EU-guideline and business practice)."""

    VERIFY_ASSESS = "verify_assess"
    URGENT_APPEAL = "urgent_appeal"
    UN_COMMUNICATION = "un_communication"
    EMERGENCY_GRANT = "emergency_grant"
    RELOCATION = "relocation"
    DIGITAL_SECURITY = "digital_security"
    LEGAL_AID = "legal_aid"
    TRIAL_MONITORING = "trial_monitoring"
    MEDICAL = "medical"
    PSYCHOSOCIAL = "psychosocial"
    PRIVATE_DIPLOMACY = "private_diplomacy"
    CUSTODY_VISIT = "custody_visit"
    PUBLIC_STATEMENT = "public_statement"
    JOINT_STATEMENT = "joint_statement"
    EMERGENCY_VISA = "emergency_visa"
    TEMPORARY_SHELTER = "temporary_shelter"
    BUSINESS_PARTNER_ENGAGEMENT = "business_partner_engagement"
    INVESTOR_LETTER = "investor_letter"
    OTHER = "other"


class Channel(enum.StrEnum):
    """Whether an action may be public or must stay behind the scenes."""

    PRIVATE = "private"
    PUBLIC = "public"


class Outcome(enum.StrEnum):
    """How a resolved alert ended."""

    SAFE = "safe"
    RELEASED = "released"
    RELOCATED = "relocated"
    PROTECTION_IN_PLACE = "protection_in_place"
    TRANSFERRED = "transferred"
    DECEASED = "deceased"
    OTHER = "other"


class CancelReason(enum.StrEnum):
    """Why an alert was withdrawn without a response."""

    DUPLICATE = "duplicate"
    RAISED_IN_ERROR = "raised_in_error"
    OUT_OF_MANDATE = "out_of_mandate"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    EXERCISE_ENDED = "exercise_ended"


class Audience(enum.StrEnum):
    """Who a defender consented to have the alert shared with."""

    NETWORK = "network"  # the NGO members (roles responder, observer)
    EMBASSIES = "embassies"  # diplomatic missions (role embassy)
    COMPANIES = "companies"  # companies and investors (roles company, investor)
    UN = "un"  # UN special procedures (through an NGO member's communication)
    PUBLIC = "public"  # public naming (statements, social media)


class ConsentSource(enum.StrEnum):
    """Who gave the consent."""

    DEFENDER = "defender"
    FAMILY = "family"
    LAWYER = "lawyer"
    COLLEAGUE = "colleague"


class EscalationCause(enum.StrEnum):
    """Why an alert moved to the next step of its escalation ladder."""

    DEADLINE = "deadline"  # the step's deadline passed without a claim
    TARGET_DOWN = "target_down"  # the step's members stopped sending heartbeats
    CLAIM_LAPSED = "claim_lapsed"  # every claim expired or was released


class ActResult(enum.StrEnum):
    """What came of an action, as far as the member that took it knows."""

    DONE = "done"  # carried out, outcome not yet known
    EFFECTIVE = "effective"  # it helped (e.g. visit granted, visa issued)
    NO_EFFECT = "no_effect"
    REFUSED = "refused"  # e.g. the authorities refused the custody visit
    DECLINED = "declined"  # the member decided not to do it after all


class FeedbackType(enum.StrEnum):
    """What the originating NGO told the defender."""

    ACTIONS_TAKEN = "actions_taken"  # who did what (without naming private channels)
    OUTCOME = "outcome"
    NO_RESPONSE_YET = "no_response_yet"
    FOLLOW_UP = "follow_up"


class TombstoneReason(enum.StrEnum):
    """Why an alert's payloads are deleted everywhere."""

    CONSENT_WITHDRAWN = "consent_withdrawn"
    RETENTION_ENDED = "retention_ended"
    RAISED_IN_ERROR = "raised_in_error"
