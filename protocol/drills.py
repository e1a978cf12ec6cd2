"""Drills: exercise alerts at moments no member can foresee and every node can check.

Owns the payloads of the drill kinds, their rules, and how a drill's moments follow
from its secret (docs/PROTOCOL.md 4.8). Pure.

The scheduling member signs `drill.scheduled`: the window, the members in scope,
the urgency of each exercise alert, the routable facts they carry, and the SHA-256
commitment of a 32-byte secret that only its node holds (sealed to itself in the
event). Its node raises exercise alert `i` at moment `i`, derived from the secret;
after the window it reveals the secret in `drill.revealed`, and every node checks
the commitment and when each exercise alert was raised against its moment.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from rrn.protocol.alerts import (
    Country,
    IncidentTypes,
    Languages,
    SealedBlob,
    check_alert_fields,
)
from rrn.protocol.types import Hash32, NonNeg, OrgId
from rrn.protocol.vocabulary import Urgency

__all__ = [
    "MAX_DRILL_ALERTS",
    "MAX_WINDOW_MS",
    "DrillRevealed",
    "DrillScheduled",
    "check_drill",
    "moments",
    "secret_commitment",
]

#: Exercise alerts one drill may raise.
MAX_DRILL_ALERTS: Final = 32
#: The longest window: a week.
MAX_WINDOW_MS: Final = 7 * 86_400_000
_COMMIT: Final = b"rrn/drill-secret/v1\x00"
_MOMENT: Final = b"rrn/drill-moment/v1\x00"


class DrillScheduled(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A drill. Its event id is the drill id."""

    start_ms: NonNeg
    end_ms: NonNeg
    #: The members its exercise alerts are sealed to (the scheduling member included).
    scope: Annotated[list[OrgId], Meta(min_length=1, max_length=256)]
    #: The urgency of each exercise alert, in order (their number: 1 to 32).
    urgencies: Annotated[list[Urgency], Meta(min_length=1, max_length=MAX_DRILL_ALERTS)]
    country: Country
    incident_types: IncidentTypes
    languages: Languages = []
    commitment: Hash32
    #: The secret, sealed to the scheduling member alone (so its node keeps it).
    secret: SealedBlob


class DrillRevealed(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The secret of a drill, once its window is over."""

    drill: Hash32
    secret: Hash32


def check_drill(d: DrillScheduled) -> str | None:
    """What makes a drill's payload malformed, if anything."""
    problem = check_alert_fields(d.country, None, d.incident_types)
    if problem is not None:
        return problem
    if not 0 < d.end_ms - d.start_ms <= MAX_WINDOW_MS:
        return "the window must end after it starts, within a week"
    if d.scope != sorted(set(d.scope)):
        return "scope must be sorted, each member once"
    return None


def secret_commitment(secret: bytes) -> bytes:
    """The commitment a drill carries: SHA-256 over a domain and the secret."""
    return hashlib.sha256(_COMMIT + secret).digest()


def moments(secret: bytes, start_ms: int, end_ms: int, count: int) -> list[int]:
    """When each exercise alert is due: start + (the first 8 bytes of SHA-256(domain ‖
    secret ‖ u16 i), big-endian) mod (end - start)."""
    span = end_ms - start_ms
    return [
        start_ms
        + int.from_bytes(hashlib.sha256(_MOMENT + secret + i.to_bytes(2, "big")).digest()[:8])
        % span
        for i in range(count)
    ]
