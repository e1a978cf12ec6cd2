"""On-duty declarations: the payload of `coverage.declared` and its rules.

Owns the schema a member uses to say when it is on duty (weekly windows in its
IANA time zone, plus dated exceptions), for which regions and languages, with
which capabilities, and the checks a receiver can make on it without a clock:
well-formed times, no empty or overlapping windows, exceptions that end after
they start and do not overlap. Whether a local time falls into a DST gap or
fold depends on dates and is checked where a declaration is written
(federation/coverage.py); receivers resolve such times by one fixed rule. Pure.
"""

from __future__ import annotations

import datetime
import enum
import itertools
import re
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from rrn.protocol.alerts import Language
from rrn.protocol.countries import is_country
from rrn.protocol.vocabulary import ActionType

__all__ = [
    "ANYWHERE",
    "Capability",
    "CoverException",
    "CoverageDeclared",
    "Weekday",
    "Window",
    "capability_for",
    "check_declaration",
    "minutes_of",
]


class Capability(enum.StrEnum):
    """What a member on duty can do (matched against an alert's asks)."""

    VERIFICATION = "verification"
    ADVOCACY = "advocacy"
    LEGAL = "legal"
    RELOCATION = "relocation"
    SHELTER = "shelter"
    MEDICAL = "medical"
    PSYCHOSOCIAL = "psychosocial"
    DIGITAL_SECURITY = "digital_security"
    DIPLOMATIC = "diplomatic"
    CORPORATE_ENGAGEMENT = "corporate_engagement"
    EMERGENCY_FUNDING = "emergency_funding"


_FOR_ACTION: Final = {
    ActionType.VERIFY_ASSESS: Capability.VERIFICATION,
    ActionType.URGENT_APPEAL: Capability.ADVOCACY,
    ActionType.UN_COMMUNICATION: Capability.ADVOCACY,
    ActionType.PUBLIC_STATEMENT: Capability.ADVOCACY,
    ActionType.JOINT_STATEMENT: Capability.ADVOCACY,
    ActionType.EMERGENCY_GRANT: Capability.EMERGENCY_FUNDING,
    ActionType.RELOCATION: Capability.RELOCATION,
    ActionType.TEMPORARY_SHELTER: Capability.SHELTER,
    ActionType.DIGITAL_SECURITY: Capability.DIGITAL_SECURITY,
    ActionType.LEGAL_AID: Capability.LEGAL,
    ActionType.TRIAL_MONITORING: Capability.LEGAL,
    ActionType.MEDICAL: Capability.MEDICAL,
    ActionType.PSYCHOSOCIAL: Capability.PSYCHOSOCIAL,
    ActionType.PRIVATE_DIPLOMACY: Capability.DIPLOMATIC,
    ActionType.CUSTODY_VISIT: Capability.DIPLOMATIC,
    ActionType.EMERGENCY_VISA: Capability.DIPLOMATIC,
    ActionType.BUSINESS_PARTNER_ENGAGEMENT: Capability.CORPORATE_ENGAGEMENT,
    ActionType.INVESTOR_LETTER: Capability.CORPORATE_ENGAGEMENT,
}


def capability_for(action: ActionType) -> Capability | None:
    """The capability an ask for this action needs (None: any member can help)."""
    return _FOR_ACTION.get(action)


class Weekday(enum.StrEnum):
    """Days of the week, Monday first (ISO 8601)."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


#: A region that matches every country (a member that takes alerts from anywhere).
ANYWHERE: Final = "*"

LocalTime = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
LocalDateTime = Annotated[
    str, Meta(pattern=r"^[0-9]{4}-[01][0-9]-[0-3][0-9]T([01][0-9]|2[0-3]):[0-5][0-9]$")
]
Region = Annotated[str, Meta(pattern=r"^([A-Z]{2}|\*)$")]
Regions = Annotated[list[Region], Meta(min_length=1, max_length=64)]
CoverLanguages = Annotated[list[Language], Meta(max_length=16)]
Capabilities = Annotated[list[Capability], Meta(max_length=16)]
ZoneName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_+\-/]{1,64}$")]


class Window(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A weekly on-duty window in the member's local time.

    `start` on each of `days` until `end`; an `end` at or before `start` means
    the window runs past midnight into the next day ("22:00"-"06:00"); "24:00"
    is midnight at the end of the day.
    """

    days: Annotated[list[Weekday], Meta(min_length=1, max_length=7)]
    start: LocalTime
    end: LocalTime
    regions: Regions
    languages: CoverLanguages = []
    capabilities: Capabilities = []


