"""How the CLI prints results for people (JSON output lives in node/control/channel.py).

Owns tables and detail views. Times are shown in the node's own time zone.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rrn.node.ops.types import AlertDetail, AlertInfo, AskInfo, StatusInfo

if TYPE_CHECKING:  # the record's computation loads only for `rrn asks record`
    from rrn.node.ops.record import AskRecord

__all__ = ["alert_detail", "alert_line", "alert_table", "fmt_time", "status_text", "table"]


def fmt_time(ms: int, tz: str) -> str:
    """A timestamp in the given IANA zone, to the minute. A signed time may lie beyond
    what a calendar holds (any integer up to 2^53 - 1 is valid): then the number."""
    try:
        when = datetime.datetime.fromtimestamp(ms / 1000, zoneinfo.ZoneInfo(tz))
    except (ValueError, OverflowError, OSError):
        return f"{ms} ms"
    return when.strftime("%Y-%m-%d %H:%M %Z")


def alert_line(a: AlertInfo) -> str:
    """One line about an alert (used after raise/claim/resolve)."""
    drill = " [exercise]" if a.exercise else ""
    who = f" by {', '.join(a.claimants)}" if a.claimants and a.status == "claimed" else ""
    return f"alert {a.id[:12]} {a.status}{who}: {a.country} {a.severity}/{a.urgency}{drill}"


def alert_table(alerts: list[AlertInfo], tz: str) -> str:
    """Alerts as an aligned table."""
    if not alerts:
        return "no alerts"
    rows = [
        (
            "ID",
            "STATUS",
            "LEVEL",
            "ASKED",
            "DEADLINE",
            "COUNTRY",
            "SEVERITY",
            "URGENCY",
            "TYPES",
            "ORIGIN",
            "RAISED",
        )
    ]
    for a in alerts:
        types = ",".join(a.incident_types)
        rows.append(
            (
                a.id[:12],
                a.status + (" (drill)" if a.exercise else ""),
                str(a.level),
                _asked(a, short=True),
                fmt_time(a.deadline_ms, tz) if a.deadline_ms is not None else "-",
                a.subdivision or a.country,
                a.severity,
                a.urgency,
                _cut(types, 32),
                a.origin,
                fmt_time(a.raised_ms, tz),
            )
        )
    return table(rows)


def _asked(a: AlertInfo, *, short: bool = False) -> str:
    """Whom the alert asks now: members, or the fallback pool."""
    if a.status not in ("open", "escalated"):
        return "-"
    if a.pool:
        return f"pool ({len(a.asked)})" if short else "fallback pool: " + ", ".join(a.asked)
    names = ", ".join(a.asked) or "-"
    return _cut(names, 32) if short else names


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def table(rows: Sequence[tuple[str, ...]]) -> str:
    """Rows of text as left-aligned columns; the first row is the heading."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def alert_detail(d: AlertDetail, tz: str) -> str:
    """Everything routable about one alert, and its history."""
    a = d.alert
    asks = [
        f"{x.action} from {x.to} ({x.channel})"
        + (f" by {fmt_time(x.deadline_ms, tz)}" if x.deadline_ms else "")
        for x in a.asks
    ]
    lines = [
        f"alert      {a.id}",
        f"status     {a.status}" + (f" ({a.end_code}, by {a.ended_by})" if a.ended_by else ""),
        f"origin     {a.origin}",
        f"pseudonym  {a.pseudonym}",
        f"where      {a.subdivision or a.country}",
        f"types      {', '.join(a.incident_types)}",
        f"severity   {a.severity}",
        f"urgency    {a.urgency}",
        f"languages  {', '.join(a.languages) or '-'}",
        f"asks       {'; '.join(asks) or '-'}",
        f"claimed by {', '.join(a.claimants) or '-'}"
        + (f" (handed over to {a.handover_to})" if a.handover_to else ""),
        f"level      {a.level}" + (f" ({a.cause})" if a.cause else " (first step)"),
        f"asked      {_asked(a)}"
        + (f", until {fmt_time(a.deadline_ms, tz)}" if a.deadline_ms is not None else ""),
        f"actions    {'; '.join(f'{act} by {who} ({ch})' for who, act, ch in a.actions) or '-'}",
        "pledges    "
        + (
            "; ".join(
                f"{act} by {who}" + (f" before {fmt_time(by, tz)}" if by else "")
                for who, act, by in a.pledges
            )
            or "-"
        ),
        f"feedback   {', '.join(a.feedback) or '-'}",
        f"audience   {', '.join(a.audience) if a.audience else 'the whole network'}",
        f"exercise   {'yes' if a.exercise else 'no'}",
        f"raised     {fmt_time(a.raised_ms, tz)}",
        "sealed     "
        + (
            "no sealed details"
            if not d.sealed_to
            else f"sealed to {', '.join(d.sealed_to)}"
            + ("" if d.details is not None else "; not readable by this member")
        ),
    ]
    lines += [f"  {name:<10} {text}" for name, text in (d.details or {}).items()]
    lines.append("history:")
    for e in d.events:
        lines.append(f"  {fmt_time(e.wall_ms, tz)}  {e.kind:<16} {e.origin}#{e.seq}  {e.id[:12]}")
    return "\n".join(lines)


