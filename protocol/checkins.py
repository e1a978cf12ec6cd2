"""Check-in plans: a defender's dead-man's switch the network enforces.

Owns the payloads of the check-in kinds, their field rules, the one-time codes
and their commitments, and the ids of the alerts the network raises when a
check-in is missed (docs/PROTOCOL.md 4.7). Pure.

A plan lists the instants a defender must check in by (its slots), a grace
period, and the alert a missed check-in becomes (an `alert.raised` payload: the
routable facts, the pseudonym, the sealed details, the audience). For each slot
the defender carries two one-time codes: one checks in, the other checks in the
same way and silently raises an alert (duress). The plan holds only the SHA-256
commitments of both codes of a slot, in an order only the origin can read (the
`duress` blob is sealed to the origin alone), so every node verifies a check-in
relayed by any member, and no node but the origin's can tell the two apart.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from rrn.protocol.alerts import AlertRaised, SealedBlob, check_alert_fields, check_audience
from rrn.protocol.types import Hash32, NonNeg

__all__ = [
    "CODE_CHARS",
    "GRACE_MS",
    "MAX_SLOTS",
    "CheckinEnded",
    "CheckinMissed",
    "CheckinPlanned",
    "CheckinRecorded",
    "DuressMap",
    "check_plan",
    "commitment",
    "missed_alert_id",
    "new_code",
    "normal_code",
]

#: Slots a plan may hold (one pair of codes each).
MAX_SLOTS: Final = 256
#: Characters of a one-time code: 80 random bits in RFC 4648 base32, lower case.
CODE_CHARS: Final = 16
_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"
_MISREAD: Final = str.maketrans("018", "olb")
_CODE_DOMAIN: Final = b"rrn/checkin-code/v1\x00"
_MISSED_DOMAIN: Final = b"rrn/checkin-missed/v1\x00"
_DURESS_DOMAIN: Final = b"rrn/checkin-duress/v1\x00"

#: The grace period: at least 10 seconds (minutes in practice), at most a week.
#: The grace period's bounds (ms).
GRACE_MS: Final = (10_000, 7 * 86_400_000)
Grace = Annotated[int, Meta(ge=GRACE_MS[0], le=GRACE_MS[1])]
Slot = Annotated[int, Meta(ge=0, lt=MAX_SLOTS)]
Code = Annotated[str, Meta(pattern=r"^[a-z2-7]{16}$")]
CodePair = Annotated[list[Hash32], Meta(min_length=2, max_length=2)]


class CheckinPlanned(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A check-in plan. Its event id is the plan id."""

    #: The alert a missed check-in becomes (its `exercise` must be false).
    alert: AlertRaised
    #: The instants (Unix ms) to check in by, strictly increasing.
    slots: Annotated[list[NonNeg], Meta(min_length=1, max_length=MAX_SLOTS)]
    #: How long after a slot a check-in still counts before the alarm.
    grace_ms: Grace
    #: Per slot, the commitments of its two codes in an order only `duress` tells.
    codes: Annotated[list[CodePair], Meta(min_length=1, max_length=MAX_SLOTS)]
    #: A sealed blob (protocol/sealing.py) to the origin alone: a DuressMap.
    duress: SealedBlob


class DuressMap(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """The plaintext of a plan's `duress` blob: per slot, which code (0 or 1) of the
    pair is the duress code."""

    which: list[Annotated[int, Meta(ge=0, le=1)]]


class CheckinRecorded(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The defender checked in for `slot`. Any member within the plan's audience may
    record one with a code; the origin may record one without."""

    plan: Hash32
    slot: Slot
    code: Code | None = None


class CheckinMissed(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Nobody checked in for `slot` by its deadline: the alert `missed_alert_id` names.

    With `duress` given, the plan's origin acknowledges a check-in for the slot, sealed
    to itself alone: true when a duress code was used (the slot's duress alert), false
    otherwise (nothing is raised). Both are signed after every check-in and are the same
    size, so the events others see never tell a duress check-in from another."""

    plan: Hash32
    slot: Slot
    duress: bool | None = None


class CheckinEnded(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The origin ends a plan: no slot whose deadline is later raises an alarm."""

    plan: Hash32


def check_plan(p: CheckinPlanned) -> str | None:
    """What makes a plan's payload malformed, if anything."""
    a = p.alert
    problem = check_alert_fields(a.country, a.subdivision, a.incident_types) or check_audience(a)
    if problem is not None:
        return f"alert: {problem}"
    if a.exercise:
        return "a plan's alert is never an exercise"
    if any(b <= x for x, b in zip(p.slots, p.slots[1:], strict=False)):
        return "slots must be strictly increasing"
    if len(p.codes) != len(p.slots):
        return "codes must hold one pair per slot"
    if any(pair[0] == pair[1] for pair in p.codes):
        return "the two codes of a slot must differ"
    return None


def normal_code(typed: str) -> str:
    """A code as typed (any case, dashes and spaces; 0, 1 and 8 read as o, l and b,
    which the alphabet lacks and a voice over a bad line confuses), as the protocol
    writes it."""
    return "".join(c for c in typed.lower() if c not in "- ").translate(_MISREAD)


def new_code() -> str:
    """A fresh one-time code (80 random bits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_CHARS))


def commitment(code: str) -> bytes:
    """The commitment a plan carries for a code: SHA-256 over a domain and the code."""
    return hashlib.sha256(_CODE_DOMAIN + code.encode("ascii")).digest()


def missed_alert_id(plan: bytes, slot: int, *, duress: bool = False) -> bytes:
    """The id of the alert a missed (or duress) check-in raises: one per plan and slot,
    whichever member publishes it, so copies merge."""
    domain = _DURESS_DOMAIN if duress else _MISSED_DOMAIN
    return hashlib.sha256(domain + plan + slot.to_bytes(2, "big")).digest()
