"""Logging in and out, choosing one's password, language, zone and second factor.

Owns /login, /logout, /password and /account. A wrong name, a wrong password, a
disabled account and a wrong code all read the same ("wrong name, password or
code"); `max_failures` wrong attempts lock an account for `lockout_minutes`, and
an address may try ten times a minute whatever the name. Password hashing runs
in a thread, so a login never stalls the node.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import zoneinfo
from typing import Final

from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from rrn.node.console.context import Ctx, ctx, lang_of, now_ms, page, who
from rrn.node.console.people import (
    LANGUAGES,
    MIN_PASSWORD,
    Person,
    hash_password,
    totp_uri,
    verify_password,
)
from rrn.node.home.console import ConsoleConfig

__all__ = ["routes"]

logger = logging.getLogger(__name__)

#: A new TOTP secret shown to a session, until a code from it turns it on.
_PENDING: dict[str, str] = {}
#: Logins waiting for the password hash (one runs at a time) before the console says busy.
_MAX_WAITING: Final = 8


@functools.cache
def dummy_hash() -> str:
    """Compared against when the name is unknown, so timing does not tell names apart.
    Made once, off the event loop (hashing is slow by design): when the console
    starts (Console.start), or by the first login that needs it."""
    return hash_password("not anyone's password")


def _verify(password: str, phc: str | None) -> bool:
    return verify_password(password, phc or dummy_hash())


def client_address(request: web.Request, config: ConsoleConfig) -> str:
    """Who is asking: behind a reverse proxy (public_url set, connection from this host),
    the address the proxy appended to X-Forwarded-For; else the connection's."""
    remote = request.remote or "?"
    forwarded = request.headers.get("X-Forwarded-For", "")
    if config.public_url and forwarded and remote in ("127.0.0.1", "::1"):
        return forwarded.rsplit(",", 1)[-1].strip()
    return remote


def routes(app: web.Application) -> None:
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/password", password_form)
    app.router.add_post("/password", change_password)
    app.router.add_get("/account", account)
    app.router.add_post("/account", save_account)
    app.router.add_post("/account/totp", enrol_totp)


async def login_form(request: web.Request) -> web.Response:
    return page(request, "login.html", error=None, title=lang_of(request).gettext("Log in"))


async def login(request: web.Request) -> web.Response:
    c = ctx(request)
    lang = lang_of(request)
    address = client_address(request, c.config)
    if not c.deps.throttle.allow(address):
        msg = lang.gettext("Too many attempts from here: wait a minute.")
        return page(request, "login.html", error=msg, status=429)
    form = await read_form(request)
    name = str(form.get("name", "")).strip().lower()[:64]
    person, ok = await _checked(request, name, str(form.get("password", "")), address)
    if ok and person is not None and person.totp:
        ok = c.deps.people.check_totp(name, str(form.get("code", "")).strip(), time.time())
    if ok and c.deps.people.locked(name, address, now_ms()):
        ok = False  # locked by attempts that ran while this one was checked
    if not ok or person is None:
        _failed(request, name, address)
        msg = lang.gettext(
            "Wrong name, password or code. After %(count)d wrong attempts, logins from "
            "here wait %(minutes)d minutes (an admin can lift it: rrn user reset).",
            count=c.config.max_failures,
            minutes=round(c.config.lockout_minutes),
        )
        return page(request, "login.html", error=msg, status=401)
    c.deps.people.succeeded(name, address)
    token, _ = c.deps.sessions.start(name, now_ms())
    c.deps.sessions.sweep(now_ms())
    logger.info("console: %s logged in", name)
    response = web.HTTPSeeOther("/password" if person.must_change else "/")
    _set_cookie(response, c, token)
    raise response


async def _checked(
    request: web.Request, name: str, password: str, address: str
) -> tuple[Person | None, bool]:
    """The person and whether the password is theirs. A locked, disabled or unknown login
    costs the same hashing as a real one and reads the same to the asker."""
    c = ctx(request)
    people = c.deps.people
    person = people.get(name)
    usable = person is not None and not person.disabled
    if usable and people.locked(name, address, now_ms()):
        usable = False
    if c.deps.hashing >= _MAX_WAITING:
        raise web.HTTPServiceUnavailable(text="the console is busy: try again in a moment")
    c.deps.hashing += 1
    try:
        phc = people.password_hash(name) if usable else None
        ok = await asyncio.to_thread(_verify, password, phc)
    finally:
        c.deps.hashing -= 1
    return person, ok and phc is not None


def _failed(request: web.Request, name: str, address: str) -> None:
    c = ctx(request)
    person = c.deps.people.get(name)
    if person is None or person.disabled or c.deps.people.locked(name, address, now_ms()):
        return
    lock_ms = int(c.config.lockout_minutes * 60000)
    if c.deps.people.failed(name, address, now_ms(), c.config.max_failures, lock_ms):
        logger.warning("console: logins of %s wait after wrong attempts", name)


