"""Notices to this member's own people: an alert asks them to claim it.

Owns what the node tells its people and how: a JSON notice on
rrn.local.alerts.targeted and the configured [notify] command. Notices carry
routable metadata only (ids, level, urgency, severity, country, incident types),
never a pseudonym or free text. Which (alert, level) was already notified is kept
in the store, so a restart does not page people twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import AlertStatus
from rrn.federation.escalation import Ladder
from rrn.node.alerting.metrics import AlertingMetrics
from rrn.node.home.config import NotifyConfig
from rrn.node.store.db import Store
from rrn.protocol.subjects import LOCAL_ALERTS_PREFIX

__all__ = ["TARGETED_SUBJECT", "Notice", "Notifier"]

logger = logging.getLogger(__name__)


#: Where the node tells its integrators that an alert asks this member to claim it.
TARGETED_SUBJECT: Final = f"{LOCAL_ALERTS_PREFIX}.targeted"
_NOTIFIED_KEY: Final = "escalator.notified"


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """What the node's own people are told: an alert asks this member to claim it."""

    type: str = "targeted"
    alert: str  # hex id; `rrn alert show` gives the rest to those who may see it
    member: str
    level: int
    pool: bool
    reason: str  # first | deadline | target_down | claim_lapsed | handover
    urgency: str
    severity: str
    country: str
    incident_types: list[str]
    exercise: bool
    raised_ms: int
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
        #: Alert -> the highest step notified (level * 2, + 1 for a hand-over).
        self._notified: dict[bytes, int] = {}
        self._dirty = False
        self._commands: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        """Which steps were notified before a restart."""
        raw = await self.store.get_meta(_NOTIFIED_KEY)
        if raw:
            with contextlib.suppress(msgspec.DecodeError):
                self._notified = msgspec.msgpack.decode(raw, type=dict[bytes, int])

    async def save(self) -> None:
        """Write the notified steps if they changed (once per look, not per notice)."""
        if self._dirty:
            self._dirty = False
            await self.store.set_meta(_NOTIFIED_KEY, msgspec.msgpack.encode(self._notified))

    def forget(self, still_open: Iterable[bytes]) -> None:
        """Drop the marks of alerts that ended."""
        ended = set(self._notified) - set(still_open)
        for alert in ended:
            del self._notified[alert]
        self._dirty |= bool(ended)

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
        if self._notified.get(v.alert, -1) >= mark:
            return
        self._notified[v.alert] = mark
        self._dirty = True
        notice = Notice(
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
        )
        await self._send(notice)

    async def _send(self, notice: Notice) -> None:
        data = msgspec.json.encode(notice)
        logger.info(
            "alert %s asks this member to claim it (level %d)", notice.alert[:12], notice.level
        )
        try:
            await self.nc.publish(TARGETED_SUBJECT, data)
            self.metrics.notices.labels(channel="subject", outcome="ok").inc()
        except NatsError:
            self.metrics.notices.labels(channel="subject", outcome="failed").inc()
        if self.notify.command:
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
