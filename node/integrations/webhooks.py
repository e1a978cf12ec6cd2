"""Webhooks: the node's notices pushed to HTTP receivers, signed as Standard Webhooks
specifies (https://www.standardwebhooks.com).

Owns delivery to each [[webhooks]] target of config.toml: a durable consumer of
the RRN_NOTICES stream per target (so nothing is missed while the node or the
receiver is down), its filters, the signed request (`webhook-id` = the notice's
id, the same on every retry, so a receiver takes each notice once;
`webhook-timestamp`; `webhook-signature` = v1,base64(HMAC-SHA256(secret,
"id.timestamp.body"))), retries with growing pauses in order (a receiver sees a
target's notices in the order they were sent), and, past `give_up_after_s`, a
dead letter in the store an operator can replay. Bodies carry routable metadata
only, like every notice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import hmac
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig
from prometheus_client import CollectorRegistry, Counter, Gauge

from rrn.node.alerting.notices import NOTICE_SUBJECTS, Notice, read_notice
from rrn.node.home.hooks import WebhookConfig
from rrn.node.home.keyfiles import read_secret, write_secret
from rrn.node.integrations.consumers import pulled
from rrn.node.integrations.feeds import NOTICES_STREAM
from rrn.node.store.db import Store
from rrn.node.store.deadletters import DeadLetter
from rrn.protocol.errors import ConfigError

__all__ = [
    "WebhookBody",
    "WebhookMetrics",
    "Webhooks",
    "new_secret",
    "sign",
    "wanted",
]

logger = logging.getLogger(__name__)

_FIRST_PAUSE_S: Final = 1.0
_MAX_PAUSE_S: Final = 300.0


class WebhookBody(msgspec.Struct, frozen=True, kw_only=True):
    """What a receiver gets (the Standard Webhooks payload shape): the event type, when it
    was sent, and the notice."""

    type: str  # notice.targeted | notice.pool | notice.escalated | notice.unclaimed
    timestamp: str  # RFC 3339, UTC
    data: Notice


class WebhookMetrics:
    """What delivery does, per webhook."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.deliveries = Counter(
            "rrn_webhook_deliveries_total",
            "Webhook requests by target and outcome: delivered (2xx), failed (retried), "
            "dead (given up: a dead letter), filtered (not sent: the target does not want it), "
            "deleted (not sent: its alert was deleted by its origin meanwhile).",
            ["webhook", "outcome"],
            registry=r,
        )
        self.retrying = Gauge(
            "rrn_webhook_retrying",
            "1 while a target's next notice waits for its receiver to take it.",
            ["webhook"],
            registry=r,
        )
        self.oldest = Gauge(
            "rrn_webhook_oldest_pending_seconds",
            "Age of the notice a target's delivery waits on (0 when none waits).",
            ["webhook"],
            registry=r,
        )
        self.dead = Gauge(
            "rrn_webhook_dead_letters", "Notices a target gave up on, kept to replay.", ["webhook"],
            registry=r,
        )  # fmt: skip


def new_secret(path: Path) -> str:
    """Make a Standard Webhooks secret (whsec_ + base64 of 32 random bytes) in `path`."""
    if path.exists():
        raise ConfigError(f"{path} exists; delete it first to make a new secret")
    text = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_secret(path, text.encode())
    return text


def _key(text: str) -> bytes:
    body = text.strip().removeprefix("whsec_")
    try:
        return base64.b64decode(body, validate=True)
    except ValueError as exc:
        raise ConfigError("a webhook secret is whsec_ followed by base64") from exc


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def wanted(config: WebhookConfig, notice: Notice) -> bool:
    """Whether a target's filters let a notice through."""
    checks = (
        (config.severity, [notice.severity]),
        (config.urgency, [notice.urgency]),
        (config.country, [notice.country]),
        (config.incident_types, notice.incident_types),
    )
    return (
        notice.type in config.notices
        and (config.exercise or not notice.exercise)
        and all(not allowed or set(values) & set(allowed) for allowed, values in checks)
    )


