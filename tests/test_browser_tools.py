"""The browser test tooling works: Chromium opens a page served under a strict
Content-Security-Policy, axe-core really audits it, and screenshots land."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, expect

from tests import browser as b

CSP = "default-src 'self'"
CLEAN = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Rapid response</title></head>
<body><main>
<h1>Rapid response network</h1>
<p>All quiet.</p>
<form><label for="name">Name</label> <input id="name" name="name"></form>
</main></body>
</html>
"""
BROKEN = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Broken</title></head>
<body><main>
<h1>Broken</h1>
<img src="/missing.png">
<form><input name="nameless"></form>
</main></body>
</html>
"""


@pytest.fixture
async def site() -> AsyncIterator[str]:
    """The two pages on a loopback port, each with the strict CSP header."""
    pages = {"/": CLEAN, "/broken": BROKEN}

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            text=pages[request.path],
            content_type="text/html",
            headers={"Content-Security-Policy": CSP},
        )

    app = web.Application()
    for path in pages:
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with b.chromium() as browser:
        yield browser


@pytest.mark.integration
async def test_chromium_axe_and_screenshot(site: str, browser: Browser) -> None:
    page = await b.new_page(browser, locale="es-PE", timezone_id="America/Lima")
    assert await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == (
        "America/Lima"
    )
    assert await page.evaluate("navigator.language") == "es-PE"

    await page.goto(f"{site}/")
    await expect(page.get_by_role("heading", name="Rapid response network")).to_be_visible()
    await expect(page.get_by_text("All quiet.")).to_be_visible()
    clean = await b.axe_violations(page)
    assert clean == [], b.describe(clean)

    # Under the same CSP, axe still runs and finds what is wrong.
    await page.goto(f"{site}/broken")
    await expect(page.get_by_role("heading", name="Broken")).to_be_visible()
    found = await b.axe_violations(page)
    assert {"image-alt", "label"} <= {v["id"] for v in found}, b.describe(found)
    assert all(v["impact"] in {"serious", "critical"} for v in found)

    shot = await b.screenshot(page, "browser-tools-broken")
    assert shot == b.SCREENSHOTS / "browser-tools-broken.png"
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert shot.stat().st_size > 100


def test_missing_browser_fails_not_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(b, "CHROMIUM", Path("/nonexistent/chromium"))
    with pytest.raises(pytest.fail.Exception, match=r"make tools.*Debian's chromium"):
        b.require_browser()
