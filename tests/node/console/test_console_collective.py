"""Collective actions in the console, on a real socket and a real console.db: what each
role may do, what crosses to the node's operations (a text sealed, a version signed
as its SHA-256 alone), what the pages show before and after a threshold is met, and
the record of who did what.

The node's collective operations are a fake at our own seam (`Operations`' handlers),
with real sealing; tests/node/console/test_console_browser.py drives the real ones on
a network, and tests/node/test_collective.py what the operations themselves promise.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.node.alerting.coverage import CoverageGrid
from rrn.node.console.app import Console
from rrn.node.console.context import Deps, Operations
from rrn.node.console.people import Role, open_db
from rrn.node.control.transit import open_request, seal_reply
from rrn.node.home.console import ConsoleConfig
from rrn.node.ops.collective import (
    CollectiveInfo,
    CollectiveSignArgs,
    ProposalRefArgs,
    ProposeArgs,
)
from rrn.node.ops.types import AlertDetail, AlertInfo
from tests.node.console.test_console_web import _client, _login, _person

ORG, NET = "acme-co", bytes(range(32))
ALERT, PROPOSAL = "a1" * 32, "b2" * 32
TEXT = "Dear Minister, we write about HRD-7F3A.\nSigned,"
HOUR = 3_600_000


def _proposal(**changes: object) -> CollectiveInfo:
    base = CollectiveInfo(
        proposal=PROPOSAL,
        alert=ALERT,
        proposer="lima-hr",
        action="joint_statement",
        channel="private",
        deadline_ms=int(time.time() * 1000) + 24 * HOUR,
        threshold={"company": 2, "embassy": 1},
        state="open",
        joined_by_role={"company": 1, "embassy": 0},
        eligible=True,
        mine="none",
        text_hash=hashlib.sha256(TEXT.encode()).hexdigest(),
    )
    return msgspec.structs.replace(base, **changes)


class Node:
    """The operations the console calls, as this member's node would answer them."""

    def __init__(self) -> None:
        self.key = X25519PrivateKey.generate()
        self.info = _proposal()
        self.calls: list[tuple[str, bytes]] = []

    def seal_info(self) -> dict[str, object]:
        pub = self.key.public_key().public_bytes_raw()
        return {"org": ORG, "net": NET.hex(), "enc_pub": pub.hex()}

    def handlers(self) -> dict[str, Callable[[bytes], Awaitable[object]]]:
        async def show(data: bytes) -> object:
            args = msgspec.msgpack.decode(data, type=ProposalRefArgs)
            if args.reply_to is None:
                return self.info
            sealed = seal_reply(TEXT.encode(), args.reply_to, ORG, NET)
            return msgspec.structs.replace(self.info, sealed_text=sealed)

        def change(name: str) -> Callable[[bytes], Awaitable[object]]:
            async def answer(data: bytes) -> object:
                self.calls.append((name, data))
                return self.info

            return answer

        async def alert(_: bytes) -> object:
            return AlertDetail(alert=_alert(), events=[])

        async def grid(_: bytes) -> object:
            return CoverageGrid(tz="UTC", start_ms=0, members={}, rows=[])

        async def listed(_: bytes) -> object:
            return [self.info]

        async def no_alerts(_: bytes) -> object:
            return []

        names = ("collective.join", "collective.withdraw", "collective.sign", "collective.propose")
        return {
            "collective.show": show,
            "collective.list": listed,
            "alert.show": alert,
            "coverage.show": grid,
            "status": _status,
            "alert.list": no_alerts,
        } | {n: change(n) for n in names}


def _alert() -> AlertInfo:
    return AlertInfo(
        id=ALERT, origin="lima-hr", status="open", country="PE", subdivision=None,
        incident_types=["raid"], severity="moderate", urgency="days", asks=[], languages=[],
        pseudonym="HRD-7F3A", exercise=False, raised_ms=0, updated_ms=0, claimants=[],
        ended_by=None, end_code=None,
    )  # fmt: skip


async def _status(_: bytes) -> object:
    return {
        "org": ORG, "name": "Acme", "version": "0", "network": "n", "roster_version": 1,
        "members": [ORG, "lima-hr"], "epoch": 0, "seq": 0, "events": 0, "open_alerts": 1,
        "appends_blocked": None, "frozen": [], "nats_url": "", "metrics_url": None,
        "started_ms": 0,
    }  # fmt: skip


