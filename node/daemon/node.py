"""One organisation's daemon: `async with Node(home) as node: await node.run(stop)`.

Owns the node's lifecycle. `__aenter__` opens, in order, the store, the embedded
nats-server (configured from the roster), NATS, the integrators' feeds, the
ingest pipeline, peering, roster keeping, the control channel, /metrics and the
console, each on an AsyncExitStack so exit unwinds in reverse. `run()` owns one
TaskGroup; on stop it takes no more control requests or peer traffic, lets
queued events commit and returns for the stack to close the rest. SIGHUP
(`request_reload`) re-reads [federation] and [notify] and reloads the links.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from types import TracebackType
from typing import TYPE_CHECKING, Final

from rrn.node.control.channel import handler
from rrn.node.control.server import ControlServer
from rrn.node.daemon.health import Health
from rrn.node.daemon.loopwatch import LoopWatch
from rrn.node.daemon.metrics import Metrics, MetricsServer
from rrn.node.daemon.nats import NodeNats
from rrn.node.daemon.services import AlertServices
from rrn.node.daemon.status import rrn_version, status_of, write_daemon_file
from rrn.node.daemon.versions import announced, installed
from rrn.node.home.clock import Clock, daemon_clock
from rrn.node.home.config import load_config
from rrn.node.home.integrators import load_integrators
from rrn.node.home.keys import Keys, SealingKeys
from rrn.node.home.layout import Home
from rrn.node.home.lock import HomeLock
from rrn.node.integrations.hub import Integrations
from rrn.node.integrations.mirrors import drop_consumers
from rrn.node.membership.rosters import RosterKeeper
from rrn.node.ops.alerts import Api
from rrn.node.ops.defenders import DefendersApi
from rrn.node.ops.keys import KeysApi
from rrn.node.ops.members import MembersApi
from rrn.node.ops.types import READ_OPS, NoArgs, StatusInfo
from rrn.node.peering.peering import Peering
from rrn.node.pipeline.ingest import AlertChanges, Identity, Ingestor
from rrn.node.store.db import Store, open_store
from rrn.node.store.network import Network, load_network
from rrn.protocol.envelope import Event
from rrn.protocol.errors import ConfigError, RrnError
from rrn.protocol.kinds import Kind

if TYPE_CHECKING:  # the console (aiohttp, Jinja2, Babel) loads only where it is served
    from rrn.node.console.app import Console

__all__ = ["Node", "rrn_version"]

logger = logging.getLogger(__name__)

_STOP_GRACE_S: Final = 30.0


class Node:
    """A running rrn node."""

    def __init__(self, home: Home, *, clock: Clock | None = None, lock: HomeLock | None = None):
        self.home = home  # the lock is held for the daemon's whole life (node/home/lock.py)
        self._lock = lock or HomeLock(home.path, "rrn run")
        self.config = home.config
        self.clock = clock or daemon_clock()
        self._stack = contextlib.AsyncExitStack()
        self.started_ms = 0
        self.metrics_url: str | None = None
        self.console: Console | None = None
        self.console_url: str | None = None
        self._reload = asyncio.Event()

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
        self._stack.enter_context(self._lock)  # before anything of the home is touched
        self.started_ms, self.versions = self.clock.now_ms(), installed()  # rrn version
        self.keys: Keys = self.home.keys()
        #: The sealing keys every part opens with; a key rotation adds the new one.
        self.sealing = SealingKeys(self.keys.sealing)
        self.store: Store = await self._stack.enter_async_context(open_store(self.home.store_path))
        network = await load_network(self.store)
        me = self._identity(network)
        self.metrics = Metrics(
            version=rrn_version(), nats_server=self.versions.nats_server, org=self.config.node.org
        )
        self.metrics.roster(network.roster_version, len(network.roster.members))
        await self._open_nats(network)
        await self._open_pipeline(network, me)
        self._open_services()
        self.integrations = Integrations(
            home=self.home,
            store=self.store,
            nc=self.stream_nc,
            publisher=self.nc,
            mirror=self.natsd.mirror_nc,
            routing=self.escalator.routing,
            metrics=self.metrics.integrations,
            ingestor=self.ingestor,
        )
        await self.integrations.open()
        self.health = Health(
            home=self.home,
            ingestor=self.ingestor,
            peers=self.peering.peers,
            nats=self.natsd,
            metrics=self.metrics.health,
        )
        await self.peering.start()
        self._stack.push_async_callback(self.peering.stop)
        await self._open_control()
        if self.config.metrics.enabled:
            server = MetricsServer(
                self.metrics.registry,
                self.config.metrics.host,
                self.config.metrics.port,
                problems=self.health.problems,
            )
            self._stack.callback(server.close)
            self.metrics_url = server.url
        await self._open_console()
        self._write_daemon_file()

    async def _open_console(self) -> None:  # acting through the same operation handlers
        if not self.config.console.enabled:
            return
        from rrn.node.console.app import Console  # noqa: PLC0415 - see TYPE_CHECKING

        self.console = Console.of_home(self.home, self.handlers, self._seal_info)
        self.console_url = await self.console.start()
        self._stack.push_async_callback(self.console.close)

    def _seal_info(self) -> dict[str, object]:  # what seals details to us (transit.py)
        pub, net = self.sealing.current.public_key().public_bytes_raw(), self.ingestor.network.net
        return {"org": self.config.node.org, "net": net.hex(), "enc_pub": pub.hex()}

    async def _open_pipeline(self, network: Network, me: Identity) -> None:
        """The ingest pipeline, the conversation with peers, and roster keeping."""
        self.ingestor = Ingestor(
            store=self.store,
            network=network,
            me=me,
            metrics=self.metrics.ingest,
            clock=self.clock,
            config=self.config.ingest,
            on_commit=self._committed,
        )
        self.ingestor.on_dropped = self._dropped
        await self.ingestor.load()
        latest = network.keyring.latest(me.org)
        if latest is not None and latest > me.epoch:  # a rotation whose key is not here
            self.ingestor.own.lacks_key(latest)
        self.peering = Peering(
            nc=self.nc,
            ingestor=self.ingestor,
            store=self.store,
            config=self.config.federation,
            metrics=self.metrics.peers,
            clock=self.clock,
        )
        self.ingestor.on_fork = self.peering.broadcast_fork
        self.peering.software, self.peering.peers.tz_database = announced(self.versions)
        self.rosters = RosterKeeper(
            ingestor=self.ingestor, store=self.store, on_adopted=self._adopted
        )
        self.peering.on_roster = self.rosters.offered

    def _open_services(self) -> None:
        """What the node does about alerts on its own (node/daemon/services.py)."""
        self.alerting = AlertServices(
            nc=self.nc,
            ingestor=self.ingestor,
            store=self.store,
            peering=self.peering,
            metrics=self.metrics,
            clock=self.clock,
            config=self.config,
            sealing=self.sealing,
            home=self.home.path,
        )
        self.escalator = self.alerting.escalator
        self.ingestor.on_alerts = self._alerts_changed

    def _identity(self, network: Network) -> Identity:
        """Sign with the newest key epoch the roster, or a rotation in our chain, gives us."""
        org = self.config.node.org
        held = self.keys.signing_keys()
        for epoch, key in sorted(held.items(), reverse=True):
            if network.keyring.pub(org, epoch) == key.public_key().public_bytes_raw():
                return Identity(org, epoch, key, self.sealing, signing=held)
        raise ConfigError(
            f"the roster does not list any signing key of this home for {org}; "
            "is this the right home?"
        )

    async def _open_nats(self, network: Network) -> None:
        self.natsd = NodeNats(self.home, self.keys, self._stack)
        await self.natsd.open(network, self.metrics.nats_connected)
        self.nc, self.stream_nc = self.natsd.nc, self.natsd.stream_nc

    async def _open_control(self) -> None:
        api = Api(
            ingestor=self.ingestor,
            store=self.store,
            status=self.status,
            routing=self.escalator.routing,
            enc_key=self.sealing,
            drills=(self.alerting.drills.wake, self.escalator.ladder_of),
        )
        members = MembersApi(ingestor=self.ingestor, rosters=self.rosters, peering=self.peering)
        defenders = DefendersApi(
            store=self.store,
            org=self.config.node.org,
            net=self.ingestor.network.net,
            key=self.sealing,
            clock=self.clock,
        )
        keys = KeysApi(
            ingestor=self.ingestor,
            keys_dir=self.home.keys_dir,
            passphrase=self.keys.passphrase,
            sealing=self.sealing,
            on_rotated=self._write_daemon_file,
        )
        self.handlers = (
            api.handlers()
            | members.handlers()
            | defenders.handlers()
            | keys.handlers()
            | self.integrations.handlers()
            | {"integrator.reload": handler(NoArgs, self._integrators_changed)}
        )
        self.control = ControlServer(
            key=self.keys.control,
            handlers=self.handlers,
            reads=READ_OPS,
            journal=self.store.requests,
            registry=self.metrics.registry,
            rejected=self.metrics.ingest.rejected,
            clock=self.clock,
        )
        await self.control.start(self.nc, self.config.node.org)

    def _write_daemon_file(self) -> None:
        info = {
            "pid": os.getpid(),
            **self._seal_info(),
            "nats_url": self.natsd.url,
            "metrics_url": self.metrics_url,
            "console_url": self.console_url,
            "started_ms": self.started_ms,
            "version": rrn_version(),
        }
        self._stack.callback(write_daemon_file(self.home.daemon_file, info))

    def request_reload(self) -> None:
        """Re-read [federation] and [notify] from config.toml and reload the links (SIGHUP)."""
        self._reload.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then wind down within a grace period."""
        # What start-up loaded (modules, rules, the roster) lives as long as the daemon:
        # kept out of the collector's full passes, which would otherwise walk it each time.
        gc.freeze()
        async with asyncio.TaskGroup() as tg:
            tasks = [  # the loop's watch first: it then sees the others' first steps
                tg.create_task(LoopWatch(self.metrics.registry).run(), name="loopwatch"),
                tg.create_task(self.ingestor.run(), name="ingest"),
                tg.create_task(self.peering.run(), name="peering"),
                tg.create_task(self._reloads(), name="reload"),
                tg.create_task(self.rosters.run(), name="rosters"),
                *self.alerting.start(tg),
                tg.create_task(self._release_due(), name="release-due"),
                tg.create_task(self.health.run(), name="health"),
                tg.create_task(self.integrations.run(), name="integrations"),
                tg.create_task(self.natsd.watch(stop), name="nats-server"),
            ]
            await stop.wait()
            logger.info("stopping: no new requests; committing queued events")
            try:
                async with asyncio.timeout(_STOP_GRACE_S):
                    await self.control.drain()
                    await self.peering.stop()
                    await self.ingestor.flush()
            except TimeoutError:
                logger.error("stop grace period of %.0f s passed; stopping anyway", _STOP_GRACE_S)
            for task in tasks:
                task.cancel()

    async def _release_due(self) -> None:  # events held until the time they claim (limits.py)
        while True:
            await asyncio.sleep(10)
            if self.ingestor.chains.held.count:
                await self.ingestor.release_due_now()

    async def _reloads(self) -> None:
        while True:
            await self._reload.wait()
            self._reload.clear()
            try:
                fresh = load_config(self.home.config_path)
            except RrnError as exc:
                logger.error("reload refused, config unchanged: %s", exc)
                continue
            self.config = fresh
            self.home = Home(self.home.path, fresh)
            self.peering.reconfigure(fresh.federation)
            self.escalator.notifier.notify = fresh.notify
            self.natsd.reload(self.ingestor.network, self.home)
            logger.info("reloaded [federation] and [notify] settings")

    async def _integrators_changed(self, _: NoArgs) -> int:
        """`rrn integrator add|revoke`: the server learns or forgets the account."""
        self.natsd.reload(self.ingestor.network, self.home)
        names = {i.name for i in load_integrators(self.home.keys_dir)}
        await drop_consumers(self.natsd.mirror_nc, names)
        return len(names)

    # -- behaviour --------------------------------------------------------------

    async def _committed(self, events: list[tuple[Event, str, bool]]) -> None:
        self.health.committed()
        await self.peering.committed(events)
        await self.rosters.committed([(e, source) for e, source, _ in events])
        kinds = {e.header.kind for e, _, _ in events}
        if Kind.COVERAGE_DECLARED in kinds:
            self.alerting.coverage_changed()

    async def _dropped(self, ids: list[bytes]) -> None:
        """A tombstone deleted payloads: their copies in the integrators' stream (in the
        background) and in the answers kept for retried control requests go too."""
        self.integrations.erase(ids)
        await self.control.forget_answers()

    def _alerts_changed(self, changes: AlertChanges) -> None:
        self.alerting.alerts_changed(changes)
        self.integrations.alerts_changed(changes)
        if self.console is not None:
            self.console.changed()

    async def _adopted(self, network: Network, cert: bytes) -> None:
        """A new roster version: new links, and maybe a new key epoch for us."""
        self.metrics.roster(network.roster_version, len(network.roster.members))
        self.natsd.reload(network, self.home)
        await self.peering.broadcast_roster(cert)
        await self.integrations.roster(network.roster_version, cert)
        self.keys = self.home.keys()
        me = self._identity(network)
        if me.epoch != self.ingestor.me.epoch:
            logger.info("signing from now on with key epoch %d", me.epoch)
            self.ingestor.me = me
            self.ingestor.own.unblock("cut")

    def status(self) -> StatusInfo:
        """A snapshot of this node for `rrn status` (node/daemon/status.py)."""
        return status_of(self)
