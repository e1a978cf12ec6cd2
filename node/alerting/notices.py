"""Notices to this member's own people and integrators: what an alert asks of them.

Owns what the node tells and how: a JSON notice on rrn.local.alerts.<type>.<alert> (kept
by the integrators' RRN_NOTICES stream, node/integrations/feeds.py) and, for the
notices that ask this member to claim or join, the configured [notify] command. Types:
`targeted` (the ladder asks this member), `pool` (it asks the fallback pool, this
member in it), `escalated` (an alert reached a new level), `unclaimed` (nobody
holds it past its first deadline), `collective` (a proposal this member may join, or
one it joined is met: node/alerting/collective.py), `ask` (an ask of the alert is
offered to this member, its turn: PROTOCOL 4.3c, node/alerting/offers.py) and
`reask` (still unanswered at the turn's reply-by). Notices carry routable metadata
only (ids, level, urgency, severity, country, incident types, an ask's action and
addressee), never a pseudonym or free text. What was already sent is kept in the
store (node/alerting/marks.py), so a restart sends nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import AlertStatus
from rrn.federation.collective import CollectiveView
from rrn.federation.escalation import Ladder
from rrn.node.alerting.marks import Marks
from rrn.node.alerting.metrics import AlertingMetrics
from rrn.node.home.config import NotifyConfig
from rrn.node.store.db import Store
from rrn.protocol.subjects import local_notice

__all__ = [
    "NOTICE_SUBJECTS",
    "NOTICE_TYPES",
    "Notice",
    "Notifier",
    "Offer",
    "pool_pages",
    "read_notice",
]

logger = logging.getLogger(__name__)


#: Every type of notice, each on rrn.local.alerts.<type>.<alert>.
NOTICE_TYPES: Final = ("targeted", "pool", "escalated", "unclaimed", "collective", "ask", "reask")
#: The subjects of every notice: what a consumer of RRN_NOTICES filters on (the
#: stream also keeps the security notices of rrn.local.alerts.security).
NOTICE_SUBJECTS: Final = [local_notice(t, "*") for t in NOTICE_TYPES]
#: The notices that run the [notify] command: they ask this member's people to act.
_PAGED: Final = ("targeted", "pool", "collective", "ask", "reask")


def pool_pages(rounds_in: int, step_ms: int, repeat_s: float) -> bool:
    """Whether this round of the fallback pool pages people: the round the alert
    entered it, then about every `repeat_s` seconds of rounds (every round when a
    round is that long already: a weeks alert's 12 h rounds, not once in 3 days)."""
    every = max(1, round(repeat_s * 1000 / step_ms)) if step_ms > 0 else 1
    return rounds_in % every == 0


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """What an alert asks of this member, or what happened to it (version 1)."""

    v: int = 1
    type: str  # targeted | pool | escalated | unclaimed | collective | ask | reask
    #: Unique per notice: type, alert and level, or for an ask the ask and the turn (the
    #: same notice again is a duplicate).
    id: str = ""
    alert: str  # hex id; `rrn alert show` gives the rest to those who may see it
    member: str
    level: int
    pool: bool
    #: first | deadline | target_down | claim_lapsed | handover; for `ask`: first (the
    #: first turn), unanswered (the turn before ran out), declined (its member declined);
    #: for `reask`: unanswered.
    reason: str
    urgency: str
    severity: str
    country: str
    incident_types: list[str]
    exercise: bool
    raised_ms: int
    #: When the step runs out; for `ask` the reply-by, for `reask` when the ask is
    #: offered to the next member (PROTOCOL 4.3c).
    deadline_ms: int
    #: When this node sent it.
    at_ms: int = 0
    #: For `ask` and `reask`: the ask (its place in the alert's asks), its action and
    #: addressee, and the turn (0: the first member offered it).
    ask: int | None = None
    action: str | None = None
    to: str | None = None
    turn: int | None = None
    #: A `collective` notice's proposal (hex), and the members committed to it (`met`).
    proposal: str = ""
    members: list[str] = []


def read_notice(data: bytes) -> Notice | None:
    """A notice from RRN_NOTICES, or None (logged) if the message is not one."""
    try:
        return msgspec.json.decode(data, type=Notice)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        logger.warning("a message in the notices stream is not a notice: %s", exc)
        return None


class Offer(msgspec.Struct, frozen=True, kw_only=True):
    """An `ask` or `reask` notice to send: which ask, which turn, until when."""

    kind: str  # ask | reask
    ask: int
    turn: int
    action: str
    to: str
    reason: str
    deadline_ms: int


class Notifier:
    """Tells this member's people, once per step, when an alert asks them to claim it."""

    def __init__(
        self,
        *,
        nc: NatsClient,
        store: Store,
        metrics: AlertingMetrics,
        notify: NotifyConfig,
        me: str,
    ) -> None:
        self.nc = nc
        self.store = store
        self.metrics = metrics
        #: The [notify] settings (replaced on reload).
        self.notify = notify
        self.me = me
        #: What was sent of each open alert, kept across restarts.
        self.marks = Marks(store)
        self._commands: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        """What was sent before a restart."""
        await self.marks.load()

    async def save(self) -> None:
        """Write what was sent, if it changed (once per look, not per notice)."""
        await self.marks.save()

    def close(self) -> None:
        """Stop notify commands still running."""
        for task in self._commands:
            task.cancel()

    async def maybe_notify(self, v: AlertView, steps: Ladder, deadline_ms: int) -> None:
        """Notify if the alert's current step asks this member and it was not told yet."""
        if v.status is AlertStatus.CLAIMED:
            return
        if v.handover_to == self.me:
            reason, pool = "handover", False
        elif v.level == 0 and self.me in steps.step(0).targets:
            reason, pool = "first", steps.step(0).pool
        elif v.level > 0 and self.me in v.targets:
            reason, pool = str(v.level_cause), steps.step(v.level).pool
        else:
            return
        mark = v.level * 2 + (reason == "handover")
        if self.marks.step(v.alert) >= mark:
            return
        self.marks.set_step(v.alert, mark)
        step_ms = deadline_ms - v.level_since_ms
        if pool and reason != "handover" and not self._pool_round_pages(v.level, steps, step_ms):
            return
        kind = "pool" if pool else "targeted"
        await self._send(self._notice(kind, v, reason, pool, deadline_ms, step=mark))

    def _pool_round_pages(self, level: int, steps: Ladder, step_ms: int) -> bool:
        entered = next(lvl for lvl in range(level + 1) if steps.step(lvl).pool)
        return pool_pages(level - entered, step_ms, self.notify.pool_repeat_s)

    async def offered(self, v: AlertView, offer: Offer) -> None:
        """Tell this member's people, once per ask and turn, that an ask is offered to it
        (`ask`), or still unanswered at its reply-by (`reask`)."""
        if not self.marks.first(f"{offer.kind}.{offer.ask}", v.alert, offer.turn):
            return
        if offer.kind == "reask":  # one that comes late says it all: no `ask` after it
            self.marks.first(f"ask.{offer.ask}", v.alert, offer.turn)
        notice = self._notice(
            offer.kind, v, offer.reason, False, offer.deadline_ms, step=offer.turn
        )
        await self._send(
            msgspec.structs.replace(
                notice,
                id=f"{offer.kind}.{v.alert.hex()}.{offer.ask}.{offer.turn}",
                ask=offer.ask,
                action=offer.action,
                to=offer.to,
                turn=offer.turn,
            )
        )

    async def escalated(self, v: AlertView, deadline_ms: int) -> None:
        """Tell integrators, once per level, that an alert reached a new one."""
        if v.level > 0 and self.marks.first("escalated", v.alert, v.level):
            await self._send(
                self._notice("escalated", v, str(v.level_cause), False, deadline_ms, step=v.level)
            )

    async def unclaimed(self, v: AlertView, deadline_ms: int) -> None:
        """Tell integrators, once, that nobody holds an alert past its first deadline."""
        if self.marks.first("unclaimed", v.alert, 0):
            await self._send(self._notice("unclaimed", v, "deadline", False, deadline_ms, step=0))

    async def collective(self, v: AlertView, c: CollectiveView, reason: str) -> None:
        """Tell this member's people of a proposal they may join (`proposed`), or that one
        they joined or made is met (`met`: every committed member named)."""
        notice = self._notice("collective", v, reason, False, c.deadline_ms, step=0)
        await self._send(
            msgspec.structs.replace(
                notice,
                id=f"collective.{reason}.{c.proposal.hex()}",
                proposal=c.proposal.hex(),
                members=list(c.committed) if reason == "met" else [],
            )
        )

    def _notice(
        self, kind: str, v: AlertView, reason: str, pool: bool, deadline_ms: int, *, step: int
    ) -> Notice:
        return Notice(
            type=kind,
            id=f"{kind}.{v.alert.hex()}.{step}",
            alert=v.alert.hex(),
            member=self.me,
            level=v.level,
            pool=pool,
            reason=reason,
            urgency=str(v.urgency),
            severity=str(v.severity),
            country=v.country,
            incident_types=[str(t) for t in v.incident_types],
            exercise=v.exercise,
            raised_ms=v.raised_ms,
            deadline_ms=deadline_ms,
            at_ms=int(time.time() * 1000),
        )

    async def _send(self, notice: Notice) -> None:
        data = msgspec.json.encode(notice)
        logger.info(
            "notice %s of alert %s (level %d)", notice.type, notice.alert[:12], notice.level
        )
        try:
            await self.nc.publish(
                local_notice(notice.type, notice.alert), data, headers={"Nats-Msg-Id": notice.id}
            )
            self.metrics.notices.labels(channel="subject", outcome="ok").inc()
        except NatsError:
            self.metrics.notices.labels(channel="subject", outcome="failed").inc()
        paged = notice.type in _PAGED and (self.notify.drills or not notice.exercise)
        if self.notify.command and paged:
            task = asyncio.create_task(self._run_command(data))
            self._commands.add(task)
            task.add_done_callback(self._commands.discard)

    async def _run_command(self, data: bytes) -> None:
        argv = self.notify.command
        outcome = "failed"
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            logger.error("notify command %s cannot start: %s", argv[0], exc.strerror)
            self.metrics.notices.labels(channel="command", outcome=outcome).inc()
            return
        try:
            await asyncio.wait_for(proc.communicate(data), self.notify.timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            outcome = "timeout"
            logger.error(
                "notify command %s ran past %.0f s; killed", argv[0], self.notify.timeout_s
            )
        else:
            if proc.returncode == 0:
                outcome = "ok"
            else:
                logger.error("notify command %s exited with %s", argv[0], proc.returncode)
        self.metrics.notices.labels(channel="command", outcome=outcome).inc()
