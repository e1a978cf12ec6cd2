"""Who may learn of an alert: consent per audience, its time limits, and exclusions."""

from __future__ import annotations

from typing import Any

import msgspec

from rrn.federation.consent import audience, consented, permitted
from rrn.protocol.alerts import Consent
from rrn.protocol.roster import Role, Roster
from rrn.protocol.vocabulary import Audience, ConsentSource
from tests.support import network, raised

TN = network("lima-hr", "nairobi-dl", "jakarta-pb", "berlin-fd", "manila-hrc")
T0 = 1_767_225_600_000
DAY = 86_400_000


def _roster() -> Roster:
    """Lima, Nairobi NGOs; Jakarta a company; Berlin the mission of PE; Manila of FR."""
    changes: dict[str, dict[str, Any]] = {
        "jakarta-pb": {"roles": [Role.COMPANY]},
        "berlin-fd": {"roles": [Role.EMBASSY], "state": "PE"},
        "manila-hrc": {"roles": [Role.EMBASSY], "state": "FR"},
    }
    members = [msgspec.structs.replace(m, **changes.get(m.org, {})) for m in TN.roster.members]
    return msgspec.structs.replace(TN.roster, members=members)


def _consent(*audiences: Audience, until: int | None = None) -> list[Consent]:
    return [
        Consent(audience=a, given_by=ConsentSource.DEFENDER, given_ms=T0, until_ms=until)
        for a in audiences
    ]


def test_without_recorded_consent_only_the_ngo_network_may_know() -> None:
    alert = raised()
    assert consented(alert, Audience.NETWORK, T0)
    assert not consented(alert, Audience.EMBASSIES, T0)
    assert audience(_roster(), alert, "lima-hr", T0) == ["lima-hr", "nairobi-dl"]


def test_consent_for_everyone_means_an_open_alert() -> None:
    alert = msgspec.structs.replace(
        raised(), consent=_consent(Audience.NETWORK, Audience.EMBASSIES, Audience.COMPANIES)
    )
    assert audience(_roster(), alert, "lima-hr", T0) is None


def test_exclusions_beat_consent_and_perpetrator_missions_are_left_out() -> None:
    alert = msgspec.structs.replace(
        raised(),
        consent=_consent(Audience.NETWORK, Audience.EMBASSIES, Audience.COMPANIES),
        exclude=["jakarta-pb"],
        perpetrator_states=["PE"],
    )
    assert audience(_roster(), alert, "lima-hr", T0) == ["lima-hr", "manila-hrc", "nairobi-dl"]
    roster = _roster()
    manila = roster.member("manila-hrc")
    assert manila is not None and permitted(manila, alert, T0)
    unknown_state = msgspec.structs.replace(manila, state=None)
    assert not permitted(unknown_state, alert, T0), "a mission of no recorded state is left out"


def test_consent_holds_from_when_it_was_given_until_it_ends() -> None:
    alert = msgspec.structs.replace(
        raised(), consent=_consent(Audience.NETWORK, Audience.EMBASSIES, until=T0 + DAY)
    )
    assert not consented(alert, Audience.EMBASSIES, T0 - 1)
    assert consented(alert, Audience.EMBASSIES, T0 + DAY - 1)
    assert not consented(alert, Audience.EMBASSIES, T0 + DAY)
    assert "manila-hrc" not in (audience(_roster(), alert, "lima-hr", T0 + DAY) or [])
