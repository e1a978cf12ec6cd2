"""Collective actions in the console (PROTOCOL 4.9): the list, a proposal's page, and
proposing, joining, withdrawing and signing.

Owns /collective and an alert's propose form. Each action calls the same
operation `rrn collective …` calls, after the person's role allows it, and is
recorded in this node's record as the alert actions are. Pages show what the
operations give this member: before a proposal's threshold is met, only how
many joined by role, never who. The text is opened only on an explicit request,
for the response to that request alone, and the opening recorded; a version
signed other than the text proposed is hashed here, and only its SHA-256 leaves.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Final

import msgspec
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.node.console.auth import read_form
from rrn.node.console.context import ctx, lang_of, may, now_ms, page, who
from rrn.node.console.forms import Form, parse_proposal, typed_text
from rrn.node.console.pages import ALERT_ID, alert_page
from rrn.node.control.transit import open_reply
from rrn.node.ops.collective import (
    CollectiveInfo,
    CollectiveListArgs,
    CollectiveSignArgs,
    ProposalRefArgs,
)
from rrn.protocol.errors import ControlError

__all__ = ["routes"]

logger = logging.getLogger(__name__)

PROPOSAL_ID: Final = re.compile(r"[0-9a-f]{64}")
#: A change to a proposal -> its operation, and what the record says of it.
_CHANGES: Final = {
    "join": ("collective.join", "joined collective action %s"),
    "withdraw": ("collective.withdraw", "withdrew from collective action %s"),
    "sign": ("collective.sign", "signed collective action %s"),
}


def routes(app: web.Application) -> None:
    """Before node/console/actions.py's: /alerts/{alert}/propose is not one of its actions."""
    app.router.add_get("/collective", proposals)
    app.router.add_get("/collective/{proposal}", proposal)
    app.router.add_post("/collective/{proposal}/text", open_text)
    app.router.add_post("/collective/{proposal}/{change}", change)
    app.router.add_post("/alerts/{alert}/propose", propose)


async def proposals(request: web.Request) -> web.Response:
    """Collective actions on open alerts (`all=1`: closed ones' too), open ones first."""
    c = ctx(request)
    every = request.query.get("all") == "1"
    found = await c.deps.ops.call(
        "collective.list", CollectiveListArgs(all=every), list[CollectiveInfo]
    )
    return page(
        request,
        "collective.html",
        title=lang_of(request).gettext("Collective actions"),
        proposals=found,
        every=every,
    )


def _ref(request: web.Request) -> str:
    ref = request.match_info["proposal"]
    if not PROPOSAL_ID.fullmatch(ref):
        raise web.HTTPNotFound(text="no such collective action")
    return ref


async def proposal(request: web.Request) -> web.Response:
    return await proposal_page(request)


