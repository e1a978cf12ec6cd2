"""What every console handler needs: the node's operations, the people, and rendering.

Owns `Deps` (what the daemon hands the console), `Operations` (the one way the
console acts: the same operation handlers the CLI's control channel calls, with
arguments and results through the same msgpack types), role permissions, and
`page()`, which renders a template in the person's language and zone.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec
from aiohttp import web

from rrn.node.console.i18n import Language, formatter, languages, short, when
from rrn.node.console.people import People, Person, Role
from rrn.node.console.sessions import Session, Sessions, Throttle
from rrn.node.console.vocab import LABELS, MEMBER_ROLES
from rrn.node.home.console import ConsoleConfig

if TYPE_CHECKING:
    from rrn.node.console.live import Live

__all__ = ["CTX", "SESSION", "Ctx", "Deps", "Operations", "may", "page"]

T = TypeVar("T")
SESSION: Final = web.RequestKey("rrn.session", tuple)  # (Session | None, Person | None)

#: What each console role may do (docs/CONSOLE.md, "Who may do what").
_MAY: Final[dict[str, frozenset[Role]]] = {
    "raise": frozenset({Role.ADMIN, Role.COORDINATOR}),
    "details": frozenset({Role.ADMIN, Role.COORDINATOR, Role.RESPONDER}),
    "respond": frozenset({Role.ADMIN, Role.COORDINATOR, Role.RESPONDER}),
    "originate": frozenset({Role.ADMIN, Role.COORDINATOR}),
    "pledge": frozenset({Role.ADMIN, Role.COORDINATOR, Role.LIAISON}),
    # Propose a collective action and read its text (joining one is a pledge).
    "collective": frozenset({Role.ADMIN, Role.COORDINATOR, Role.RESPONDER, Role.LIAISON}),
    "audit": frozenset({Role.ADMIN}),
}


def may(person: Person | None, what: str) -> bool:
    return person is not None and person.role in _MAY[what]


class Operations:
    """The node's operations, called exactly as the control channel calls them."""

    def __init__(self, handlers: Mapping[str, Callable[[bytes], Awaitable[object]]]):
        self._handlers = handlers

    async def call(self, op: str, args: object, result: type[T]) -> T:
        answer = await self._handlers[op](msgspec.msgpack.encode(args))
        return msgspec.msgpack.decode(msgspec.msgpack.encode(answer), type=result)


@dataclass
class Deps:
    """What the daemon gives its console."""

    ops: Operations
    db: sqlite3.Connection
    org: str
    name: str
    tz: str
    #: What transit.seal_request needs to seal details to this node (its run file's keys).
    seal_info: Callable[[], dict[str, object]]
    session_idle_ms: int = 12 * 3600 * 1000
    session_max_ms: int = 24 * 3600 * 1000
    people: People = field(init=False)
    sessions: Sessions = field(init=False)
    throttle: Throttle = field(default_factory=Throttle)
    #: Logins waiting for, or in, a password hash.
    hashing: int = 0

    def __post_init__(self) -> None:
        self.people = People(self.db)
        self.sessions = Sessions(self.db, idle_ms=self.session_idle_ms, max_ms=self.session_max_ms)


@dataclass
class Ctx:
    deps: Deps
    config: ConsoleConfig
    live: Live

    @staticmethod
    def cookie_name(secure: bool) -> str:
        return "__Host-rrn" if secure else "rrn"


CTX: Final = web.AppKey("rrn.console", Ctx)


def ctx(request: web.Request) -> Ctx:
    return request.app[CTX]


def who(request: web.Request) -> tuple[Session, Person]:
    session, person = request[SESSION]
    assert session is not None and person is not None
    return session, person


def lang_of(request: web.Request) -> Language:
    _, person = request[SESSION]
    langs = languages()
    if person is not None:
        return langs.get(person.lang, langs["en"])
    accepted = request.headers.get("Accept-Language", "")
    for part in accepted.split(","):
        code = part.split(";")[0].strip()[:2].lower()
        if code in langs:
            return langs[code]
    return langs["en"]


def now_ms() -> int:
    return int(time.time() * 1000)


def page(
    request: web.Request, template: str, *, status: int = 200, title: str = "", **context: Any
) -> web.Response:
    """A page in the reader's language and zone."""
    c = ctx(request)
    session, person = request[SESSION]
    lang = lang_of(request)
    tz = (person.tz if person and person.tz else "") or c.deps.tz
    html = lang.render(
        template,
        title=title,
        person=person,
        csrf=session.csrf if session else "",
        node_name=c.deps.name,
        org=c.deps.org,
        tz=tz,
        now_ms=now_ms(),
        at=formatter(lang, tz, now_ms()),
        at_zone=lambda ms, zone: when(lang, ms, zone),
        at_short=lambda ms: short(lang, ms, tz),
        may=lambda what: may(person, what),
        country=lang.country,
        label=lambda token: lang.gettext(LABELS[token]) if token in LABELS else token,
        member_role=lambda t: lang.gettext(MEMBER_ROLES[t]) if t in MEMBER_ROLES else t,
        language=lang.language,
        path=request.path,
        # A page that answers a form never refreshes itself: that would send the form again.
        live=request.method == "GET" and person is not None and not person.must_change,
        **context,
    )
    return web.Response(text=html, content_type="text/html", status=status)