def _set_cookie(response: web.StreamResponse, c: Ctx, token: str) -> None:
    secure = bool(c.config.tls_cert or c.config.public_url)
    response.set_cookie(
        c.cookie_name(secure),
        token,
        httponly=True,
        secure=secure,
        samesite="Strict",
        path="/",  # no Max-Age: the browser forgets it when closed; the node ends it anyway
    )


async def read_form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | FileField]:
    """The posted form, or 400 for one that does not decode (bad bytes, bad charset)."""
    try:
        return await request.post()
    except (UnicodeDecodeError, LookupError, ValueError) as exc:
        raise web.HTTPBadRequest(text="the form could not be read") from exc


async def logout(request: web.Request) -> web.Response:
    c = ctx(request)
    session, person = who(request)
    c.deps.sessions.end(session.token_hash)
    logger.info("console: %s logged out", person.name)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(c.cookie_name(bool(c.config.tls_cert or c.config.public_url)), path="/")
    raise response


async def password_form(request: web.Request) -> web.Response:
    return page(
        request,
        "password.html",
        error=None,
        min_length=MIN_PASSWORD,
        title=lang_of(request).gettext("Choose your password"),
    )


async def change_password(request: web.Request) -> web.Response:
    c = ctx(request)
    _, person = who(request)
    lang = lang_of(request)
    form = await read_form(request)
    current, new = str(form.get("current", "")), str(form.get("new", ""))
    address = client_address(request, c.config)
    error = None
    if not (await _checked(request, person.name, current, address))[1]:
        _failed(request, person.name, address)  # a guesser at an unattended browser
        error = lang.gettext("The current password is not right.")
    elif len(new) < MIN_PASSWORD:
        error = lang.gettext("A password needs at least %(count)d characters.", count=MIN_PASSWORD)
    elif new != str(form.get("again", "")):
        error = lang.gettext("The two new passwords differ.")
    elif new == current:
        error = lang.gettext("Choose a password other than the one-time password.")
    if error:
        return page(request, "password.html", error=error, min_length=MIN_PASSWORD, status=400)
    c.deps.people.set_password(person.name, await asyncio.to_thread(hash_password, new))
    c.deps.people.end_sessions(person.name)  # other browsers log in again
    token, _ = c.deps.sessions.start(person.name, now_ms())
    logger.info("console: %s chose a new password", person.name)
    response = web.HTTPSeeOther("/")
    _set_cookie(response, c, token)
    raise response


async def account(request: web.Request) -> web.Response:
    return _account_page(request, secret=None, error=None)


def _account_page(
    request: web.Request, *, secret: str | None, error: str | None, status: int = 200
) -> web.Response:
    c = ctx(request)
    _, person = who(request)
    uri = totp_uri(secret, person.name, f"rrn {c.deps.org}") if secret else None
    return page(
        request,
        "account.html",
        languages=LANGUAGES,
        zones=sorted(zoneinfo.available_timezones()),
        secret=secret,
        uri=uri,
        error=error,
        status=status,
    )


async def save_account(request: web.Request) -> web.Response:
    c = ctx(request)
    _, person = who(request)
    form = await request.post()
    lang, tz = str(form.get("lang", "en")), str(form.get("tz", ""))
    if lang not in LANGUAGES or (tz and tz not in zoneinfo.available_timezones()):
        raise web.HTTPBadRequest(text="unknown language or time zone")
    c.deps.people.set_prefs(person.name, lang, tz)
    raise web.HTTPSeeOther("/account")


async def enrol_totp(request: web.Request) -> web.Response:
    """Step one shows a new secret (kept in this session only); step two, with the
    person's password and a code from it, turns it on. Turning it off needs the
    password too: a session alone (an unattended browser) cannot change it."""
    c = ctx(request)
    session, person = who(request)
    form = await read_form(request)
    lang = lang_of(request)
    pending = _PENDING.get(session.token_hash)
    if not form.get("password"):
        if form.get("off") or person.totp:
            raise web.HTTPSeeOther("/account")
        _PENDING[session.token_hash] = secret = c.deps.people.new_totp_secret()
        while len(_PENDING) > 1000:
            _PENDING.pop(next(iter(_PENDING)))
        return _account_page(request, secret=secret, error=None)
    address = client_address(request, c.config)
    if not (await _checked(request, person.name, str(form.get("password")), address))[1]:
        _failed(request, person.name, address)
        error = lang.gettext("The current password is not right.")
        return _account_page(request, secret=pending, error=error, status=400)
    if form.get("off") and person.totp:
        c.deps.people.set_totp(person.name, None)
        c.deps.sessions.record(person.name, "second factor off", None, now_ms())
        raise web.HTTPSeeOther("/account")
    code = str(form.get("code", ""))
    if pending is None or not c.deps.people.check_totp(person.name, code, time.time(), pending):
        error = lang.gettext("That code does not match: try the next one.")
        return _account_page(request, secret=pending, error=error, status=400)
    del _PENDING[session.token_hash]
    c.deps.people.set_totp(person.name, pending)
    c.deps.sessions.record(person.name, "second factor on", None, now_ms())
    raise web.HTTPSeeOther("/account")
