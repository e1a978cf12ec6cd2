"""The protocol's vocabulary in people's words, for every language of the console.

Owns the English label of each token (the msgid its translations key on); a
token with no label shows as itself. Tokens stay what the protocol says in
forms and URLs; only what a person reads is translated.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LABELS", "MEMBER_ROLES"]


def N_(text: str) -> str:
    return text


LABELS: Final = {
    # incident types
    "killing": N_("Killing"),
    "death_threat": N_("Death threat"),
    "intimidation": N_("Intimidation"),
    "physical_attack": N_("Physical attack"),
    "arbitrary_detention": N_("Arbitrary detention"),
    "judicial_harassment": N_("Judicial harassment"),
    "abduction_disappearance": N_("Abduction or disappearance"),
    "torture": N_("Torture"),
    "sexual_violence": N_("Sexual violence"),
    "smear_campaign": N_("Smear campaign"),
    "surveillance_digital_attack": N_("Surveillance or digital attack"),
    "raid": N_("Raid"),
    "travel_ban": N_("Travel ban"),
    "attack_on_family": N_("Attack on family"),
    "organisation_closure": N_("Closure of an organisation"),
    "other": N_("Other"),
    # severity and urgency
    "minor": N_("Minor"),
    "moderate": N_("Moderate"),
    "severe": N_("Severe"),
    "extreme": N_("Extreme"),
    "immediate": N_("Immediate"),
    "days": N_("Within days"),
    "weeks": N_("Within weeks"),
    # whom an ask is addressed to
    "ngo": N_("NGOs"),
    "embassy": N_("Embassies"),
    "company": N_("Companies"),
    "investor": N_("Investors"),
    "un": N_("UN"),
    "any": N_("Anyone"),
    # actions
    "verify_assess": N_("Verify and assess"),
    "urgent_appeal": N_("Urgent appeal"),
    "un_communication": N_("UN communication"),
    "emergency_grant": N_("Emergency grant"),
    "relocation": N_("Relocation"),
    "digital_security": N_("Digital security"),
    "legal_aid": N_("Legal aid"),
    "trial_monitoring": N_("Trial monitoring"),
    "medical": N_("Medical care"),
    "psychosocial": N_("Psychosocial support"),
    "private_diplomacy": N_("Private diplomacy"),
    "custody_visit": N_("Custody visit"),
    "public_statement": N_("Public statement"),
    "joint_statement": N_("Joint statement"),
    "emergency_visa": N_("Emergency visa"),
    "temporary_shelter": N_("Temporary shelter"),
    "business_partner_engagement": N_("Engaging business partners"),
    "investor_letter": N_("Investor letter"),
    # channels
    "private": N_("Private"),
    "public": N_("Public"),
    # outcomes
    "safe": N_("Safe"),
    "released": N_("Released"),
    "relocated": N_("Relocated"),
    "protection_in_place": N_("Protection in place"),
    "transferred": N_("Transferred"),
    "deceased": N_("Deceased"),
    # cancel and forget reasons
    "duplicate": N_("Duplicate"),
    "raised_in_error": N_("Raised in error"),
    "out_of_mandate": N_("Out of mandate"),
    "consent_withdrawn": N_("Consent withdrawn"),
    "exercise_ended": N_("Exercise ended"),
    "retention_ended": N_("Retention period ended"),
    # audiences and who consented
    "network": N_("The NGO network"),
    "embassies": N_("Embassies"),
    "companies": N_("Companies and investors"),
    "defender": N_("The defender"),
    "family": N_("Family"),
    "lawyer": N_("Lawyer"),
    "colleague": N_("Colleague"),
    # results of actions
    "done": N_("Done"),
    "effective": N_("Effective"),
    "no_effect": N_("No effect"),
    "refused": N_("Refused"),
    "declined": N_("Declined"),
    # alert states
    "open": N_("Open"),
    "escalated": N_("Escalated"),
    "claimed": N_("Claimed"),
    "resolved": N_("Resolved"),
    "cancelled": N_("Cancelled"),
    # check-in slots
    "upcoming": N_("Upcoming"),
    "due": N_("Due now"),
    "overdue": N_("Overdue"),
    "checked_in": N_("Checked in"),
    "missed": N_("Missed: alert raised"),
    "ended": N_("Plan ended"),
    # collective actions: a proposal's state and this member's standing
    "met": N_("Met: joiners bound"),
    "expired": N_("Expired: nobody bound"),
    "joined": N_("Joined (binds us if met)"),
    "committed": N_("Committed"),
    "withdrew_after": N_("Withdrew after it was met"),
    # console roles
    "admin": N_("Admin"),
    "coordinator": N_("Coordinator"),
    "responder": N_("Responder"),
    "liaison": N_("Liaison"),
    "viewer": N_("Viewer"),
    # sealed detail fields
    "identity": N_("Identity"),
    "location": N_("Location"),
    "contacts": N_("Contacts"),
    "risk": N_("Risk assessment"),
    "narrative": N_("What happened"),
}

#: A member organisation's roster role, as a count of members reads ("1/2 companies").
MEMBER_ROLES: Final = {
    "responder": N_("responding NGOs"),
    "company": N_("companies"),
    "embassy": N_("embassies"),
    "investor": N_("investors"),
    "observer": N_("observers"),
}
