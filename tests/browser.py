"""Debian's Chromium, driven by Playwright, for the console's end-to-end tests.

Playwright never downloads a browser here: it launches /usr/bin/chromium, which
`make tools` installs from Debian's package (as root), and axe-core, the accessibility
checker, comes from the pinned tarball `make tools` unpacks into .venv/share/axe-core.
A missing browser or checker fails the test: a check that cannot run is not a pass.

In a test module:

    @pytest.fixture
    async def browser() -> AsyncIterator[Browser]:
        async with chromium() as b:
            yield b
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / ".venv" / "share" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "tests" / "artefacts" / "screenshots"

# Headless, and quiet: nothing of Chromium's own talks to the network.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# What axe reports and a test fails on.
SERIOUS = frozenset({"serious", "critical"})


def require_browser() -> None:
    """Fail the test, naming what to install, unless Chromium and axe-core are present."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (Debian's chromium package)")
    if not AXE.is_file():
        missing.append(f"{AXE.relative_to(ROOT)} (axe-core)")
    if missing:
        pytest.fail(
            f"the browser tests need {' and '.join(missing)}: run `make tools` "
            "(as root it installs Debian's chromium and fetches axe-core)",
            pytrace=False,
        )


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium with a fresh profile, closed on exit."""
    require_browser()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(browser: Browser, *, locale: str = "en-GB", timezone_id: str = "UTC") -> Page:
    """A page in a context of its own (its own cookies and storage), in that locale and
    time zone; closing the browser closes it."""
    context = await browser.new_context(locale=locale, timezone_id=timezone_id)
    return await context.new_page()


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it stands.

    The page keeps its Content-Security-Policy: axe is evaluated through the DevTools
    protocol, which `script-src 'self'` does not govern (a <script> tag would be
    refused), so the page is audited as users get it, with CSP-blocked styles unapplied.
    """
    source = AXE.read_text()
    for frame in page.frames:
        if not await frame.evaluate("typeof window.axe === 'object'"):
            await frame.evaluate(source)
    result: dict[str, Any] = await page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    violations: list[dict[str, Any]] = result["violations"]
    return [v for v in violations if v.get("impact") in SERIOUS]


def describe(violations: list[dict[str, Any]]) -> str:
    """Violations, one a line with the elements they concern, for an assertion message."""
    lines = []
    for v in violations:
        targets = ", ".join(str(n.get("target")) for n in v.get("nodes", []))
        lines.append(f"{v.get('impact')} {v.get('id')}: {v.get('help')} [{targets}]")
    return "\n".join(lines)


async def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG at tests/artefacts/screenshots/<name>.png; its path."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name.startswith("."):
        raise ValueError(f"screenshot name {name!r}: letters, digits, '.', '_' and '-' only")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    return path
