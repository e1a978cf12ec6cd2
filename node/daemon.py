"""One organisation's daemon: `async with Node(home) as node: await node.run(stop)`.

Owns the node's lifecycle. `__aenter__` opens, in order, the store, the
embedded nats-server, the NATS connection, the ingest pipeline, the control
channel and /metrics, each registered on an AsyncExitStack so exit unwinds in
reverse. `run()` owns one TaskGroup; on stop it stops accepting control
requests, lets queued events commit, then returns for the exit stack to close
NATS, stop the server and close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from types import TracebackType
from typing import Final

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from node.api import Api, StatusInfo
from node.clock import Clock, SystemClock
from node.control import ControlReply, Verifier, encode_reply
from node.home import Home
from node.ingest import Identity, Ingestor
from node.keys import Keys
from node.metrics import Metrics, MetricsServer
from node.natsconf import DAEMON_USER, render_server_conf
from node.natsproc import ServerSpec, open_nats_server, server_version
from node.network import Network, load_network
from node.store import Store, open_store
from protocol import subjects
from protocol.envelope import Event
from protocol.errors import ConfigError, ProtocolError, RrnError

__all__ = ["Node", "rrn_version"]

logger = logging.getLogger(__name__)

_STOP_GRACE_S: Final = 30.0


def rrn_version() -> str:
    """The installed version of rrn."""
    try:
        return pkg_version("rrn")
    except PackageNotFoundError:
        return "0+unknown"


class Node:
    """A running rrn node."""

    def __init__(self, home: Home, *, clock: Clock | None = None) -> None:
        self.home = home
        self.config = home.config
        self.clock = clock or SystemClock()
        self._stack = contextlib.AsyncExitStack()
        self.started_ms = 0
        self.nats_url = ""
        self.metrics_url: str | None = None
        self._control_sub: Subscription | None = None
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------

    async def __aenter__(self) -> Node:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _open(self) -> None:
        self.started_ms = self.clock.now_ms()
        self.keys: Keys = self.home.keys()
        self.store: Store = await self._stack.enter_async_context(open_store(self.home.store_path))
        self.network: Network = await load_network(self.store)
        self._check_own_key()
        self.metrics = Metrics(version=rrn_version(), nats_server=server_version())
        await self._open_nats()
        self.ingestor = Ingestor(
            store=self.store,
            network=self.network,
            me=Identity(self.config.node.org, self.keys.epoch, self.keys.sign),
            metrics=self.metrics,
            clock=self.clock,
            config=self.config.ingest,
            on_commit=self._published,
        )
        await self.ingestor.load()
        self.api = Api(ingestor=self.ingestor, store=self.store, status=self.status)
        await self._open_control()
        if self.config.metrics.enabled:
            server = MetricsServer(self.metrics, self.config.metrics.host, self.config.metrics.port)
            self._stack.callback(server.close)
            self.metrics_url = server.url
        self._write_daemon_file()

    def _check_own_key(self) -> None:
        org = self.config.node.org
        member = self.network.roster.known(org)
        key = member.key_for(self.keys.epoch) if member else None
        if key is None or key.pub != self.keys.sign_pub():
            raise ConfigError(
                f"the roster does not list this node's signing key for {org} (epoch "
                f"{self.keys.epoch}); is this the right home?"
            )

    async def _open_nats(self) -> None:
        n = self.config.nats
        if n.embedded:
            spec = ServerSpec(
                conf_text=render_server_conf(
                    self.config,
                    self.keys,
                    nats_dir=str(self.home.nats_dir),
                    run_dir=str(self.home.run_dir),
                ),
                nats_dir=self.home.nats_dir,
                run_dir=self.home.run_dir,
                port=n.port,
            )
            server = await self._stack.enter_async_context(open_nats_server(spec))
            self.nats_url = server.client_url
            user, password = DAEMON_USER, self.keys.nats_password
        else:
            self.nats_url, user, password = n.url, None, None
        self.nc: NatsClient = await _connect(
            self.nats_url, user, password, name=f"rrn-{self.config.node.org}", metrics=self.metrics
        )
        self._stack.push_async_callback(self._close_nats)

    async def _close_nats(self) -> None:
        with contextlib.suppress(NatsError, asyncio.TimeoutError):
            await asyncio.wait_for(self.nc.drain(), 10)
        if not self.nc.is_closed:
            await self.nc.close()
        self.metrics.nats_connected.set(0)

    async def _open_control(self) -> None:
        self._verifier = Verifier(self.keys.control)
        self._handlers = self.api.handlers()
        self._control_sub = await self.nc.subscribe(
            subjects.control(self.config.node.org, "request"), cb=self._on_control
        )
        await self.nc.flush()

    def _write_daemon_file(self) -> None:
        info = {
            "pid": os.getpid(),
            "org": self.config.node.org,
            "nats_url": self.nats_url,
            "metrics_url": self.metrics_url,
            "started_ms": self.started_ms,
            "version": rrn_version(),
        }
        path = self.home.daemon_file
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, path)
        self._stack.callback(lambda: path.unlink(missing_ok=True))

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then wind down within a grace period."""
        async with asyncio.TaskGroup() as tg:
            ingest = tg.create_task(self.ingestor.run(), name="ingest")
            await stop.wait()
            self._stopping = True
            logger.info("stopping: no new control requests; committing queued events")
            try:
                async with asyncio.timeout(_STOP_GRACE_S):
                    if self._control_sub is not None:
                        await self._control_sub.drain()  # type: ignore[no-untyped-call]
                    await self.ingestor.flush()
            except TimeoutError:
                logger.error("stop grace period of %.0f s passed; stopping anyway", _STOP_GRACE_S)
            ingest.cancel()

    # -- behaviour --------------------------------------------------------------

    def status(self) -> StatusInfo:
        """A snapshot of this node for `rrn status`."""
        head = self.ingestor.heads.get((self.config.node.org, self.keys.epoch))
        return StatusInfo(
            org=self.config.node.org,
            name=self.config.node.name,
            version=rrn_version(),
            network=self.network.net.hex(),
            roster_version=self.network.roster_version,
            members=self.network.roster.orgs(),
            epoch=self.keys.epoch,
            seq=head.seq if head else 0,
            events=self.ingestor.stored,
            open_alerts=self.ingestor.open_alerts,
            appends_blocked=self.ingestor.appends_blocked,
            nats_url=self.nats_url,
            metrics_url=self.metrics_url,
            started_ms=self.started_ms,
        )

    async def _published(self, events: list[Event]) -> None:
        """After a commit: publish our own new events live."""
        subject = subjects.events(self.network.net, self.config.node.org)
        for event in events:
            if event.header.origin == self.config.node.org:
                await self.nc.publish(subject, event.envelope())

    async def _on_control(self, msg: Msg) -> None:
        op = "unknown"
        try:
            request = self._verifier.check(msg.data, self.clock.now_ms())
        except ProtocolError as exc:
            self.metrics.control.labels(op=op, outcome="refused").inc()
            self.metrics.rejected.labels(reason=str(exc.reason)).inc()
            logger.warning("refused a control request: %s", exc.reason)
            return  # no answer to an unauthenticated request
        handler = self._handlers.get(request.op)
        if handler is None:
            reply = encode_reply(ControlReply(ok=False, error=f"unknown operation {request.op!r}"))
        elif self._stopping:
            reply = encode_reply(ControlReply(ok=False, error="the daemon is stopping"))
        else:
            op = request.op
            try:
                result = await handler(request.args)
                reply = encode_reply(ControlReply(ok=True), result)
                self.metrics.control.labels(op=op, outcome="ok").inc()
            except RrnError as exc:
                reply = encode_reply(ControlReply(ok=False, error=str(exc)))
                self.metrics.control.labels(op=op, outcome="error").inc()
        with contextlib.suppress(NatsError):
            await msg.respond(reply)


async def _connect(
    url: str, user: str | None, password: str | None, *, name: str, metrics: Metrics
) -> NatsClient:
    async def disconnected() -> None:
        metrics.nats_connected.set(0)
        logger.warning("disconnected from NATS")

    async def reconnected() -> None:
        metrics.nats_connected.set(1)
        logger.info("reconnected to NATS")

    async def error(exc: Exception) -> None:
        logger.warning("NATS error: %s", type(exc).__name__)

    try:
        nc = await nats.connect(
            url,
            user=user,
            password=password,
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=5,
            allow_reconnect=True,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=error,
        )
    except (TimeoutError, NatsError, OSError) as exc:
        raise ConfigError(f"cannot connect to NATS at {url}: {type(exc).__name__}") from exc
    metrics.nats_connected.set(1)
    return nc
