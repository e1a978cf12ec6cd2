"""The raise and propose forms: from posted fields to the operations' arguments.

Owns checking what a person typed before anything is signed, with the same
rules as `rrn alert raise` and `rrn collective propose` (ISO codes, the
protocol's vocabulary, consent with who gave it, a threshold per roster role)
and messages in the person's language. Identifying details and a collective
action's text are sealed here to this node's key, exactly as the CLI seals its
--details and --text files, so they never cross the node's NATS in the clear.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from collections.abc import Callable
from typing import Final

from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from rrn.node.control.transit import seal_request
from rrn.node.ops.collective import MAX_TEXT, ProposeArgs
from rrn.node.ops.types import RaiseArgs
from rrn.protocol.alerts import PSEUDONYM_PATTERN, Ask, Consent
from rrn.protocol.collective import Quota
from rrn.protocol.countries import is_country
from rrn.protocol.errors import ControlError, ProtocolError
from rrn.protocol.roster import Role as MemberRole
from rrn.protocol.sealing import DETAIL_FIELDS, Details, encode_details
from rrn.protocol.vocabulary import (
    ActionType,
    Audience,
    Channel,
    ConsentSource,
    IncidentType,
    Severity,
    SupporterRole,
    Urgency,
)

__all__ = ["ASK_ROWS", "DEADLINE_HOURS", "parse_proposal", "parse_raise", "typed_text"]

#: Ask rows the form offers.
ASK_ROWS: Final = 3
#: The deadlines the propose form offers, in hours from now.
DEADLINE_HOURS: Final = (6, 12, 24, 48, 72, 168)
#: Most members a threshold may ask of one role (PROTOCOL 4.9).
_MAX_NEED: Final = 64
_LANG: Final = re.compile(r"^[a-z]{2,3}$")

Form = MultiDictProxy[str | bytes | bytearray | FileField]


def _one(form: Form, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _all(form: Form, name: str) -> list[str]:
    return [v for v in form.getall(name, []) if isinstance(v, str) and v]


def parse_raise(
    form: Form, *, seal_info: dict[str, object], now_ms: int, _: Callable[..., str]
) -> tuple[RaiseArgs | None, list[str]]:
    """The operation's arguments, or the problems to show beside the form."""
    problems: list[str] = []
    country = _one(form, "country").upper()
    if not is_country(country):
        problems.append(_("Choose the country (an ISO 3166-1 code such as PE or KE)."))
    subdivision = _one(form, "subdivision").upper() or None
    if subdivision and not (
        len(subdivision) in range(4, 7) and subdivision.startswith(country + "-")
    ):
        problems.append(
            _("The subdivision must be an ISO 3166-2 code of that country (e.g. PE-LOR).")
        )
    types = [t for t in _all(form, "type") if t in IncidentType.__members__.values()]
    if not types:
        problems.append(_("Tick at least one incident type."))
    severity, urgency = _one(form, "severity"), _one(form, "urgency")
    if severity not in Severity.__members__.values() or urgency not in Urgency.__members__.values():
        problems.append(_("Choose a severity and an urgency."))
    languages = [x.strip().lower() for x in _one(form, "languages").split(",") if x.strip()]
    if any(not _LANG.match(x) for x in languages):
        problems.append(_("Languages are ISO 639 codes separated by commas (e.g. es, qu)."))
    pseudonym = _one(form, "pseudonym") or None
    if pseudonym and not re.match(PSEUDONYM_PATTERN, pseudonym):
        problems.append(_("Choose a pseudonym from the list, or a new one."))
    asks = _asks(form, problems, _)
    consent = _consent(form, problems, now_ms, _)
    states = [s.strip().upper() for s in _one(form, "perpetrator_states").split(",") if s.strip()]
    if any(not is_country(s) for s in states):
        problems.append(_("Perpetrator states are ISO 3166-1 codes separated by commas."))
    details = _details(form, seal_info, problems, _)
    if problems:
        return None, problems
    return (
        RaiseArgs(
            country=country,
            subdivision=subdivision,
            incident_types=[IncidentType(t) for t in types],
            severity=Severity(severity),
            urgency=Urgency(urgency),
            asks=asks,
            languages=languages,
            pseudonym=pseudonym,
            exercise=bool(form.get("exercise")),
            details=details,
            consent=consent,
            exclude=sorted(set(_all(form, "exclude"))),
            perpetrator_states=sorted(set(states)),
        ),
        [],
    )


def _asks(form: Form, problems: list[str], _: Callable[..., str]) -> list[Ask]:
    asks = []
    for i in range(ASK_ROWS):
        action, to = _one(form, f"ask_action_{i}"), _one(form, f"ask_to_{i}")
        channel = _one(form, f"ask_channel_{i}") or str(Channel.PRIVATE)
        if not action and not to:
            continue
        if (
            action not in ActionType.__members__.values()
            or to not in SupporterRole.__members__.values()
            or channel not in Channel.__members__.values()
        ):
            problems.append(_("Each ask needs an action and whom it is addressed to."))
            continue
        asks.append(Ask(action=ActionType(action), to=SupporterRole(to), channel=Channel(channel)))
    return asks


