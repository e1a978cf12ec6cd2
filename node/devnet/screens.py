"""The demo's story in the web console: each organisation's pages, photographed.

Owns `make demo`'s visit to the consoles: a person is added to a node's console
(as `rrn user add` does), logs in with Chromium, headless, and the pages that
tell the story are saved as PNG files. Playwright drives Debian's Chromium
(`make tools` installs it as root); without either, the demo says so and goes on:
the terminal tells the same story.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import time
from pathlib import Path
from typing import Final

from rrn.node.console.people import People, Role, open_db

__all__ = ["photograph"]

_CHROMIUM: Final = shutil.which("chromium") or "/usr/bin/chromium"
_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _person(home: Path) -> tuple[str, str]:
    """A coordinator in this node's console; their name and one-time password."""
    people = People(open_db(home / "console.db"))
    name = "demo"
    if people.get(name) is None:
        return name, people.add(name, Role.COORDINATOR, int(time.time() * 1000))
    return name, people.reset(name, totp=False)


def photograph(visits: list[tuple[Path, str, list[str]]], out: Path) -> list[Path] | str:
    """For each (home, tz, paths): log in to that node's console and save each page.

    Returns the files, or why there are none.
    """
    try:
        from playwright.async_api import async_playwright  # noqa: PLC0415 - a dev extra
    except ImportError:
        return "Playwright is not installed (make install adds it)"
    if not Path(_CHROMIUM).is_file():
        return "Chromium is not installed (make tools installs Debian's, as root)"

    async def go() -> list[Path]:
        saved: list[Path] = []
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=_CHROMIUM, args=_ARGS)
            for home, tz, paths in visits:
                url = json.loads((home / "run" / "daemon.json").read_text())["console_url"]
                page = await browser.new_page(
                    timezone_id=tz, viewport={"width": 1100, "height": 800}
                )
                name, once = _person(home)
                await page.goto(url + "login")
                await page.fill("#name", name)
                await page.fill("#password", once)
                await page.click("form button.primary")
                await page.fill("#current", once)
                mine = secrets.token_urlsafe(16)
                await page.fill("#new", mine)
                await page.fill("#again", mine)
                await page.click("form button.primary")
                await page.wait_for_url(url)
                for path in paths:
                    await page.goto(url + path.lstrip("/"))
                    file = (
                        out / f"{home.name}-{path.strip('/').replace('/', '-')[:24] or 'inbox'}.png"
                    )
                    await page.screenshot(path=file, full_page=True)
                    saved.append(file)
            await browser.close()
        return saved

    out.mkdir(parents=True, exist_ok=True)
    return asyncio.run(go())