class CoverException(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A dated change to the weekly pattern, in local time: no cover, or extra cover."""

    start: LocalDateTime
    end: LocalDateTime
    off: bool = False
    regions: Annotated[list[Region], Meta(max_length=64)] = []
    languages: CoverLanguages = []
    capabilities: Capabilities = []


class CoverageDeclared(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A member's complete on-duty declaration; it replaces the member's earlier one."""

    tz: ZoneName
    windows: Annotated[list[Window], Meta(max_length=64)] = []
    exceptions: Annotated[list[CoverException], Meta(max_length=128)] = []


_WEEK_MIN: Final = 7 * 24 * 60


def minutes_of(hhmm: str) -> int:
    """Minutes since midnight of an "HH:MM" local time ("24:00" is 1440)."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _week_spans(w: Window) -> list[tuple[int, int]]:
    """The window's [start, end) spans in minutes of a week starting Monday 00:00."""
    start, end = minutes_of(w.start), minutes_of(w.end)
    length = end - start if end > start else end + 24 * 60 - start
    spans = []
    for day in w.days:
        s = list(Weekday).index(day) * 24 * 60 + start
        e = s + length
        if e <= _WEEK_MIN:
            spans.append((s, e))
        else:  # Sunday night into Monday morning
            spans += [(s, _WEEK_MIN), (0, e - _WEEK_MIN)]
    return spans


def _clock(minute: int) -> str:
    day = list(Weekday)[minute // (24 * 60) % 7]
    return f"{day} {minute % (24 * 60) // 60:02d}:{minute % 60:02d}"


_DATE: Final = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$")


def _valid_date(value: str) -> bool:
    match = _DATE.match(value)
    if match is None:
        return False
    year, month, day, hour, minute = (int(g) for g in match.groups())
    try:
        datetime.datetime(year, month, day, hour, minute)
    except ValueError:
        return False
    return True


def check_declaration(decl: CoverageDeclared) -> str | None:
    """The first problem with a declaration a schema cannot see, or None.

    Messages name windows by number and local times, which are not personal data.
    """
    return _check_windows(decl.windows) or _check_exceptions(decl.exceptions) or None


def _check_windows(windows: list[Window]) -> str:
    spans: list[tuple[int, int, int]] = []
    for number, w in enumerate(windows, 1):
        problem = _check_window(w)
        if problem:
            return f"window {number}: {problem}"
        spans += [(s, e, number) for s, e in _week_spans(w)]
    spans.sort()
    for (_s1, end1, n1), (start2, _e2, n2) in itertools.pairwise(spans):
        if start2 < end1 and n1 != n2:
            first, second = sorted((n1, n2))
            return (
                f"windows {first} and {second} overlap at {_clock(start2)}; "
                "declare one window per time, listing every region it covers"
            )
    return ""


def _check_window(w: Window) -> str:
    if w.start == w.end:
        return f"start and end are both {w.start}; a window cannot be empty"
    if w.start == "24:00":
        return "a window starts at 00:00, not 24:00"
    if len(set(w.days)) != len(w.days):
        return "a day is listed twice"
    return _check_lists(w.regions, w.languages, w.capabilities)


def _check_exceptions(exceptions: list[CoverException]) -> str:
    dated: list[tuple[str, str, int]] = []
    for number, x in enumerate(exceptions, 1):
        problem = _check_exception(x)
        if problem:
            return f"exception {number}: {problem}"
        dated.append((x.start, x.end, number))
    dated.sort()
    for (_s1, end1, n1), (start2, _e2, n2) in itertools.pairwise(dated):
        if start2 < end1:
            return f"exceptions {min(n1, n2)} and {max(n1, n2)} overlap at {start2}"
    return ""


def _check_exception(x: CoverException) -> str:
    for value in (x.start, x.end):
        if not _valid_date(value):
            return f"{value} is not a date and time"
    if x.end <= x.start:
        return f"it ends ({x.end}) before it starts ({x.start})"
    if x.off:
        if x.regions or x.languages or x.capabilities:
            return "an 'off' exception takes no regions, languages or capabilities"
        return ""
    if not x.regions:
        return "extra cover needs regions (or off = true)"
    return _check_lists(x.regions, x.languages, x.capabilities)


def _check_lists(regions: list[str], languages: list[str], capabilities: list[Capability]) -> str:
    for region in regions:
        if region != ANYWHERE and not is_country(region):
            return f"{region} is not an ISO 3166-1 alpha-2 country code (or '*')"
    if len(set(regions)) != len(regions):
        return "a region is listed twice"
    if len(set(languages)) != len(languages):
        return "a language is listed twice"
    if len(set(capabilities)) != len(capabilities):
        return "a capability is listed twice"
    return ""