@pytest.fixture
def node() -> Node:
    return Node()


@pytest.fixture
async def console(tmp_path: Path, node: Node) -> AsyncIterator[Console]:
    deps = Deps(
        ops=Operations(node.handlers()),
        db=open_db(tmp_path / "console.db"),
        org=ORG,
        name="Acme",
        tz="UTC",
        seal_info=node.seal_info,
    )
    c = Console(deps, ConsoleConfig(port=0), tmp_path)
    await c.start()
    try:
        yield c
    finally:
        await c.close()


async def _as(console: Console, s: aiohttp.ClientSession, role: Role) -> str:
    """Log in as a person of this role; the session's CSRF token."""
    return await _login(s, console.url, _person(console, str(role), role))


def _recorded(console: Console, what: str) -> list[tuple[str, str | None]]:
    return [(a.name, a.alert) for a in console.deps.sessions.actions() if a.action.startswith(what)]


async def test_before_the_threshold_pages_count_joiners_by_kind(
    console: Console, node: Node
) -> None:
    async with _client() as s:
        await _as(console, s, Role.LIAISON)
        listed = await (await s.get(console.url + "collective")).text()
        assert "1/2 companies, 0/1 embassies" in listed
        assert f'href="/alerts/{ALERT}"' in listed and "lima-hr" in listed
        assert f'data-join="{PROPOSAL}"' in listed, "an eligible liaison is offered to join"
        assert f'data-deadline="{node.info.deadline_ms}"' in listed, "no countdown"
        page = await (await s.get(console.url + f"collective/{PROPOSAL}")).text()
        assert 'id="committed"' not in page and 'id="signatures"' not in page
        assert TEXT not in page, "the text was shown without being asked for"
        assert 'id="open-text"' in page
        for wrong in ("collective/B2" + "b2" * 31, "collective/b2b2"):
            assert (await s.get(console.url + wrong)).status == 404


async def test_once_met_the_page_names_the_committed_and_each_version_signed(
    console: Console, node: Node
) -> None:
    other = hashlib.sha256(b"final text").hexdigest()
    assert node.info.text_hash
    node.info = _proposal(
        state="met", mine="committed", met_ms=int(time.time() * 1000),
        joined_by_role={"company": 2, "embassy": 1},
        committed=["acme-co", "bolt-co", "paris-mission"], withdrew_after=["bolt-co"],
        signatures={node.info.text_hash: ["acme-co"], other: ["paris-mission"]},
    )  # fmt: skip
    async with _client() as s:
        await _as(console, s, Role.COORDINATOR)
        page = await (await s.get(console.url + f"collective/{PROPOSAL}")).text()
    committed = re.search(r'<ul id="committed">(.*?)</ul>', page, re.S)
    assert committed and all(o in committed[1] for o in ("acme-co", "bolt-co", "paris-mission"))
    assert "bolt-co" in (re.search(r'id="withdrew-after">(.*?)</ul>', page, re.S) or [""])[0]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", page, re.S)
    proposed = next(r for r in rows if node.info.text_hash in r[0])
    assert "The text as proposed" in proposed[0] and proposed[1] == "acme-co"
    assert any(other in r[0] and "Another version" in r[0] for r in rows)
    assert 'id="sign"' not in page, "offered to sign again the version we signed"
    assert 'id="sign-other"' in page


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.VIEWER, False), (Role.RESPONDER, False), (Role.LIAISON, True), (Role.ADMIN, True)],
)
async def test_joining_is_a_pledge_of_the_roles_that_pledge(
    console: Console, node: Node, role: Role, allowed: bool
) -> None:
    async with _client() as s:
        csrf = await _as(console, s, role)
        form = {"csrf": csrf, "back": "list"}
        r = await s.post(console.url + f"collective/{PROPOSAL}/join", data=form)
    if allowed:
        assert r.status == 200 and r.url.path == "/collective"
        sent = msgspec.msgpack.decode(node.calls[0][1], type=ProposalRefArgs)
        assert node.calls[0][0] == "collective.join" and sent.proposal == PROPOSAL
        assert _recorded(console, "joined collective action") == [(str(role), ALERT)]
    else:
        assert r.status == 403 and node.calls == []
        assert "may not do that" in await r.text()


