"""The console as people use it: Debian's Chromium against a real three-node devnet.

Lima's coordinator raises an alert with sealed details in Spanish; Nairobi's
responder, whose inbox is open, sees it arrive without reloading, claims it,
opens the details once Lima has resealed them, acts and resolves; Lima's page
follows live. Then what must be refused is: wrong passwords lock an account, a
form from another site or without the session's token changes nothing, a viewer
cannot claim, an excluded company's console shows nothing of the alert. A
company's liaison joins a collective action Lima proposed: counted, unnamed,
until Nairobi's join meets it. Every page is checked by axe-core and saved as a
screenshot (tests/artefacts/).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, Response

from rrn.node.home.layout import open_home
from rrn.protocol.roster import Role
from tests.browser import axe_violations, chromium, describe, new_page, screenshot
from tests.netkit import TestNetwork
from tests.procs import Daemon, free_port, init, rrn_json

pytestmark = pytest.mark.integration

LIMA, NAIROBI, COMPANY = 1, 2, 3
PASSWORD = "a long night on duty 2026"


class Console:
    """The users of one node's console, and its address."""

    def __init__(self, net: TestNetwork, k: int) -> None:
        self.net, self.k = net, k
        info = net.home(k) / "run" / "daemon.json"
        self.url = str(json.loads(info.read_text())["console_url"])

    def add(self, name: str, role: str) -> str:
        made = self.net.cli_json(self.k, "user", "add", name, "--role", role)
        assert made["console_url"] == self.url
        return str(made["one_time_password"])


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNetwork]:
    n = TestNetwork.create(tmp_path_factory.mktemp("console"), 3, roles={COMPANY: [Role.COMPANY]})
    try:
        yield n
    finally:
        n.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def login(
    page: Page, url: str, name: str, once: str, problems: list[str] | None = None
) -> None:
    """First login with the one-time password, then the person's own. The console lets
    one address try ten logins a minute, and this module logs in many people from
    127.0.0.1: a refused attempt (429) is made again a little later, as a person would."""
    for _ in range(5):
        await page.goto(url + "login")
        await page.fill("#name", name)
        await page.fill("#password", once)
        async with page.expect_response(_login_post) as posted:
            await page.click("form button.primary")
        if (await posted.value).status != 429:
            break
        await asyncio.sleep(15)
    await page.wait_for_url(re.compile(r"/password$"))
    if problems is not None:
        await check(page, "password", problems)
    await page.fill("#current", once)
    await page.fill("#new", PASSWORD)
    await page.fill("#again", PASSWORD)
    await page.click("form button.primary")
    await page.wait_for_url(url)


