"""The network policy as operators write and read it: `immediate=10m,days=2h,...` for
escalation, `day_events=5000,held_mb=8,...` for member limits, `4` or `full` for
the mesh's links.

Owns the text forms of the roster's network policy (protocol/policy.py) used by
`rrn network genesis`, `rrn member propose` and `rrn devnet up` (--escalation,
--limits, --links), and the lines `rrn status` prints.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from rrn.federation.escalation import DEFAULT_POLICY
from rrn.federation.limits import DEFAULT_LIMITS
from rrn.protocol.errors import ConfigError
from rrn.protocol.policy import (
    MAX_LINKS,
    MAX_STEP_S,
    MIN_LINKS,
    MIN_STEP_S,
    MemberLimits,
    NetworkPolicy,
)

__all__ = [
    "changed_policy",
    "describe_limits",
    "describe_mesh",
    "describe_policy",
    "parse_limits",
    "parse_links",
    "parse_policy",
]

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


#: --limits names: the field, and the unit a value is given in (bytes as MiB).
_LIMITS: Final = {
    "held": ("held_events", 1),
    "held_mb": ("held_bytes", 1 << 20),
    "day_events": ("day_events", 1),
    "day_mb": ("day_bytes", 1 << 20),
    "relay": ("relay_per_s", 1),
    "relay_burst": ("relay_burst", 1),
    "sync_pages": ("sync_pages_per_min", 1),
}
_LIMITS_FORM: Final = (
    "held=2000,held_mb=8,day_events=5000,day_mb=16,relay=50,relay_burst=500,sync_pages=120 "
    "(any subset)"
)


def parse_limits(spec: str, base: NetworkPolicy | None = None) -> NetworkPolicy:
    """`base` (the defaults if None) with the member limits `spec` changes."""
    policy = base or DEFAULT_POLICY
    changes: dict[str, int] = {}
    for part in spec.split(","):
        name, _, value = part.strip().partition("=")
        if name not in _LIMITS or not value.isdigit():
            raise ConfigError(f"--limits {spec!r}: use {_LIMITS_FORM}")
        field, unit = _LIMITS[name]
        changes[field] = int(value) * unit
    limits = msgspec.structs.replace(policy.limits or DEFAULT_LIMITS, **changes)
    try:  # the roster's own bounds on each limit
        limits = msgspec.convert(msgspec.structs.astuple(limits), MemberLimits)
    except msgspec.ValidationError as exc:
        index = re.search(r"\$\[(\d+)\]", str(exc))
        field = MemberLimits.__struct_fields__[int(index[1])] if index else "a limit"
        name = next((n for n, (f, _) in _LIMITS.items() if f == field), field)
        unit = _LIMITS[name][1] if name in _LIMITS else 1
        bound = re.sub(
            r"\d+", lambda m: str(int(m[0]) // unit), str(exc).split(" - at ")[0]
        ).replace("Expected `int`", "must be")
        raise ConfigError(f"--limits {name}: {bound}") from exc
    return msgspec.structs.replace(policy, limits=limits)


def describe_limits(policy: NetworkPolicy | None) -> str:
    """One line: what one member may make every other node hold."""
    limits = (policy.limits if policy else None) or DEFAULT_LIMITS
    parts = []
    for name, (field, unit) in _LIMITS.items():
        parts.append(f"{name}={getattr(limits, field) // unit}")
    default = policy is None or policy.limits is None
    return ",".join(parts) + (" (defaults)" if default else "")


def parse_links(spec: str, base: NetworkPolicy | None = None) -> NetworkPolicy:
    """`base` (the defaults if None) with a sparse mesh of `spec` links per member, or
    a full mesh for `full` (PROTOCOL.md 10.5). A policy with links writes its limits out."""
    policy = base or DEFAULT_POLICY
    if spec == "full":
        return msgspec.structs.replace(policy, links=None)
    if not spec.isdigit() or not MIN_LINKS <= int(spec) <= MAX_LINKS:
        raise ConfigError(
            f"--links {spec!r}: give {MIN_LINKS} to {MAX_LINKS} links per member, or 'full'"
        )
    return msgspec.structs.replace(policy, links=int(spec), limits=policy.limits or DEFAULT_LIMITS)


def describe_mesh(policy: NetworkPolicy | None) -> str:
    """One line: a full mesh, or how many links each member holds."""
    if policy is None or policy.links is None:
        return "full (every pair of members linked, except two behind NAT)"
    return f"sparse, {policy.links} links per member"


def changed_policy(
    base: NetworkPolicy | None,
    escalation: str | None = None,
    limits: str | None = None,
    links: str | None = None,
) -> NetworkPolicy | None:
    """`base` with the --escalation, --limits and --links changes given (None when none
    is: the policy stays as it is)."""
    if escalation is None and limits is None and links is None:
        return None
    policy = parse_policy(escalation, base) if escalation else base
    policy = parse_limits(limits, policy) if limits else policy
    return parse_links(links, policy) if links else policy
