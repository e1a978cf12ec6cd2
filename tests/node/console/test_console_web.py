"""The console's web layer on a real socket and a real console.db: headers, sessions,
TLS cookies, the second factor, throttling and roles.

The node's operations are a fake at our own seam (`Operations`' handlers): these
tests are about what the web layer lets through, not about alerts, which
tests/node/console/test_console_browser.py drives on a real network.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from rrn.node.console.app import CSP, Console
from rrn.node.console.context import Deps, Operations
from rrn.node.console.people import People, Role, hash_password, open_db, totp_code
from rrn.node.home.console import ConsoleConfig

PASSWORD = "twelve chars at least"


def _handlers() -> dict[str, Callable[[bytes], Awaitable[object]]]:
    async def no_alerts(_: bytes) -> object:
        return []

    return {"alert.list": no_alerts}


async def _console(
    tmp: Path,
    config: ConsoleConfig,
    *,
    session_idle_ms: int = 3_600_000,
    session_max_ms: int = 7_200_000,
) -> Console:
    console = Console(
        Deps(
            ops=Operations(_handlers()),
            db=open_db(tmp / "console.db"),
            org="lima-hr",
            name="Lima",
            tz="America/Lima",
            seal_info=dict,
            session_idle_ms=session_idle_ms,
            session_max_ms=session_max_ms,
        ),
        config,
        tmp,
    )
    await console.start()
    return console


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    c = await _console(tmp_path, ConsoleConfig(port=0))
    try:
        yield c
    finally:
        await c.close()


def _client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def _person(c: Console, name: str, role: Role) -> str:
    """A person who has chosen their password already."""
    people = c.deps.people
    people.add(name, role, int(time.time() * 1000))
    people.set_password(name, hash_password(PASSWORD))
    return name


async def _login(s: aiohttp.ClientSession, url: str, name: str, code: str = "") -> str:
    """Log in; the CSRF token of the page it lands on."""
    r = await s.post(url + "login", data={"name": name, "password": PASSWORD, "code": code})
    text = await r.text()
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert r.status == 200 and found, text[:500]
    return found[1]


async def test_every_page_carries_the_security_headers(console: Console) -> None:
    async with _client() as s:
        r = await s.get(console.url + "login")
        assert r.headers["Content-Security-Policy"] == CSP
        assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Cache-Control"] == "no-store"
        r = await s.get(console.url + "static/console.js")
        assert r.status == 200 and r.headers["Cache-Control"] == "max-age=3600"
        assert r.headers["Content-Security-Policy"] == CSP
        for sneaky in ("static/..%2Fpeople.py", "static/%2e%2e/people.py"):
            r = await s.get(URL(console.url + sneaky, encoded=True), allow_redirects=False)
            assert r.status in (303, 403, 404) and "import" not in await r.text()


async def test_a_session_ends_after_idle_time_and_after_its_maximum(tmp_path: Path) -> None:
    c = await _console(tmp_path, ConsoleConfig(port=0), session_idle_ms=600, session_max_ms=60_000)
    try:
        _person(c, "ana", Role.RESPONDER)
        async with _client() as s:
            await _login(s, c.url, "ana")
            for _ in range(3):  # each request keeps it alive (seen at most every 10 s)
                assert (await s.get(c.url)).url.path == "/"
            await asyncio.sleep(1.0)
            r = await s.get(c.url)
            assert r.url.path == "/login", "an idle session lived on"
            r = await s.get(c.url + "live")
            assert r.status == 401
    finally:
        await c.close()
    c = await _console(tmp_path, ConsoleConfig(port=0), session_idle_ms=60_000, session_max_ms=800)
    try:
        async with _client() as s:
            await _login(s, c.url, "ana")
            await asyncio.sleep(1.0)
            assert (await s.get(c.url)).url.path == "/login", "a session outlived its maximum"
    finally:
        await c.close()


async def test_a_one_time_password_must_be_replaced_first(console: Console) -> None:
    once = console.deps.people.add("ines", Role.ADMIN, int(time.time() * 1000))
    async with _client() as s:
        r = await s.post(console.url + "login", data={"name": "ines", "password": once})
        assert r.url.path == "/password"
        assert (await s.get(console.url + "record")).url.path == "/password"
        csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())
        assert csrf
        short = {"csrf": csrf[1], "current": once, "new": "short", "again": "short"}
        r = await s.post(console.url + "password", data=short)
        assert r.status == 400 and "12" in await r.text()
        good = {"csrf": csrf[1], "current": once, "new": PASSWORD, "again": PASSWORD}
        r = await s.post(console.url + "password", data=good)
        assert r.url.path == "/"
        assert (await s.get(console.url + "record")).status == 200


async def test_tls_marks_the_cookie_secure_and_host_only(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    c = await _console(tmp_path, ConsoleConfig(port=0, tls_cert=cert.name, tls_key=key.name))
    try:
        assert c.url.startswith("https://")
        _person(c, "ana", Role.RESPONDER)
        trust = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as s:
            r = await s.post(
                c.url + "login",
                data={"name": "ana", "password": PASSWORD},
                ssl=trust,
                allow_redirects=False,
            )
            cookie = r.headers["Set-Cookie"]
            assert cookie.startswith("__Host-rrn=")
            for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
                assert flag in cookie, cookie
            assert "Domain" not in cookie
            assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        await c.close()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "console")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "console.crt", tmp / "console.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_a_second_factor_is_asked_and_a_code_serves_once(console: Console) -> None:
    _person(console, "ana", Role.COORDINATOR)
    async with _client() as s:
        csrf = await _login(s, console.url, "ana")
        r = await s.post(console.url + "account/totp", data={"csrf": csrf})
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', await r.text())
        assert secret, "no secret shown"
        code = totp_code(secret[1], time.time())
        for wrong in (
            {"csrf": csrf, "code": "000000", "password": PASSWORD},  # not its code
            {"csrf": csrf, "code": code, "password": "not the password"},  # a session alone
        ):
            assert (await s.post(console.url + "account/totp", data=wrong)).status == 400
        ok = {"csrf": csrf, "code": code, "password": PASSWORD}
        assert (await s.post(console.url + "account/totp", data=ok)).url.path == "/account"
        off = {"csrf": csrf, "off": "1", "password": "guess"}
        assert (await s.post(console.url + "account/totp", data=off)).status == 400
        person = console.deps.people.get("ana")
        assert person is not None and person.totp, "a session without the password turned it off"
    async with _client() as s:
        r = await s.post(console.url + "login", data={"name": "ana", "password": PASSWORD})
        assert r.status == 401, "no code, yet logged in"
        r = await s.post(
            console.url + "login", data={"name": "ana", "password": PASSWORD, "code": code}
        )
        assert r.status == 401, "a code used to turn it on served again"
    step = 30 * (int(time.time()) // 30 + 1)  # the next code, as the phone will show it
    async with _client() as s:
        r = await s.post(
            console.url + "login",
            data={"name": "ana", "password": PASSWORD, "code": totp_code(secret[1], step)},
        )
        assert r.status == 200 and r.url.path == "/"


async def test_an_address_gets_ten_tries_a_minute(console: Console) -> None:
    async with _client() as s:
        answers = [
            (await s.post(console.url + "login", data={"name": f"x{i}", "password": "no"})).status
            for i in range(11)
        ]
    assert answers[:10] == [401] * 10 and answers[10] == 429


async def test_disabling_someone_ends_their_session(console: Console) -> None:
    _person(console, "ana", Role.RESPONDER)
    async with _client() as s:
        await _login(s, console.url, "ana")
        console.deps.people.set_disabled("ana", True)  # as `rrn user disable ana`
        assert (await s.get(console.url)).url.path == "/login"
        r = await s.post(console.url + "login", data={"name": "ana", "password": PASSWORD})
        assert r.status == 401


@pytest.mark.parametrize(
    ("role", "path", "allowed"),
    [
        (Role.VIEWER, "raise", False),
        (Role.RESPONDER, "raise", False),
        (Role.RESPONDER, "record", False),
        (Role.COORDINATOR, "record", False),
        (Role.ADMIN, "record", True),
    ],
)
async def test_roles_open_only_their_pages(
    console: Console, role: Role, path: str, allowed: bool
) -> None:
    _person(console, "p", role)
    async with _client() as s:
        await _login(s, console.url, "p")
        r = await s.get(console.url + path)
        assert (r.status == 200) is allowed and (r.status == 403) is not allowed


async def test_live_pages_hear_of_changes_and_nothing_else(console: Console) -> None:
    _person(console, "ana", Role.VIEWER)
    async with _client() as s:
        await _login(s, console.url, "ana")
        async with s.get(console.url + "live") as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            first = await stream.content.readuntil(b"\n\n")
            assert first.startswith(b"retry:")
            console.changed()
            console.changed()  # a burst is one refresh
            event = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)
            assert event == b"event: change\ndata: {}\n\n"


def test_operations_cross_the_same_types_as_the_control_channel() -> None:
    class Args(msgspec.Struct):
        n: int

    seen: list[bytes] = []

    async def echo(data: bytes) -> object:
        seen.append(data)
        return {"n": msgspec.msgpack.decode(data, type=Args).n + 1}

    got = asyncio.run(Operations({"x": echo}).call("x", Args(1), Args))
    assert got == Args(2) and seen == [msgspec.msgpack.encode(Args(1))]


def test_people_keep_argon2id_hashes_and_lock_after_failures(tmp_path: Path) -> None:
    people = People(open_db(tmp_path / "console.db"))
    once = people.add("ana", Role.RESPONDER, 0)
    phc = people.password_hash("ana")
    assert phc and phc.startswith("$argon2id$v=19$m=65536,t=3,p=1$") and once not in phc
    assert (tmp_path / "console.db").stat().st_mode & 0o777 == 0o600
    locks = [people.failed("ana", "203.0.113.5", 1000, 3, 60_000) for _ in range(3)]
    assert locks == [False, False, True]
    person = people.get("ana")
    assert person and person.locked_until_ms == 61_000
    assert people.locked("ana", "203.0.113.5", 2000)
    assert not people.locked("ana", "198.51.100.7", 2000), "one address locked everyone out"
    for i in range(9):  # four times the limit from many addresses locks the account itself
        people.failed("ana", f"198.51.100.{i}", 1000, 3, 60_000)
    assert people.locked("ana", "192.0.2.1", 2000)
    people.reset("ana", totp=False)
    person = people.get("ana")
    assert person and person.locked_until_ms == 0 and person.must_change


async def test_behind_a_proxy_each_client_is_throttled_alone(tmp_path: Path) -> None:
    proxied = await _console(tmp_path, ConsoleConfig(port=0, public_url="https://rrn.example"))
    try:
        async with _client() as s:

            async def attempt(client: str) -> int:
                r = await s.post(
                    _local(proxied) + "login",
                    data={"name": "x", "password": "no"},
                    headers={"X-Forwarded-For": f"198.51.100.9, {client}", "Host": "rrn.example"},
                )
                return r.status

            assert [await attempt("203.0.113.5") for _ in range(11)][-1] == 429
            assert await attempt("203.0.113.6") == 401, "one client's tries locked out another"
    finally:
        await proxied.close()


async def test_without_a_proxy_a_forwarded_header_changes_nothing(console: Console) -> None:
    async with _client() as s:
        answers = [
            (
                await s.post(
                    console.url + "login",
                    data={"name": "x", "password": "no"},
                    headers={"X-Forwarded-For": f"203.0.113.{i}"},
                )
            ).status
            for i in range(11)
        ]
    assert answers[-1] == 429


async def test_a_session_keeps_a_few_live_streams_at_most(console: Console) -> None:
    _person(console, "ana", Role.VIEWER)
    async with _client() as s:
        await _login(s, console.url, "ana")
        streams = [await s.get(console.url + "live") for _ in range(8)]
        assert all(r.status == 200 for r in streams)
        assert (await s.get(console.url + "live")).status == 503
        streams[0].close()  # a tab closed: its slot is free within a couple of seconds
        await asyncio.sleep(2.5)
        again = await s.get(console.url + "live")
        assert again.status == 200
        for r in [*streams[1:], again]:
            r.close()


def _local(c: Console) -> str:
    """The console's own address when its public_url names a proxy in front."""
    assert c._runner is not None
    host, port = c._runner.addresses[0][:2]
    return f"http://{host}:{port}/"