async def proposal_page(
    request: web.Request,
    *,
    info: CollectiveInfo | None = None,
    text: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    """A proposal as `rrn collective show` shows it; with `text`, its text opened."""
    c = ctx(request)
    ref = _ref(request)
    if info is None:
        try:
            info = await c.deps.ops.call(
                "collective.show", ProposalRefArgs(proposal=ref), CollectiveInfo
            )
        except ControlError as exc:
            raise web.HTTPNotFound(text="no such collective action on this node") from exc
    return page(
        request,
        "proposal.html",
        title=lang_of(request).gettext("Collective action %(ref)s", ref=ref[:8]),
        p=info,
        text=text,
        error=error,
        status=status,
    )


async def open_text(request: web.Request) -> web.Response:
    """The proposal's text, opened for this response only, and the opening recorded."""
    c = ctx(request)
    _, person = who(request)
    ref = _ref(request)
    lang = lang_of(request)
    if not may(person, "collective"):
        msg = lang.gettext("Your role (%(role)s) may not do that.", role=str(person.role))
        return await proposal_page(request, error=msg, status=403)
    one_time = X25519PrivateKey.generate()
    args = ProposalRefArgs(proposal=ref, reply_to=one_time.public_key().public_bytes_raw())
    try:
        info = await c.deps.ops.call("collective.show", args, CollectiveInfo)
    except ControlError as exc:
        raise web.HTTPNotFound(text="no such collective action on this node") from exc
    if info.sealed_text is None:
        msg = lang.gettext("This node cannot open this text: it is not sealed to it.")
        return await proposal_page(request, info=info, error=msg, status=403)
    net = bytes.fromhex(str(c.deps.seal_info()["net"]))
    try:
        text = open_reply(info.sealed_text, one_time, c.deps.org, net)
    except ControlError:
        msg = lang.gettext("The text did not open.")
        return await proposal_page(request, info=info, error=msg, status=500)
    c.deps.sessions.record(
        person.name, f"opened the text of collective action {ref[:8]}", info.alert, now_ms()
    )
    logger.info("console: %s opened the text of collective action %s", person.name, ref[:12])
    shown = msgspec.structs.replace(info, sealed_text=None)
    return await proposal_page(request, info=shown, text=text.decode("utf-8", errors="replace"))


async def change(request: web.Request) -> web.Response:
    """Join, withdraw or sign: a pledge of this organisation, so the pledge permission."""
    c = ctx(request)
    _, person = who(request)
    ref, name = _ref(request), request.match_info["change"]
    if name not in _CHANGES:
        raise web.HTTPNotFound(text="no such action")
    lang = lang_of(request)
    if not may(person, "pledge"):
        msg = lang.gettext("Your role (%(role)s) may not do that.", role=str(person.role))
        return await proposal_page(request, error=msg, status=403)
    form = await read_form(request)
    op, done = _CHANGES[name]
    args: object = ProposalRefArgs(proposal=ref)
    if name == "sign":
        version = typed_text(form, "final")
        if form.get("version") == "other" and version is None:
            msg = lang.gettext("Paste the version of the text you sign.")
            return await proposal_page(request, error=msg, status=400)
        digest = hashlib.sha256(version).digest() if version is not None else None
        args = CollectiveSignArgs(proposal=ref, text=digest)
    try:
        info = await c.deps.ops.call(op, args, CollectiveInfo)
    except ControlError as exc:
        return await proposal_page(request, error=str(exc), status=409)
    c.deps.sessions.record(person.name, done % ref[:8], info.alert, now_ms())
    logger.info("console: %s did %s on collective action %s", person.name, name, ref[:12])
    raise web.HTTPSeeOther("/collective" if form.get("back") == "list" else f"/collective/{ref}")


async def propose(request: web.Request) -> web.Response:
    """A collective action on this alert (`rrn collective propose`), its text sealed here."""
    c = ctx(request)
    _, person = who(request)
    ref = request.match_info["alert"]
    if not ALERT_ID.fullmatch(ref):
        raise web.HTTPNotFound(text="no such alert")
    lang = lang_of(request)
    if not may(person, "collective"):
        msg = lang.gettext("Your role (%(role)s) may not do that.", role=str(person.role))
        return await alert_page(request, details=None, error=msg, status=403)
    form: Form = await read_form(request)
    args, problems = parse_proposal(
        form,
        alert=ref,
        seal_info=c.deps.seal_info(),
        now_ms=now_ms(),
        tz=person.tz or c.deps.tz,
        _=lang.gettext,
    )
    if args is None:
        return await alert_page(
            request, details=None, error=" ".join(problems), status=400, proposing=form
        )
    try:
        info = await c.deps.ops.call("collective.propose", args, CollectiveInfo)
    except ControlError as exc:
        return await alert_page(request, details=None, error=str(exc), status=409, proposing=form)
    c.deps.sessions.record(
        person.name, f"proposed collective action {info.proposal[:8]}", ref, now_ms()
    )
    logger.info("console: %s proposed collective action %s", person.name, info.proposal[:12])
    raise web.HTTPSeeOther(f"/collective/{info.proposal}")
