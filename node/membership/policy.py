"""The escalation policy as operators write and read it: `immediate=10m,days=2h,...`.

Owns the text form of the roster's network policy (protocol/roster.py
NetworkPolicy) used by `rrn network genesis`, `rrn member propose` and
`rrn devnet up` (--escalation), and the line `rrn status` prints.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from rrn.federation.escalation import DEFAULT_POLICY
from rrn.protocol.errors import ConfigError
from rrn.protocol.roster import MAX_STEP_S, MIN_STEP_S, NetworkPolicy

__all__ = ["describe_policy", "parse_policy"]

_DURATION: Final = re.compile(r"^([0-9]+)([smhd])$")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_FIELDS: Final = {"immediate": "immediate_s", "days": "days_s", "weeks": "weeks_s"}
_FORM: Final = "immediate=10m,days=2h,weeks=12h,direct=3 (any subset)"


def parse_policy(spec: str, base: NetworkPolicy | None = None) -> NetworkPolicy:
    """`base` (the defaults if None) with the changes `spec` names."""
    changes: dict[str, int] = {}
    for part in spec.split(","):
        name, _, value = part.strip().partition("=")
        if name == "direct":
            if not value.isdigit() or not 0 <= int(value) <= 16:
                raise ConfigError(f"--escalation direct={value!r}: give 0 to 16 members")
            changes["max_direct"] = int(value)
        elif name in _FIELDS:
            changes[_FIELDS[name]] = _seconds(name, value)
        else:
            raise ConfigError(f"--escalation {spec!r}: use {_FORM}")
    return msgspec.structs.replace(base or DEFAULT_POLICY, **changes)


def _seconds(name: str, value: str) -> int:
    match = _DURATION.match(value)
    if match is None:
        raise ConfigError(f"--escalation {name}={value!r}: give a duration like 90s, 10m, 2h, 1d")
    seconds = int(match[1]) * _UNIT_S[match[2]]
    if not MIN_STEP_S <= seconds <= MAX_STEP_S:
        raise ConfigError(
            f"--escalation {name}={value}: a step lasts "
            f"{MIN_STEP_S} s to {MAX_STEP_S // 86400} days"
        )
    return seconds


def _fmt(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_S[unit] == 0:
            return f"{seconds // _UNIT_S[unit]}{unit}"
    return f"{seconds}s"


def describe_policy(policy: NetworkPolicy | None) -> str:
    """One line: step times by urgency and direct steps before the pool."""
    p = policy or DEFAULT_POLICY
    return (
        f"immediate={_fmt(p.immediate_s)},days={_fmt(p.days_s)},weeks={_fmt(p.weeks_s)},"
        f"direct={p.max_direct}" + (" (defaults)" if policy is None else "")
    )
