"""Logging in and out, choosing one's password, language, zone and second factor.

Owns /login, /logout, /password and /account. A wrong name, a wrong password, a
disabled account and a wrong code all read the same ("wrong name, password or
code"); `max_failures` wrong attempts lock an account for `lockout_minutes`, and
an address may try ten times a minute whatever the name. Password hashing runs
in a thread, so a login never stalls the node.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zoneinfo
from typing import Final

from aiohttp import web

from rrn.node.console.context import ctx, lang_of, now_ms, page, who
from rrn.node.console.people import (
    LANGUAGES,
    MIN_PASSWORD,
    hash_password,
    totp_uri,
    verify_password,
)
from rrn.node.home.console import ConsoleConfig

__all__ = ["routes"]

logger = logging.getLogger(__name__)

#: Compared against when the name is unknown, so timing does not tell names apart.
_DUMMY: Final = hash_password("not anyone's password")


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
    if not c.deps.throttle.allow(client_address(request, c.config)):
        msg = lang.gettext("Too many attempts from here: wait a minute.")
        return page(request, "login.html", error=msg, status=429)
    form = await request.post()
    name = str(form.get("name", "")).strip().lower()
    password = str(form.get("password", ""))
    code = str(form.get("code", "")).strip()
    people, now = c.deps.people, now_ms()
    person = people.get(name)
    if person is not None and person.locked_until_ms > now:
        minutes = max(1, round((person.locked_until_ms - now) / 60000))
        msg = lang.gettext(
            "Too many wrong attempts: this login is locked for %(minutes)d minutes, "
            "or until an admin resets it.",
            minutes=minutes,
        )
        return page(request, "login.html", error=msg, status=429)
    phc = people.password_hash(name) if person and not person.disabled else None
    ok = await asyncio.to_thread(verify_password, password, phc or _DUMMY)
    ok = ok and phc is not None
    if ok and person is not None and person.totp:
        ok = people.check_totp(name, code, time.time())
    if not ok or person is None:
        if person is not None and not person.disabled:
            lock_ms = int(c.config.lockout_minutes * 60000)
            if people.failed(name, now, c.config.max_failures, lock_ms):
                logger.warning("console: login of %s locked after wrong attempts", name)
        return page(
            request, "login.html", error=lang.gettext("Wrong name, password or code."), status=401
        )
    people.succeeded(name)
    token, _ = c.deps.sessions.start(name, now)
    c.deps.sessions.sweep(now)
    logger.info("console: %s logged in", name)
    response = web.HTTPSeeOther("/password" if person.must_change else "/")
    secure = bool(c.config.tls_cert or c.config.public_url)
    response.set_cookie(
        c.cookie_name(secure),
        token,
        httponly=True,
        secure=secure,
        samesite="Strict",
        path="/",  # no Max-Age: the browser forgets it when closed; the node ends it anyway
    )
    raise response


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
    session, person = who(request)
    lang = lang_of(request)
    form = await request.post()
    current, new = str(form.get("current", "")), str(form.get("new", ""))
    error = None
    if not await asyncio.to_thread(
        verify_password, current, c.deps.people.password_hash(person.name) or _DUMMY
    ):
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
    secure = bool(c.config.tls_cert or c.config.public_url)
    response.set_cookie(
        c.cookie_name(secure), token, httponly=True, secure=secure, samesite="Strict", path="/"
    )
    del session
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
    """Step one shows a new secret; step two turns it on once a code from it checks out."""
    c = ctx(request)
    _, person = who(request)
    form = await request.post()
    if form.get("off") and person.totp:
        c.deps.people.set_totp(person.name, None)
        c.deps.sessions.record(person.name, "second factor off", None, now_ms())
        raise web.HTTPSeeOther("/account")
    secret = str(form.get("secret", ""))
    if not secret:
        return _account_page(request, secret=c.deps.people.new_totp_secret(), error=None)
    if not c.deps.people.check_totp(person.name, str(form.get("code", "")), time.time(), secret):
        error = lang_of(request).gettext("That code does not match: try the next one.")
        return _account_page(request, secret=secret, error=error, status=400)
    c.deps.people.set_totp(person.name, secret)
    c.deps.sessions.record(person.name, "second factor on", None, now_ms())
    raise web.HTTPSeeOther("/account")
