"""Coverage on a node: reading declaration files, the members' current declarations, the grid.

Owns the TOML format of `rrn coverage declare --file` (docs/OPERATIONS.md,
"Coverage"), checking a declaration before it is signed (the protocol's rules,
then DST gaps and folds over the coming year), the current declaration of each
member (its latest `coverage.declared` event, in chain order), and the week ×
hour grid and gap totals that `rrn coverage show` and the gap metrics report.
"""

from __future__ import annotations

import datetime
import tomllib
import zoneinfo
from pathlib import Path
from typing import Any, Final

import msgspec

from rrn.federation.coverage import Shift, dst_problems, gaps, shifts
from rrn.node.store.db import Store
from rrn.protocol.coverage import CoverageDeclared
from rrn.protocol.errors import ConfigError, PayloadError, ProtocolError
from rrn.protocol.kinds import Kind, decode_payload

__all__ = [
    "CoverageGrid",
    "Declarations",
    "GridRow",
    "all_shifts",
    "current_declarations",
    "gap_seconds",
    "grid",
    "load_declarations",
    "read_declaration",
]

HOUR_MS: Final = 3_600_000


def read_declaration(path: Path, today: datetime.date) -> CoverageDeclared:
    """A declaration from a TOML file, checked as receivers will check it, and for DST."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    doc: dict[str, Any] = {"tz": raw.pop("tz", None)}
    doc["windows"] = raw.pop("window", [])
    doc["exceptions"] = raw.pop("exception", [])
    if raw:
        raise ConfigError(f"{path}: unknown keys {sorted(raw)} (expected tz, window, exception)")
    if doc["tz"] is None:
        raise ConfigError(f"{path}: tz is missing (an IANA zone such as America/Lima)")
    try:
        decl = msgspec.convert(doc, CoverageDeclared)
        decode_payload(str(Kind.COVERAGE_DECLARED), msgspec.msgpack.encode(decl))
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except PayloadError as exc:
        raise ConfigError(
            f"{path}: {str(exc).removeprefix('coverage.declared payload: ')}"
        ) from exc
    problems = dst_problems(decl, today)
    if problems:
        raise ConfigError(
            f"{path}: {problems[0]}; pick a time clear of the clock change"
            + (f" ({len(problems) - 1} more)" if len(problems) > 1 else "")
        )
    return decl


class Declarations:
    """Every member's signed declarations, in chain order: current, or in force at a time."""

    def __init__(self, history: dict[str, list[tuple[tuple[int, int], int, CoverageDeclared]]]):
        self._history = {org: sorted(h, key=lambda x: x[0]) for org, h in history.items()}

    def current(self) -> dict[str, CoverageDeclared]:
        """Each member's latest declaration (a later event in its chain replaces earlier ones)."""
        return {org: h[-1][2] for org, h in self._history.items() if h}

    def at(self, ms: int) -> dict[str, CoverageDeclared]:
        """The declaration each member had signed by `ms` (its own clock), if any.

        Routing an alert uses the declarations in force when it was raised, so a
        later change of cover does not change the ladder of an alert in flight.
        """
        found = {}
        for org, h in self._history.items():
            signed = [decl for _, wall_ms, decl in h if wall_ms <= ms]
            if signed:
                found[org] = signed[-1]
        return found


async def load_declarations(store: Store, members: list[str]) -> Declarations:
    """The members' declarations in the store (undecodable ones are skipped)."""
    history: dict[str, list[tuple[tuple[int, int], int, CoverageDeclared]]] = {}
    for event in await store.events_of_kinds([str(Kind.COVERAGE_DECLARED)]):
        h = event.header
        if h.origin not in members or event.payload is None:
            continue
        try:
            decl = decode_payload(h.kind, event.payload)
        except ProtocolError:
            continue
        if isinstance(decl, CoverageDeclared):
            history.setdefault(h.origin, []).append(((h.epoch, h.seq), h.wall_ms, decl))
    return Declarations(history)


