"""The console's web server, in the daemon's own event loop (aiohttp).

Owns the server's lifecycle, its security middleware and the request context:
every response gets a strict Content-Security-Policy (scripts, styles and
everything else from the node itself, nothing inline) and no-store caching;
every page but login needs a session; every POST needs the session's CSRF
token and, when the browser says where it comes from, this console's origin.
No access log: the only log lines are the console's own, and they never carry
what a page showed.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Final

from aiohttp import web

from rrn.node.console import actions, auth, collective, pages
from rrn.node.console.context import CTX, SESSION, Ctx, Deps, Operations
from rrn.node.console.live import Live
from rrn.node.console.people import open_db
from rrn.node.home.console import ConsoleConfig
from rrn.node.home.layout import Home
from rrn.protocol.errors import ConfigError

__all__ = ["Console"]

logger = logging.getLogger(__name__)

STATIC: Final = Path(__file__).parent / "static"
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: browsers then send "Origin: null" on forms, and the origin check
    # below needs the real one. Nothing leaves for other sites either way.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
#: Pages reachable without a session.
_OPEN: Final = ("/login", "/static/", "/healthz")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OpHandler = Callable[[bytes], Awaitable[object]]


class Console:
    """The console of one node: `url = await console.start()`, `await console.close()`."""

    def __init__(self, deps: Deps, config: ConsoleConfig, home: Path):
        self.deps = deps
        self.config = config
        self._home = home
        self.live = Live(still=self._session_lives)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._headers, self._session, self._csrf], client_max_size=256 * 1024
        )
        app[CTX] = Ctx(deps=self.deps, config=self.config, live=self.live)
        auth.routes(app)
        pages.routes(app)
        collective.routes(app)  # before actions': /alerts/{alert}/propose is more specific
        actions.routes(app)
        app.router.add_get("/live", self.live.stream)
        app.router.add_static("/static/", STATIC, follow_symlinks=False)
        return app

    @classmethod
    def of_home(
        cls,
        home: Home,
        handlers: Mapping[str, OpHandler],
        seal_info: Callable[[], dict[str, object]],
    ) -> Console:
        """The console of a node's home, acting through the node's operation handlers."""
        c, node = home.config.console, home.config.node
        deps = Deps(
            ops=Operations(handlers),
            db=open_db(home.console_db),
            org=node.org,
            name=node.name,
            tz=node.tz,
            seal_info=seal_info,
            session_idle_ms=int(c.session_idle_minutes * 60_000),
            session_max_ms=int(c.session_max_hours * 3_600_000),
        )
        return cls(deps, c, home.path)

    async def start(self) -> str:
        c = self.config
        await asyncio.to_thread(auth.dummy_hash)
        context = self._tls()
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, c.host, c.port, ssl_context=context)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(
                f"console port {c.port} on {c.host} is already in use or not available "
                f"({exc.strerror}): set [console] port in config.toml"
            ) from exc
        host, port = self._runner.addresses[0][:2]
        scheme = "https" if context else "http"
        self.url = c.public_url or f"{scheme}://{_bracket(str(host))}:{port}/"
        logger.info("console at %s", self.url)
        return self.url

    def _tls(self) -> ssl.SSLContext | None:
        c = self.config
        if not c.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self._home / c.tls_cert, self._home / c.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"[console] cannot load tls_cert/tls_key: {exc}") from exc
        return context

    def _session_lives(self, token_hash: str) -> bool:
        """Whether a live stream's session still holds (ended, expired, person disabled)."""
        return self.deps.sessions.alive(token_hash, int(time.time() * 1000), self.deps.people)

    async def close(self) -> None:
        self.live.close()
        self.deps.db.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def changed(self) -> None:
        """Alerts changed: open pages refresh (node/console/live.py)."""
        self.live.changed()

    # -- middleware ---------------------------------------------------------------

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        if self.secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        static = request.path.startswith("/static/")
        response.headers["Cache-Control"] = "max-age=3600" if static else "no-store"
        if isinstance(response, web.HTTPException):
            raise response
        return response

    def _known_host(self, host: str) -> bool:
        """Whether the browser asked for this console by one of its own names."""
        c = self.config
        if c.public_url:
            return host == urllib.parse.urlsplit(c.public_url).netloc
        if _unspecified(c.host) or self._runner is None:  # any name: TLS vouches for it
            return True
        port = self._runner.addresses[0][1]
        names = {c.host, "localhost", "127.0.0.1", "[::1]", f"[{c.host}]"}
        return host in {f"{n}:{port}" for n in names}

    @property
    def secure(self) -> bool:
        return bool(self.config.tls_cert or self.config.public_url)

    @web.middleware
    async def _session(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._known_host(request.host):  # a DNS-rebinding page names its own host
            raise web.HTTPBadRequest(text="this console is not served under that name")
        ctx = request.app[CTX]
        token = request.cookies.get(ctx.cookie_name(self.secure))
        now_ms = int(time.time() * 1000)
        session = ctx.deps.sessions.find(token, now_ms) if token else None
        person = ctx.deps.people.get(session.name) if session else None
        if session is not None and (person is None or person.disabled):
            session = person = None
        request[SESSION] = (session, person)
        if request.path.startswith(_OPEN):
            return await handler(request)
        if session is None or person is None:
            if request.method == "GET" and request.path != "/live":
                raise web.HTTPSeeOther("/login")
            raise web.HTTPUnauthorized(text="your session has ended: log in again")
        if person.must_change and request.path not in ("/password", "/logout"):
            raise web.HTTPSeeOther("/password")
        return await handler(request)

    @web.middleware
    async def _csrf(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return await handler(request)
        origin = request.headers.get("Origin")
        if origin is not None and origin != _origin_of(request, self.config):
            logger.warning("console: a form from another origin was refused")
            raise web.HTTPForbidden(text="refused: this form did not come from this console")
        if request.path == "/login":
            return await handler(request)
        session, _ = request[SESSION]
        form = await auth.read_form(request)
        token = form.get("csrf")
        if (
            session is None
            or not isinstance(token, str)
            or not hmac.compare_digest(token.encode(), session.csrf.encode())
        ):
            logger.warning("console: a form without this session's token was refused")
            raise web.HTTPForbidden(text="refused: the form's security token is missing or old")
        return await handler(request)


def _origin_of(request: web.Request, config: ConsoleConfig) -> str:
    if config.public_url:
        return config.public_url.rstrip("/")
    return f"{request.scheme}://{request.host}"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
