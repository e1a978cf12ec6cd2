"""Alertmanager as the pager router: the node's notices pushed to a real Alertmanager
through its API (v2), so an organisation reuses Alertmanager's routing, silences,
inhibition and receivers instead of rrn writing channel adapters.

Owns which rrn alerts fire there and for how long: an alert fires from the first
notice this member gets about it (of the [alertmanager] notice types) until it is
claimed or closed, when it is sent once more as resolved. Labels: alertname
RrnAlert, org (this member), alert (id), severity, urgency, level, country,
exercise, notice; annotations: a summary and, if configured, a link. Routable
metadata only. Alertmanager resolves alerts it has not heard of for a while, so
firing ones are sent again every `resend_s`; what fires survives a restart (the
store's meta).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig
from prometheus_client import CollectorRegistry, Counter, Gauge

from rrn.federation.alerts import AlertStatus
from rrn.node.alerting.notices import NOTICE_SUBJECTS, Notice, read_notice
from rrn.node.home.hooks import AlertmanagerConfig
from rrn.node.integrations.consumers import pulled
from rrn.node.integrations.feeds import NOTICES_STREAM
from rrn.node.store.db import Store

if TYPE_CHECKING:  # the integrators' client imports this module: not the pipeline
    from rrn.node.pipeline.ingest import AlertChanges

__all__ = ["Alertmanager", "AlertmanagerMetrics"]

logger = logging.getLogger(__name__)

_FIRING_KEY: Final = "alertmanager.firing"


class AlertmanagerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.posts = Counter(
            "rrn_alertmanager_posts_total",
            "Requests to Alertmanager's API by outcome (ok, failed).",
            ["outcome"],
            registry=registry,
        )
        self.firing = Gauge(
            "rrn_alertmanager_firing",
            "rrn alerts this node has firing in Alertmanager.",
            registry=registry,
        )


class _Firing(msgspec.Struct, frozen=True, kw_only=True):
    labels: dict[str, str]
    annotations: dict[str, str]
    starts: str


class Alertmanager:
    """Keeps Alertmanager's view of this member's rrn alerts current."""

    def __init__(
        self,
        config: AlertmanagerConfig,
        *,
        org: str,
        store: Store,
        metrics: AlertmanagerMetrics,
        still_open: Callable[[bytes], Awaitable[bool]],
    ) -> None:
        self.config = config
        #: Whether an alert still asks for someone (open, unclaimed), from the projection.
        self.still_open = still_open
        self.org = org
        self.store = store
        self.metrics = metrics
        self.firing: dict[str, _Firing] = {}
        self._resolved: list[_Firing] = []
        self._changed = asyncio.Event()

    async def load(self) -> None:
        raw = await self.store.get_meta(_FIRING_KEY)
        if raw:
            with contextlib.suppress(msgspec.DecodeError):
                self.firing = msgspec.msgpack.decode(raw, type=dict[str, _Firing])
        self.metrics.firing.set(len(self.firing))

    async def run(self, nc: NatsClient) -> None:
        """Read notices and keep Alertmanager current, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._notices(nc), name="alertmanager-notices")
            tg.create_task(self._sender(), name="alertmanager-send")

    async def _notices(self, nc: NatsClient) -> None:
        config = ConsumerConfig(
            durable_name="alertmanager", ack_wait=60.0, filter_subjects=NOTICE_SUBJECTS
        )
        async for msg in pulled(nc.jetstream(), NOTICES_STREAM, config, 50):
            notice = read_notice(msg.data)
            if notice is not None and notice.type in self.config.notices:
                await self._fire(notice)
            await msg.ack()

    async def _fire(self, notice: Notice) -> None:
        old = self.firing.get(notice.alert)
        labels = {
            "alertname": "RrnAlert",
            "org": self.org,
            "alert": notice.alert,
            "severity": notice.severity,
            "urgency": notice.urgency,
            "level": str(notice.level),
            "country": notice.country,
            "exercise": "true" if notice.exercise else "false",
            "notice": notice.type,
        }
        if old is not None and old.labels == labels:
            return
        if old is not None:
            self._resolved.append(old)  # a new level or kind is a new Alertmanager alert
        annotations = {
            "summary": f"{notice.severity} {notice.urgency} alert in {notice.country}: "
            f"{_what(notice)} (level {notice.level})",
        }
        if self.config.link:
            annotations["link"] = self.config.link.replace("{alert}", notice.alert)
        self.firing[notice.alert] = _Firing(labels=labels, annotations=annotations, starts=_now())
        await self._save()
        self._changed.set()

    def alerts_changed(self, changes: AlertChanges) -> None:
        """Alerts that are claimed, closed or deleted stop firing."""
        for state, v in changes or []:
            firing = self.firing.get(state.alert.hex())
            if firing is not None and (v is None or v.status is not AlertStatus.OPEN):
                self._resolved.append(self.firing.pop(state.alert.hex()))
                self._changed.set()

    async def _sender(self) -> None:
        while True:
            await self._send()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.resend_s):
                    await self._changed.wait()
            self._changed.clear()

    async def _send(self) -> None:
        for alert in list(self.firing):  # a change missed (a restart, a rebuild) ends here
            if not await self.still_open(bytes.fromhex(alert)):
                self._resolved.append(self.firing.pop(alert))
        now = _now()
        batch = [_alert(f, None) for f in self.firing.values()]
        batch += [_alert(f, now) for f in self._resolved]
        if not batch:
            return
        if await asyncio.to_thread(self._post, batch):
            self._resolved.clear()
            await self._save()

    async def _save(self) -> None:
        self.metrics.firing.set(len(self.firing))
        await self.store.set_meta(_FIRING_KEY, msgspec.msgpack.encode(self.firing))

    def _post(self, alerts: list[dict[str, Any]]) -> bool:
        request = urllib.request.Request(  # noqa: S310 - the operator's configured URL
            self.config.url.rstrip("/") + "/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            method="POST",
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                ok = 200 <= int(response.status) < 300
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            logger.warning(
                "Alertmanager did not take %d alerts: %s", len(alerts), type(exc).__name__
            )
            ok = False
        self.metrics.posts.labels(outcome="ok" if ok else "failed").inc()
        return ok


def _what(notice: Notice) -> str:
    return {
        "targeted": f"asks {notice.member} to claim it",
        "pool": f"asks the fallback pool, {notice.member} in it, to claim it",
        "escalated": f"escalated ({notice.reason})",
        "unclaimed": "unclaimed past its first deadline",
        "ask": f"offers {notice.member} an ask ({notice.action}, to {notice.to})",
        "reask": f"still asks {notice.member} ({notice.action}, to {notice.to}): unanswered",
    }.get(notice.type, notice.type)


def _alert(f: _Firing, ends: str | None) -> dict[str, Any]:
    alert: dict[str, Any] = {"labels": f.labels, "annotations": f.annotations, "startsAt": f.starts}
    if ends is not None:
        alert["endsAt"] = ends
    return alert


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