def _consent(form: Form, problems: list[str], now_ms: int, _: Callable[..., str]) -> list[Consent]:
    audiences = [a for a in _all(form, "consent") if a in Audience.__members__.values()]
    if not audiences:
        return []
    by = _one(form, "consent_by")
    if by not in ConsentSource.__members__.values():
        problems.append(_("Say who gave the consent."))
        return []
    until = _one(form, "consent_until")
    until_ms = None
    if until:
        try:
            day = datetime.date.fromisoformat(until)
        except ValueError:
            problems.append(_("The consent's end is a date (YYYY-MM-DD)."))
            return []
        until_ms = int(
            datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp() * 1000
        )
        if until_ms <= now_ms:
            problems.append(_("The consent's end has passed."))
            return []
    return [
        Consent(
            audience=Audience(a), given_by=ConsentSource(by), given_ms=now_ms, until_ms=until_ms
        )
        for a in sorted(set(audiences))
    ]


def _details(
    form: Form, seal_info: dict[str, object], problems: list[str], _: Callable[..., str]
) -> bytes | None:
    fields = {f: _one(form, f"detail_{f}") for f in DETAIL_FIELDS}
    fields = {k: v for k, v in fields.items() if v}
    if not fields:
        return None
    if any(len(v) > 4000 for v in fields.values()):
        problems.append(_("Each detail is limited to 4000 characters."))
        return None
    try:
        return seal_request(encode_details(Details(**fields)), seal_info)
    except ProtocolError:
        problems.append(_("The details are too long to seal (16 KiB in all)."))
        return None


def parse_slots(
    form: Form, tz: str, problems: list[str], _: Callable[..., str]
) -> tuple[list[int], int] | None:
    """A check-in plan's times (the first in `tz`, then every so many hours) and its
    grace period in ms; None, with the problems added, if the form is wrong."""
    try:
        first = datetime.datetime.fromisoformat(_one(form, "first")).replace(
            tzinfo=zoneinfo.ZoneInfo(tz)
        )
        every_h, count, grace_min = (
            float(_one(form, "every")),
            int(_one(form, "count")),
            int(_one(form, "grace")),
        )
    except ValueError:
        problems.append(
            _("Give the first check-in time, the hours between, the number and the grace.")
        )
        return None
    if not (0.25 <= every_h <= 168 and 1 <= count <= 256 and 1 <= grace_min <= 7 * 24 * 60):
        problems.append(_("Between check-ins: 15 min to a week; 1 to 256; grace: 1 min to a week."))
        return None
    start = int(first.timestamp() * 1000)
    return [start + int(k * every_h * 3_600_000) for k in range(count)], grace_min * 60_000


def typed_text(form: Form, name: str) -> bytes | None:
    """A textarea's text as the person typed it, with the line ends browsers send (CRLF)
    made LF, so the same text pasted twice hashes the same; None if blank."""
    value = form.get(name, "")
    if not isinstance(value, str) or not value.strip():
        return None
    return value.replace("\r\n", "\n").encode()


def parse_proposal(
    form: Form,
    *,
    alert: str,
    seal_info: dict[str, object],
    now_ms: int,
    tz: str,
    _: Callable[..., str],
) -> tuple[ProposeArgs | None, list[str]]:
    """A collective action's arguments (`rrn collective propose`), or the problems."""
    problems: list[str] = []
    action, channel = _one(form, "action"), _one(form, "channel") or str(Channel.PRIVATE)
    if action not in ActionType.__members__.values() or channel not in Channel.__members__.values():
        problems.append(_("Choose the action and its channel."))
    threshold = _threshold(form, problems, _)
    roles = sorted({MemberRole(r) for r in _all(form, "role") if r in _MEMBER_ROLES})
    deadline_ms = _deadline(form, now_ms, tz, problems, _)
    text = typed_text(form, "text")
    sealed = None
    if text is not None and len(text) > MAX_TEXT:
        problems.append(_("The text is limited to %(n)d KiB: give a summary.", n=MAX_TEXT // 1024))
    elif text is not None:
        try:
            sealed = seal_request(text, seal_info)
        except (ControlError, ProtocolError):
            problems.append(_("The text could not be sealed to this node."))
    if problems or deadline_ms is None:
        return None, problems
    return (
        ProposeArgs(
            alert=alert,
            action=ActionType(action),
            channel=Channel(channel),
            threshold=threshold,
            deadline_ms=deadline_ms,
            roles=roles,
            text=sealed,
        ),
        [],
    )


_MEMBER_ROLES: Final = frozenset(str(r) for r in MemberRole)


def _threshold(form: Form, problems: list[str], _: Callable[..., str]) -> list[Quota]:
    quotas = []
    for role in MemberRole:
        count = _one(form, f"need_{role}")
        if count in ("", "0"):
            continue
        if not (count.isdigit() and 1 <= int(count) <= _MAX_NEED):
            problems.append(_("Each need is a number of members, 0 to %(max)d.", max=_MAX_NEED))
            return []
        quotas.append(Quota(role=role, count=int(count)))
    if not quotas:
        problems.append(_("Say how many members of at least one kind must join."))
    return quotas


def _deadline(
    form: Form, now_ms: int, tz: str, problems: list[str], _: Callable[..., str]
) -> int | None:
    """The deadline: a time in the person's zone if given, else so many hours from now."""
    at, hours = _one(form, "deadline_at"), _one(form, "deadline_in")
    deadline = None
    if at:
        try:
            when = datetime.datetime.fromisoformat(at).replace(tzinfo=zoneinfo.ZoneInfo(tz))
            deadline = int(when.timestamp() * 1000)
        except (ValueError, OverflowError):
            deadline = None
    elif hours.isdigit() and int(hours) in DEADLINE_HOURS:
        deadline = now_ms + int(hours) * 3_600_000
    if deadline is None:
        problems.append(_("Choose the deadline: in so many hours, or a date and time."))
        return None
    if deadline <= now_ms:
        problems.append(_("The deadline has passed: choose a later one."))
        return None
    return deadline