async def current_declarations(store: Store, members: list[str]) -> dict[str, CoverageDeclared]:
    """Each member's latest declaration."""
    return (await load_declarations(store, members)).current()


def all_shifts(decls: dict[str, CoverageDeclared], start_ms: int, end_ms: int) -> list[Shift]:
    return [s for org, d in sorted(decls.items()) for s in shifts(org, d, start_ms, end_ms)]


class GridRow(msgspec.Struct, frozen=True, kw_only=True):
    """Members on duty in each hour of the week, for one region or language."""

    kind: str  # "region" | "language"
    key: str
    hours: list[int]  # 168 counts, hour 0 = the grid's start
    gap_hours: int
    thin_hours: int


class CoverageGrid(msgspec.Struct, frozen=True, kw_only=True):
    """A week of coverage from `start_ms`, hour by hour, in the viewer's zone."""

    tz: str
    start_ms: int
    members: dict[str, str]  # org -> its declared zone
    rows: list[GridRow]
    #: Per member, 168 flags: 1 when it is on duty for the whole hour (anywhere).
    duty: dict[str, list[int]] = {}


def grid(decls: dict[str, CoverageDeclared], tz: str, now_ms: int) -> CoverageGrid:
    """The coming week from the current hour in `tz`: on-duty counts per region and language.

    An hour counts a member if it is on duty for the whole hour.
    """
    zone = zoneinfo.ZoneInfo(tz)
    local = datetime.datetime.fromtimestamp(now_ms / 1000, zone).replace(
        minute=0, second=0, microsecond=0
    )
    start = int(local.timestamp() * 1000)
    end = start + 168 * HOUR_MS
    found = all_shifts(decls, start, end)
    regions = sorted({r for s in found for r in s.regions})
    languages = sorted({lang for s in found for lang in s.languages})
    rows = [_row("region", r, found, start, country=r) for r in regions]
    rows += [_row("language", lang, found, start, language=lang) for lang in languages]
    duty = {
        org: [
            int(any(s.start_ms <= a and s.end_ms >= a + HOUR_MS for s in found if s.org == org))
            for a in range(start, end, HOUR_MS)
        ]
        for org in sorted(decls)
    }
    return CoverageGrid(
        tz=tz,
        start_ms=start,
        members={o: d.tz for o, d in sorted(decls.items())},
        rows=rows,
        duty=duty,
    )


def _row(
    kind: str,
    key: str,
    found: list[Shift],
    start: int,
    *,
    country: str | None = None,
    language: str | None = None,
) -> GridRow:
    langs = [language] if language else []
    hours = []
    for h in range(168):
        a, b = start + h * HOUR_MS, start + (h + 1) * HOUR_MS
        orgs = {
            s.org for s in found if s.start_ms <= a and s.end_ms >= b and s.covers(country, langs)
        }
        hours.append(len(orgs))
    return GridRow(
        kind=kind,
        key=key,
        hours=hours,
        gap_hours=sum(1 for n in hours if n == 0),
        thin_hours=sum(1 for n in hours if n == 1),
    )


def gap_seconds(
    decls: dict[str, CoverageDeclared], now_ms: int, horizon_ms: int
) -> dict[tuple[str, str], float]:
    """Seconds without cover in [now, now + horizon), per (kind, key) of the grid's rows.

    A region counts as covered by members who name it or take alerts from anywhere.
    """
    found = all_shifts(decls, now_ms, now_ms + horizon_ms)
    regions = sorted({r for s in found for r in s.regions} - {"*"})
    languages = sorted({lang for s in found for lang in s.languages})
    out: dict[tuple[str, str], float] = {}
    for r in regions:
        holes = gaps(found, now_ms, now_ms + horizon_ms, country=r)
        out["region", r] = sum(e - s for s, e in holes) / 1000
    for lang in languages:
        holes = gaps(found, now_ms, now_ms + horizon_ms, language=lang)
        out["language", lang] = sum(e - s for s, e in holes) / 1000
    return out
