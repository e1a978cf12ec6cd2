"""The daemon's NATS: the embedded server it runs, and its connections to it.

Owns starting the embedded nats-server with a config rendered from config.toml
and the roster (a copy of the TLS key without its passphrase exists in the run
directory only while it runs), reloading it when the roster or config change,
and the connections the daemon keeps: its own (the node's account), the one
that keeps the integrators' stream (their account) and one in the server's
system account that reads its health. With [nats] embedded = false the first
two are one connection to the operator's server, and there is no third.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from nats.aio.client import Client as NatsClient
from prometheus_client import Gauge

from rrn.node.daemon.connection import close, connect
from rrn.node.home.config import Config
from rrn.node.home.integrators import load_integrators
from rrn.node.home.keyfiles import write_secret
from rrn.node.home.keys import Keys
from rrn.node.home.layout import Home
from rrn.node.home.tls import pinned_context
from rrn.node.natsd.conf import (
    DAEMON_USER,
    MIRROR_USER,
    STREAM_USER,
    SYS_USER,
    ServerLayout,
    render_server_conf,
)
from rrn.node.natsd.process import NatsServer, ServerSpec, open_nats_server
from rrn.node.store.network import Network

__all__ = ["NodeNats"]

logger = logging.getLogger(__name__)


class NodeNats:
    """The embedded server (if any) and the daemon's connections."""

    def __init__(self, home: Home, keys: Keys, stack: contextlib.AsyncExitStack) -> None:
        self.home = home
        self.keys = keys
        self._stack = stack
        self.server: NatsServer | None = None
        self.url = ""
        self._tls_key: Path | None = None
        #: Why the daemon stopped on its own: its embedded server died under it.
        self.failed: str | None = None

    @property
    def config(self) -> Config:
        return self.home.config

    async def open(self, network: Network, connected: Gauge) -> None:
        """Start the server (embedded) and connect; everything closes with the stack."""
        n = self.config.nats
        user: str | None = None
        tls = pinned_context(self.keys.tls_cert) if n.embedded and n.tls else None
        if n.embedded:
            self._tls_key = self._plain_tls_key()
            spec = ServerSpec(
                conf_text=self._server_conf(network),
                nats_dir=self.home.nats_dir,
                run_dir=self.home.run_dir,
                port=n.port,
                probe=(STREAM_USER, self.keys.nats_password),
                tls=tls,
            )
            self.server = await self._stack.enter_async_context(open_nats_server(spec))
            self.url, user = self.server.client_url, DAEMON_USER
        else:
            self.url = n.url
        password = self.keys.nats_password if user else None
        name = f"rrn-{self.config.node.org}"
        self.nc: NatsClient = await connect(
            self.url, user, password, name=name, connected=connected, tls=tls
        )
        self._stack.push_async_callback(close, self.nc, connected)
        #: Where the integrators' feeds are kept (FEEDS), and mirrored for them (INTEG).
        self.stream_nc = self.nc
        self.mirror_nc: NatsClient | None = None
        #: The server's system account, to read its health (embedded server only).
        self.sys_nc: NatsClient | None = None
        if n.embedded:
            self.stream_nc = await connect(
                self.url, STREAM_USER, password, name=f"{name}-stream", connected=None, tls=tls
            )
            self._stack.push_async_callback(close, self.stream_nc, None)
            self.mirror_nc = await connect(
                self.url, MIRROR_USER, password, name=f"{name}-mirror", connected=None, tls=tls
            )
            self._stack.push_async_callback(close, self.mirror_nc, None)
            self.sys_nc = await connect(
                self.url, SYS_USER, password, name=f"{name}-sys", connected=None, tls=tls
            )
            self._stack.push_async_callback(close, self.sys_nc, None)

    async def watch(self, stop: asyncio.Event) -> None:
        """Stop the daemon if its embedded server dies (killed, out of memory): a node
        whose server is gone hears nobody and is heard by nobody while its process
        looks alive. It exits with an error, and its supervisor (systemd's
        Restart=on-failure) starts it again, server and all."""
        server = self.server
        if server is None:
            return
        while True:
            await asyncio.sleep(1.0)  # a process exit has no event to wait on here
            if not server.alive():
                break
        self.failed = (
            f"the embedded nats-server (pid {server.pid}) exited under the daemon; "
            f"the node stopped so that it can be started again (see {server.log_path})"
        )
        logger.error("%s", self.failed)
        stop.set()

    def reload(self, network: Network, home: Home) -> None:
        """New links or settings: rewrite the config and have the server reload it."""
        self.home = home
        if self.server is not None:
            self.server.reload(self._server_conf(network))

    def _plain_tls_key(self) -> Path | None:
        """A copy of the TLS key without its passphrase, for nats-server, in the run
        directory until the daemon stops (None: the key at rest is not protected)."""
        if not self.keys.tls_key_protected():
            return None
        self.home.run_dir.mkdir(mode=0o700, exist_ok=True)
        path = self.home.run_dir / "tls.key"
        path.unlink(missing_ok=True)
        write_secret(path, self.keys.tls_key_plain())
        self._stack.callback(path.unlink, missing_ok=True)
        return path

    def _server_conf(self, network: Network) -> str:
        integrators = tuple(load_integrators(self.home.keys_dir))
        layout = ServerLayout(self.home.nats_dir, self.home.run_dir, self._tls_key, integrators)
        return render_server_conf(
            self.config, self.keys, net=network.net, roster=network.roster, layout=layout
        )