def status_text(s: StatusInfo, tz: str) -> str:
    """`rrn status` for people."""
    lines = [
        f"node        {s.org} ({s.name}), rrn {s.version}",
        f"runs        nats-server {s.nats_server or '?'}, tz database {s.tz_database or '?'}, "
        f"lock {s.lock_sha256[:12] or 'none'}",
        f"network     {s.network[:16]}, roster v{s.roster_version}, "
        f"{len(s.members)} member(s): {', '.join(s.members)}",
        f"escalation  {s.escalation}",
        f"limits      {s.limits}",
        f"mesh        {s.mesh}",
        f"own chain   epoch {s.epoch}, seq {s.seq}",
        f"store       {s.events} events, {s.open_alerts} open alert(s)",
        f"nats        {s.nats_url}",
        f"metrics     {s.metrics_url or 'disabled'}",
        f"running     since {fmt_time(s.started_ms, tz)}",
        f"health      {_health(s)}",
    ]
    for gap, seconds in sorted(s.coverage_gaps_24h_s.items()):
        lines.append(
            f"COVERAGE    nobody on duty for {gap} during {seconds / 3600:.1f} h of the next 24 h"
        )
    for chain in s.frozen:
        lines.append(f"FROZEN      {chain} (a fork proof or a key cutoff)")
    if s.appends_blocked:
        lines.append(f"WARNING     own events blocked: {s.appends_blocked}")
    return "\n".join(lines)


def _health(s: StatusInfo) -> str:
    heard = len(s.linked) - len(s.quiet)
    parts = [
        f"members heard {heard}/{len(s.linked)}"
        + (f" (quiet: {', '.join(s.quiet)})" if s.quiet else "")
    ]
    parts.append(f"catching up {s.behind} events" if s.behind else "caught up")
    if not s.acting:
        parts.append("not escalating yet (catching up first)")
    parts.append(f"disk {s.disk_free_bytes / 2**30:.1f} GiB free")
    parts.append("ready" if not s.not_ready else "NOT READY: " + "; ".join(s.not_ready))
    return ", ".join(parts)


def asks_table(asks: list[AskInfo], tz: str) -> str:
    """Asks on open alerts, soonest deadline first, with when each was offered to this
    member and when it goes to the next (PROTOCOL 4.3c)."""
    if not asks:
        return "no open asks"

    def at(ms: int | None) -> str:
        return fmt_time(ms, tz) if ms is not None else "-"

    head = "ALERT ACTION TO CHANNEL DEADLINE OFFERED REPLY_BY NEXT_OFFER PLEDGED DONE"
    rows: list[tuple[str, ...]] = [(*(h.replace("_", " ") for h in head.split()), "")]
    for a in asks:
        rows.append(
            (
                a.alert[:12],
                a.action,
                a.to,
                a.channel,
                at(a.deadline_ms),
                at(a.offered_ms) if a.offered_ms is not None else "not yet",
                at(a.reply_by_ms),
                at(a.next_offer_ms),
                ", ".join(a.pledged_by) or "-",
                ", ".join(a.done_by) or "-",
                "OVERDUE" if a.overdue else "",
            )
        )
    return table(rows)


def fmt_seconds(s: float | None) -> str:
    """A duration, to the second under a minute, else in days, hours and minutes."""
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.0f}s"
    minutes = int(s // 60)
    days, rest = divmod(minutes, 1440)
    parts = [f"{days}d"] if days else []
    parts += [f"{rest // 60}h"] if rest >= 60 else []
    parts += [f"{rest % 60}m"] if rest % 60 or not parts else []
    return " ".join(parts)


def record_text(r: AskRecord, tz: str) -> str:
    """This member's record of answering asks, and its medians against the network's."""
    lines = [f"asks offered to {r.org} on alerts raised since {fmt_time(r.since_ms, tz)}"]
    rows: list[tuple[str, ...]] = [
        ("ALERT", "ACTION", "TO", "OFFERED", "RESPONDED", "PLEDGED", "ACTED")
    ]
    for o in r.offers:
        times = (o.responded_s, o.pledged_s, o.acted_s)
        after = [f"after {fmt_seconds(t)}" if t is not None else "-" for t in times]
        drill = " [exercise]" if o.exercise else ""
        rows.append((o.alert[:12] + drill, o.action, o.to, fmt_time(o.offered_ms, tz), *after))
    lines.append(table(rows) if r.offers else "none offered")
    lines.append("\nmedians from the offer (real alerts):")
    rows = [("WHO", "OFFERS", "ANSWERED", "RESPONSE", "PLEDGE", "ACTION")]
    medians = [(f"{r.org} ({r.own.role})", r.own)]
    medians += [(f"network, {n.role}", n) for n in r.network]
    for who, m in medians:
        taken = [fmt_seconds(t) for t in (m.response_s, m.pledge_s, m.action_s)]
        rows.append((who, str(m.offers), str(m.responded), *taken))
    lines.append(table(rows))
    return "\n".join(lines)