async def test_logins_at_the_same_moment_all_get_an_answer(console: Console) -> None:
    """Two staff logging in together at shift change (OpenSSL's Argon2 deadlocked when
    two derivations ran at once)."""
    for name in ("ana", "juma", "rosa", "ines"):
        _person(console, name, Role.RESPONDER)

    async def one(name: str, password: str) -> int:
        async with _client() as s:
            r = await s.post(console.url + "login", data={"name": name, "password": password})
            return r.status

    tries = [one(n, PASSWORD) for n in ("ana", "juma", "rosa")] + [one("ines", "wrong one")]
    answers = await asyncio.wait_for(asyncio.gather(*tries), 30)
    assert answers == [200, 200, 200, 401]
    assert await one("ana", PASSWORD) == 200, "logins broke after concurrent ones"


async def test_a_page_under_another_name_is_refused(console: Console) -> None:
    """A DNS-rebinding page reaches the loopback console under its own host name."""
    async with _client() as s:
        for host in ("evil.example", "evil.example:80"):
            r = await s.get(console.url + "login", headers={"Host": host})
            assert r.status == 400
        r = await s.post(
            console.url + "login",
            data={"name": "x", "password": "y"},
            headers={"Host": "evil.example", "Origin": "http://evil.example"},
        )
        assert r.status == 400


async def test_a_form_that_does_not_decode_is_a_clear_400(console: Console) -> None:
    async with _client() as s:
        for body, kind in (
            (b"name=\xff\xfe&password=x", "application/x-www-form-urlencoded; charset=utf-8"),
            (b"name=a&password=x", "application/x-www-form-urlencoded; charset=klingon"),
        ):
            r = await s.post(console.url + "login", data=body, headers={"Content-Type": kind})
            assert r.status == 400 and "could not be read" in await r.text()


async def test_a_live_stream_ends_with_its_session(console: Console) -> None:
    _person(console, "ana", Role.VIEWER)
    async with _client() as s:
        await _login(s, console.url, "ana")
        async with s.get(console.url + "live") as stream:
            await stream.content.readuntil(b"\n\n")
            console.deps.people.set_disabled("ana", True)  # as `rrn user disable ana`
            rest = await asyncio.wait_for(stream.content.read(), 5)  # the server closes it
            assert b"event: change" not in rest