class _Target:
    """One receiver: its consumer, its key, its retries."""

    def __init__(
        self,
        config: WebhookConfig,
        home: Path,
        store: Store,
        metrics: WebhookMetrics,
        exists: Callable[[str], Awaitable[bool]],
    ):
        self.config = config
        #: Whether an alert (hex id) is still there: a deleted one's notices are not sent.
        self.exists = exists
        path = Path(config.secret_file)
        self.key = _key(read_secret(path if path.is_absolute() else home / path).decode())
        self.store = store
        self.metrics = metrics
        self.name = config.name

    async def run(self, nc: NatsClient) -> None:
        config = ConsumerConfig(
            durable_name=f"webhook-{self.name}",
            ack_wait=3600.0,
            max_ack_pending=1,
            filter_subjects=NOTICE_SUBJECTS,
        )
        await self._count_dead()
        async for msg in pulled(nc.jetstream(), NOTICES_STREAM, config, 1):
            notice = read_notice(msg.data)
            if notice is None:
                pass  # not a notice (logged)
            elif wanted(self.config, notice):
                await self.deliver(notice, keep_alive=msg.in_progress)
            else:
                self.metrics.deliveries.labels(webhook=self.name, outcome="filtered").inc()
            await msg.ack()

    async def deliver(self, notice: Notice, keep_alive: Any = None) -> bool:
        """Send until the receiver takes it, or past give_up_after_s (a dead letter)."""
        body = msgspec.json.encode(
            WebhookBody(type=f"notice.{notice.type}", timestamp=_now(), data=notice)
        )
        first, pause, attempts = time.monotonic(), _FIRST_PAUSE_S, 0
        while True:
            if not await self.exists(notice.alert):  # deleted by its origin meanwhile
                self.metrics.deliveries.labels(webhook=self.name, outcome="deleted").inc()
                self._waiting(None)
                return False
            attempts += 1
            error = await asyncio.to_thread(self._post, notice.id, body)
            if error is None:
                self.metrics.deliveries.labels(webhook=self.name, outcome="delivered").inc()
                self._waiting(None)
                return True
            self.metrics.deliveries.labels(webhook=self.name, outcome="failed").inc()
            if time.monotonic() - first + pause > self.config.give_up_after_s:
                if await self.exists(notice.alert):  # a deleted alert's notice is not kept
                    await self._give_up(notice, body, attempts, error)
                return False
            self._waiting(first)
            logger.warning("webhook %s: %s; again in %.0f s", self.name, error, pause)
            if keep_alive is not None:
                with contextlib.suppress(NatsError):
                    await keep_alive()
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE_S)

    def _post(self, msg_id: str, body: bytes) -> str | None:
        """One request; None if the receiver took it, else why not (no payload text)."""
        stamp = int(time.time())
        request = urllib.request.Request(  # noqa: S310 - the operator's configured URL
            self.config.url,
            data=body,
            method="POST",
            headers={
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign(self.key, msg_id, stamp, body),
                "user-agent": "rrn-webhooks/1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:  # noqa: S310
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            return f"no answer ({type(exc).__name__})"
        return None if 200 <= status < 300 else f"answered {status}"

    def _waiting(self, since: float | None) -> None:
        self.metrics.retrying.labels(webhook=self.name).set(0 if since is None else 1)
        age = 0.0 if since is None else time.monotonic() - since
        self.metrics.oldest.labels(webhook=self.name).set(age)

    async def _give_up(self, notice: Notice, body: bytes, attempts: int, error: str) -> None:
        letter = DeadLetter(
            webhook=self.name,
            id=notice.id,
            body=body,
            failed_ms=int(time.time() * 1000),
            attempts=attempts,
            last_error=error,
        )
        await self.store.dead_letters.add(letter)
        self.metrics.deliveries.labels(webhook=self.name, outcome="dead").inc()
        self._waiting(None)
        await self._count_dead()
        logger.error("webhook %s gave up on notice %s: %s", self.name, notice.id, error)

    async def _count_dead(self) -> None:
        dead = len(await self.store.dead_letters.of(self.name))
        self.metrics.dead.labels(webhook=self.name).set(dead)

    async def replay(self) -> tuple[int, int]:
        """Send the dead letters again, oldest first (one attempt each); (sent, still dead)."""
        sent = 0
        letters = await self.store.dead_letters.of(self.name)
        for letter in letters:
            if await asyncio.to_thread(self._post, letter.id, letter.body) is None:
                await self.store.dead_letters.drop(self.name, letter.id)
                self.metrics.deliveries.labels(webhook=self.name, outcome="delivered").inc()
                sent += 1
        await self._count_dead()
        return sent, len(letters) - sent


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


class Webhooks:
    """Every configured webhook target."""

    def __init__(
        self,
        configs: list[WebhookConfig],
        home: Path,
        store: Store,
        metrics: WebhookMetrics,
        exists: Callable[[str], Awaitable[bool]],
    ) -> None:
        self.targets = {c.name: _Target(c, home, store, metrics, exists) for c in configs}

    async def run(self, nc: NatsClient) -> None:
        """Deliver to every target until cancelled."""
        if self.targets:
            async with asyncio.TaskGroup() as tg:
                for target in self.targets.values():
                    tg.create_task(target.run(nc), name=f"webhook-{target.name}")

    def target(self, name: str) -> _Target:
        found = self.targets.get(name)
        if found is None:
            raise ConfigError(f"no webhook {name!r} in config.toml")
        return found