def _login_post(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/login")


async def check(page: Page, name: str, problems: list[str]) -> None:
    """axe-core on the page as it stands, and its screenshot."""
    found = await axe_violations(page)
    if found:
        problems.append(f"{name} ({page.url}):\n{describe(found)}")
    await screenshot(page, name)


async def test_a_case_from_lima_to_nairobi(net: TestNetwork, browser: Browser) -> None:
    lima, nairobi = Console(net, LIMA), Console(net, NAIROBI)
    problems: list[str] = []

    coord = await new_page(browser, locale="es-PE", timezone_id="America/Lima")
    await coord.goto(lima.url)  # sent to the login page
    await coord.wait_for_selector("#password")
    await check(coord, "login", problems)
    await login(coord, lima.url, "rosa", lima.add("rosa", "coordinator"), problems)
    await coord.goto(lima.url + "account")
    await coord.select_option("#lang", "es")
    await coord.click("form button.primary")
    await coord.wait_for_selector("html[lang=es]")
    await check(coord, "account", problems)

    resp = await new_page(browser, timezone_id="Africa/Nairobi")
    await resp.context.grant_permissions(["notifications"])
    await resp.add_init_script(_SPY)
    await login(resp, nairobi.url, "juma", nairobi.add("juma", "responder"))
    await resp.click("#notify")
    await resp.evaluate("window.stillHere = true")  # gone if the page reloads
    await check(resp, "inbox-empty", problems)

    # Lima raises, in Spanish, with sealed details the company must never see.
    await coord.goto(lima.url + "raise")
    await check(coord, "raise", problems)
    await coord.select_option("#country", "PE")
    await coord.fill("#subdivision", "PE-LOR")
    await coord.check("input[name=type][value=death_threat]")
    await coord.select_option("#severity", "severe")
    await coord.select_option("#urgency", "immediate")
    await coord.fill("#languages", "es, qu")
    await coord.select_option("#ask_action_0", "legal_aid")
    await coord.select_option("#ask_to_0", "ngo")
    await coord.check(f"input[name=exclude][value={net.org(COMPANY)}]")
    await coord.fill("#detail_identity", "Rosa Quispe Mamani, community leader")
    await coord.fill("#detail_location", "Nauta, Loreto")
    await coord.click("#raise")
    await coord.wait_for_url(re.compile(r"/alerts/[0-9a-f]{64}$"))
    alert = coord.url.rsplit("/", 1)[1]
    assert await coord.text_content("h1") and "Perú" in (await coord.text_content("h1") or "")
    assert "Rosa Quispe" not in await coord.title()
    await check(coord, "alert-raised", problems)
    await coord.select_option("#up-severity", "extreme")
    await coord.click("#update")
    await coord.wait_for_selector("#up-severity option[value=extreme][selected]", state="attached")

    # Nairobi's open inbox shows it within seconds, without a reload.
    await resp.wait_for_selector(f'[data-asked="{alert}"]', timeout=30_000)
    assert await resp.evaluate("window.stillHere === true"), "the inbox reloaded"
    told = await resp.evaluate("[window.notified, window.beeps]")
    assert len(told[0]) == 1 and told[1] >= 2, told  # a beep on consent, one on arrival
    assert "Rosa" not in told[0][0], "a notification may show on a locked screen"
    await check(resp, "inbox-asked", problems)

    await resp.click(f'a[href="/alerts/{alert}"]')
    await resp.wait_for_url(re.compile(alert))
    # Lima's update reaches Nairobi at about this time and the page refreshes itself
    # for it: tab to the button once it has (a refresh in between would drop the Enter).
    await resp.wait_for_function("document.querySelector('main').innerText.includes('Extreme')")
    await _by_keyboard(resp, "claim")
    await resp.wait_for_selector("h1[data-status=claimed]")
    await _open_details(resp, nairobi.url, alert)
    assert "Rosa Quispe Mamani" in (await resp.text_content("#details") or "")
    await check(resp, "alert-details", problems)
    await resp.goto(nairobi.url + f"alerts/{alert}")
    await resp.select_option("#act-action", "legal_aid")
    await resp.click("#act")
    await resp.wait_for_selector("h1[data-status=claimed]")
    await resp.select_option("#outcome", "safe")
    await resp.click("#resolve")
    await resp.wait_for_selector("h1[data-status=resolved]")

    # Lima's page, open all along, follows.
    await coord.wait_for_selector("h1[data-status=resolved]", timeout=30_000)
    for log in [*net.devnet.dir.glob("*.log"), *net.devnet.dir.glob("*/logs/*.log")]:
        text = log.read_text()
        assert "Quispe" not in text and "Nauta" not in text, f"{log} names the defender"
    await check(coord, "alert-resolved", problems)

    for path, name in (("coverage", "coverage"), ("network", "network"), ("asks", "asks")):
        await coord.goto(lima.url + path)
        await check(coord, name, problems)
    admin = await new_page(browser)
    await login(admin, lima.url, "ines", lima.add("ines", "admin"))
    await admin.goto(lima.url + "record")
    record = await admin.text_content("main") or ""
    assert "rosa" in record and "raised" in record
    await check(admin, "record", problems)
    assert _recorded(net.home(NAIROBI) / "console.db", "juma", "opened details")
    assert not problems, "axe-core found serious or critical problems:\n" + "\n".join(problems)


#: Counts the notifications and sounds the page makes (before any of its scripts run).
_SPY = """
window.notified = []; window.beeps = 0;
const RealNotification = window.Notification;
window.Notification = class extends RealNotification {
  constructor(title, options) { super(title, options); window.notified.push(options.body); }
};
const RealAudio = window.AudioContext;
window.AudioContext = class extends RealAudio {
  constructor() { super(); window.beeps += 1; }
};
"""


async def _by_keyboard(page: Page, button: str) -> None:
    """Tab to the button, as someone without a mouse would, and press Enter."""
    for _ in range(80):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == button:
            await page.keyboard.press("Enter")
            return
    raise AssertionError(f"#{button} cannot be reached with the keyboard")


def _recorded(db: Path, name: str, action: str) -> bool:
    with sqlite3.connect(db) as c:
        return bool(
            c.execute(
                "SELECT 1 FROM actions WHERE name = ? AND action = ?", (name, action)
            ).fetchone()
        )


async def _open_details(page: Page, url: str, alert: str) -> None:
    """Open the details once Lima has resealed them to us (it does on our claim)."""
    for _ in range(60):
        await page.goto(url + f"alerts/{alert}")
        button = page.locator(f'form[action="/alerts/{alert}/details"] button')
        if await button.count():
            await button.click()
            if await page.locator("#details").count():
                return
        await page.wait_for_timeout(500)
    raise AssertionError("the sealed details never opened on Nairobi")


async def test_javascript_off_still_claims(net: TestNetwork, browser: Browser) -> None:
    nairobi = Console(net, NAIROBI)
    alert = net.raise_alert(LIMA)
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await login(page, nairobi.url, "kioko", nairobi.add("kioko", "responder"))
    await page.goto(nairobi.url)
    assert await page.locator(f'a[href="/alerts/{alert}"]').count()
    await page.click(f'a[href="/alerts/{alert}"]')
    await page.click("#claim")
    await page.wait_for_selector("h1[data-status=claimed]")
    assert net.org(NAIROBI) in net.cli_json(NAIROBI, "alert", "show", alert)["alert"]["claimants"]
    # Light: a page with its stylesheet and script (fetched once) stays under 150 KB.
    fresh = await browser.new_page(storage_state=await context.storage_state())
    loaded: list[int] = []

    async def sized(response: Response) -> None:
        loaded.append(len(await response.body()))

    fresh.on("response", sized)
    await fresh.goto(nairobi.url)
    await fresh.wait_for_load_state("networkidle")
    assert 0 < sum(loaded) < 150_000, f"the inbox weighs {sum(loaded)} bytes"


async def test_wrong_passwords_lock_the_account(net: TestNetwork, browser: Browser) -> None:
    lima = Console(net, LIMA)
    once = lima.add("pablo", "responder")
    page = await new_page(browser)
    for _ in range(5):
        await page.goto(lima.url + "login")
        await page.fill("#name", "pablo")
        await page.fill("#password", "not the password")
        await page.click("form button.primary")
        assert await page.locator("p.error").count()
    await page.fill("#name", "pablo")
    await page.fill("#password", once)  # right, but too late
    await page.click("form button.primary")
    assert await page.locator("p.error").count() and not await page.locator("#current").count()
    listed = {u["name"]: u for u in net.cli_json(LIMA, "user", "list")}
    assert listed["pablo"]["locked"] is True
    fresh = net.cli_json(LIMA, "user", "reset", "pablo")["one_time_password"]
    await login(page, lima.url, "pablo", fresh)


async def test_forged_forms_change_nothing(net: TestNetwork, browser: Browser) -> None:
    nairobi = Console(net, NAIROBI)
    alert = net.raise_alert(LIMA)
    page = await new_page(browser)
    await login(page, nairobi.url, "amina", nairobi.add("amina", "responder"))
    # Without the session's token, from the person's own browser.
    answer = await page.request.post(
        nairobi.url + f"alerts/{alert}/claim", form={"csrf": "forged", "minutes": ""}
    )
    assert answer.status == 403
    # From another site the person happens to visit while logged in.
    evil = web.Application()
    form = (
        f'<form id="f" method="post" action="{nairobi.url}alerts/{alert}/claim">'
        '<input name="csrf" value="x"></form>'
    )

    async def page_of_evil(_: web.Request) -> web.Response:
        return web.Response(text=f"<!doctype html><title>x</title>{form}", content_type="text/html")

    evil.router.add_get("/", page_of_evil)
    runner = web.AppRunner(evil)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await page.goto(f"http://127.0.0.1:{port}/")
        async with page.expect_response(re.compile("/claim$")) as refused:
            await page.evaluate("document.getElementById('f').submit()")
        assert (await refused.value).status in (401, 403)
    finally:
        await runner.cleanup()
    shown = net.cli_json(NAIROBI, "alert", "show", alert)["alert"]
    assert net.org(NAIROBI) not in shown["claimants"]


async def test_a_viewer_cannot_claim(net: TestNetwork, browser: Browser) -> None:
    nairobi = Console(net, NAIROBI)
    alert = net.raise_alert(LIMA)
    page = await new_page(browser)
    await login(page, nairobi.url, "wanjiru", nairobi.add("wanjiru", "viewer"))
    await page.goto(nairobi.url + f"alerts/{alert}")
    assert not await page.locator("#claim").count()
    assert not await page.locator(f'form[action="/alerts/{alert}/details"]').count()
    csrf = await page.get_attribute("input[name=csrf]", "value")
    answer = await page.request.post(
        nairobi.url + f"alerts/{alert}/claim", form={"csrf": csrf or "", "minutes": ""}
    )
    assert answer.status == 403
    assert (
        net.org(NAIROBI) not in net.cli_json(NAIROBI, "alert", "show", alert)["alert"]["claimants"]
    )


async def test_a_check_in_recorded_at_another_member_looks_the_same_with_either_code(
    net: TestNetwork, browser: Browser
) -> None:
    """A defender checks in through Nairobi's console: the screen answers a duress code
    exactly as it answers the other; a wrong code signs nothing."""
    lima, nairobi, problems = Console(net, LIMA), Console(net, NAIROBI), list[str]()
    coord = await new_page(browser, timezone_id="America/Lima")
    await login(coord, lima.url, "mario", lima.add("mario", "coordinator"))
    await coord.goto(lima.url + "checkins/new")
    first = datetime.now(ZoneInfo(open_home(net.home(LIMA)).config.node.tz)) + timedelta(hours=2)
    await coord.fill("#first", first.strftime("%Y-%m-%dT%H:%M"))
    await coord.fill("#every", "1")
    await coord.fill("#count", "3")
    await coord.select_option("#country", "PE")
    await coord.check("input[name=type][value=intimidation]")
    await coord.select_option("#severity", "moderate")
    await coord.select_option("#urgency", "days")
    await coord.fill("#detail_identity", "Rosa Quispe Mamani")
    await check(coord, "checkin-plan", problems)
    await coord.click("#make-plan")
    await coord.wait_for_selector("#card")
    await check(coord, "checkin-card", problems)
    cells = await coord.locator("#card tbody tr").all()
    codes = [
        {
            "code": await r.locator("td").nth(2).inner_text(),
            "duress_code": await r.locator("td").nth(3).inner_text(),
        }
        for r in cells
    ]
    assert len(codes) == 3 and "Rosa" not in await coord.content()
    plans = net.cli_json(LIMA, "checkin", "list")
    plan = next(
        p["plan"]
        for p in plans
        if p["slots"][0]["due_ms"] // 60_000 == int(first.timestamp()) // 60
    )
    page = await new_page(browser, timezone_id="Africa/Nairobi")
    await login(page, nairobi.url, "akinyi", nairobi.add("akinyi", "responder"))
    net.wait(lambda: plan in {p["plan"] for p in net.cli_json(NAIROBI, "checkin", "list")}, "plan")
    answers = []
    for slot, code in ((0, codes[0]["code"]), (1, codes[1]["duress_code"])):
        await page.goto(nairobi.url + "checkins")
        await page.select_option("#plan", plan)
        await page.fill("#slot", str(slot))
        await page.fill("#code", code.upper())  # as read out over a phone line
        await page.click("#record-checkin")
        await page.wait_for_url(re.compile(r"/checkins\?done=1$"))
        answers.append(await page.text_content("[role=status]"))
    assert answers[0] == answers[1] and answers[0], "a duress code answers like the other"
    await check(page, "checkins", problems)
    await page.fill("#code", "aaaa-bbbb-cccc-dddd")
    await page.click("#record-checkin")
    assert "not one of slot" in (await page.text_content("[role=alert]") or "")
    states = [s["state"] for s in net.cli_json(NAIROBI, "checkin", "list", plan)[0]["slots"]]
    assert states == ["checked_in", "checked_in", "upcoming"]
    assert _recorded(net.home(NAIROBI) / "console.db", "akinyi", "recorded a check-in")
    assert not problems, "axe-core found serious or critical problems:\n" + "\n".join(problems)


async def test_a_session_ends_when_left_unused(tmp_path: Path, browser: Browser) -> None:
    home = init(tmp_path / "short", "lima-hr")
    config = home / "config.toml"
    config.write_text(
        config.read_text().replace("session_idle_minutes = 720", "session_idle_minutes = 0.02")
    )
    daemon = Daemon(home).start()
    try:
        url = str(daemon.info["console_url"])
        made = rrn_json("user", "add", "ana", "--role", "viewer", "--home", home, "--json")
        page = await new_page(browser)
        await login(page, url, "ana", made["one_time_password"])
        await page.wait_for_timeout(2_000)  # 1.2 s is the idle limit here
        await page.goto(url + "coverage")
        assert page.url == url + "login", "an idle session still opened a page"
    finally:
        daemon.stop()


async def test_an_excluded_company_sees_nothing(net: TestNetwork, browser: Browser) -> None:
    company = Console(net, COMPANY)
    alert = net.raise_alert(LIMA, "--exclude", net.org(COMPANY))
    seen = net.raise_alert(LIMA, "--consent", "companies", "--consent-by", "defender")
    net.wait(
        lambda: any(a["id"] == seen for a in net.cli_json(COMPANY, "alert", "list")),
        "the company to hold the alert it may see",
    )
    page = await new_page(browser)
    await login(page, company.url, "desk", company.add("desk", "liaison"))
    html = await page.content()
    assert seen in html and alert not in html
    answer = await page.goto(company.url + f"alerts/{alert}")
    assert answer is not None and answer.status == 404


async def test_a_company_joins_a_collective_action_named_only_once_it_is_met(
    net: TestNetwork, browser: Browser
) -> None:
    """Lima proposes a joint statement from the alert's page (one company and one NGO
    needed); the company's liaison opens its text and joins: both consoles count the
    join and name nobody; Nairobi joins, and the liaison's page, open all along, names
    both; the liaison signs the text as proposed."""
    lima, company, problems = Console(net, LIMA), Console(net, COMPANY), list[str]()
    canary = f"CANARY{secrets.token_hex(4)}"
    consent = ("--consent", "network", "--consent", "companies", "--consent-by", "defender")
    alert = net.raise_alert(LIMA, *consent)
    coord = await new_page(browser, timezone_id="America/Lima")
    await login(coord, lima.url, "lucia", lima.add("lucia", "coordinator"))
    await coord.goto(lima.url + f"alerts/{alert}")
    await coord.click("section[aria-labelledby=collective-h] summary")
    await coord.select_option("#c-action", "joint_statement")
    await coord.fill("#need_company", "1")
    await coord.fill("#need_responder", "1")
    await coord.fill("#c-text", f"Dear Minister,\nwe write about {canary}.")
    await check(coord, "collective-propose", problems)
    async with coord.expect_navigation():
        await coord.click("#propose")
    assert re.search(r"/collective/[0-9a-f]{64}$", coord.url), await coord.inner_text("main")
    proposal = coord.url.rsplit("/", 1)[1]
    for k in (COMPANY, NAIROBI):
        net.wait(
            lambda k=k: proposal in {p["proposal"] for p in net.cli_json(k, "collective", "list")},
            f"node {k} to hold the proposal",
        )

    desk = await new_page(browser)
    await login(desk, company.url, "nia", company.add("nia", "liaison"))
    await desk.goto(company.url + "collective")
    async with desk.expect_navigation():  # back to this same page, joined
        await desk.click(f'[data-join="{proposal}"]')
    needs = desk.locator(f'tr[data-proposal="{proposal}"] .needs')
    assert await needs.text_content() == "1/1 companies, 0/1 responding NGOs"
    await check(desk, "collective", problems)
    await desk.goto(company.url + f"collective/{proposal}")
    await desk.click("#open-text")
    assert canary in (await desk.text_content("#proposal-text") or "")
    await desk.goto(company.url + f"collective/{proposal}")
    await coord.wait_for_function("document.getElementById('needs').innerText.startsWith('1/1')")
    for page in (desk, coord):  # counted, and nobody named before the threshold is met
        shown = await page.text_content("main") or ""
        assert net.org(COMPANY) not in shown and net.org(NAIROBI) not in shown
        assert not await page.locator("#committed").count()

    net.cli_json(NAIROBI, "collective", "join", proposal[:12])
    await desk.wait_for_selector("#committed", timeout=30_000)  # the page refreshes itself
    committed = await desk.text_content("#committed") or ""
    assert net.org(COMPANY) in committed and net.org(NAIROBI) in committed
    await desk.click("#sign")
    await desk.wait_for_selector("#signatures")
    signed = await desk.text_content("#signatures") or ""
    assert "The text as proposed" in signed and net.org(COMPANY) in signed
    await check(desk, "collective-met", problems)
    assert _recorded(
        net.home(COMPANY) / "console.db", "nia", f"joined collective action {proposal[:8]}"
    )
    for log in [*net.devnet.dir.glob("*.log"), *net.devnet.dir.glob("*/logs/*.log")]:
        assert canary not in log.read_text(), f"{log} holds the text"
    assert not problems, "axe-core found serious or critical problems:\n" + "\n".join(problems)