async def test_a_version_signed_leaves_as_its_hash_alone(console: Console, node: Node) -> None:
    node.info = _proposal(state="met", mine="committed", committed=[ORG])
    final = "Dear Minister,\r\nthe final text naming HRD-7F3A.\r\n"
    async with _client() as s:
        csrf = await _as(console, s, Role.LIAISON)
        url = console.url + f"collective/{PROPOSAL}/sign"
        r = await s.post(url, data={"csrf": csrf, "version": "other", "final": "  "})
        assert r.status == 400 and node.calls == [], "a blank version was signed"
        r = await s.post(url, data={"csrf": csrf, "version": "other", "final": final})
        assert r.status == 200 and r.url.path == f"/collective/{PROPOSAL}"
        r = await s.post(url, data={"csrf": csrf})
        assert r.status == 200
    (_, other), (_, proposed) = node.calls
    assert b"HRD-7F3A" not in other, "the text itself crossed to the node"
    typed = final.replace("\r\n", "\n").encode()  # as pasted anywhere, whatever the browser
    assert msgspec.msgpack.decode(other, type=CollectiveSignArgs).text == (
        hashlib.sha256(typed).digest()
    )
    assert msgspec.msgpack.decode(proposed, type=CollectiveSignArgs).text is None
    assert len(_recorded(console, "signed collective action")) == 2


async def test_the_text_opens_on_request_and_the_opening_is_recorded(
    console: Console, node: Node
) -> None:
    async with _client() as s:
        csrf = await _as(console, s, Role.VIEWER)
        r = await s.post(console.url + f"collective/{PROPOSAL}/text", data={"csrf": csrf})
        assert r.status == 403 and TEXT not in await r.text()
    async with _client() as s:
        csrf = await _as(console, s, Role.LIAISON)
        r = await s.post(console.url + f"collective/{PROPOSAL}/text", data={"csrf": csrf})
        shown = re.search(r'id="proposal-text">(.*?)</div>', await r.text(), re.S)
        assert r.status == 200 and shown and shown[1] == TEXT
    assert _recorded(console, "opened the text of collective action") == [("liaison", ALERT)]


async def test_a_proposal_made_on_an_alert_page_seals_its_text(
    console: Console, node: Node
) -> None:
    text = "Dear Minister,\r\nwe write about HRD-7F3A."
    async with _client() as s:
        csrf = await _as(console, s, Role.COORDINATOR)
        page = await (await s.get(console.url + f"alerts/{ALERT}")).text()
        assert 'id="propose"' in page and f'href="/collective/{PROPOSAL}"' in page
        form = {"csrf": csrf, "action": "joint_statement", "channel": "private", "text": text}
        r = await s.post(console.url + f"alerts/{ALERT}/propose", data=form)
        assert r.status == 400 and node.calls == []
        answer = await r.text()
        assert "at least one kind" in answer and "deadline" in answer
        assert "we write about HRD-7F3A." in answer, "what was typed was thrown away"
        before = int(time.time() * 1000)
        form |= {"need_company": "2", "need_embassy": "1", "deadline_in": "48", "role": "company"}
        r = await s.post(console.url + f"alerts/{ALERT}/propose", data=form)
        assert r.status == 200 and r.url.path == f"/collective/{PROPOSAL}"
    after = int(time.time() * 1000)
    ((op, data),) = node.calls
    sent = msgspec.msgpack.decode(data, type=ProposeArgs)
    assert op == "collective.propose" and sent.alert == ALERT and b"HRD-7F3A" not in data
    assert {(str(q.role), q.count) for q in sent.threshold} == {("company", 2), ("embassy", 1)}
    assert [str(r) for r in sent.roles] == ["company"]
    assert before + 48 * HOUR <= sent.deadline_ms <= after + 48 * HOUR
    assert sent.text is not None
    assert open_request(sent.text, ORG, node.key, NET) == text.replace("\r\n", "\n").encode()
    assert _recorded(console, "proposed collective action") == [("coordinator", ALERT)]


async def test_a_viewer_is_offered_no_propose_form_and_cannot_post_one(
    console: Console, node: Node
) -> None:
    async with _client() as s:
        csrf = await _as(console, s, Role.VIEWER)
        page = await (await s.get(console.url + f"alerts/{ALERT}")).text()
        assert 'id="propose"' not in page and f'href="/collective/{PROPOSAL}"' in page
        form = {"csrf": csrf, "action": "joint_statement", "need_company": "1", "deadline_in": "6"}
        r = await s.post(console.url + f"alerts/{ALERT}/propose", data=form)
        assert r.status == 403 and node.calls == []
