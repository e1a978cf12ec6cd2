"""Live pages: server-sent events that tell open console pages to refresh.

Owns /live. An event carries no alert content at all ("something changed"):
the page fetches itself again through the same session and role checks as any
request, so nothing reaches a person that their page would not show. Each
listener has a small queue; a slow one misses nothing that matters (a single
pending refresh stands for many).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Final

from aiohttp import web

from rrn.node.console.context import SESSION

__all__ = ["Live"]

_KEEPALIVE_S: Final = 20.0
#: How often a quiet stream looks whether its page has gone (its slot is then freed).
_CHECK_S: Final = 1.0
#: Open /live streams at most (browsers keep one per tab), in all and per person.
MAX_LISTENERS: Final = 200
MAX_PER_PERSON: Final = 8


class Live:
    def __init__(self, still: Callable[[str], bool] | None = None) -> None:
        #: Whether the session of a cookie hash still lives (checked every few seconds).
        self._still = still or (lambda _: True)
        self._queues: set[asyncio.Queue[str]] = set()
        self._per_session: dict[str, int] = {}
        self._closed = asyncio.Event()

    def changed(self) -> None:
        for q in self._queues:
            if q.empty():
                q.put_nowait("change")

    def close(self) -> None:
        self._closed.set()

    @property
    def listeners(self) -> int:
        return len(self._queues)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        session, person = request[SESSION]
        key = person.name if person else "?"
        if len(self._queues) >= MAX_LISTENERS or self._per_session.get(key, 0) >= MAX_PER_PERSON:
            raise web.HTTPServiceUnavailable(text="too many live pages open on this console")
        self._per_session[key] = self._per_session.get(key, 0) + 1
        try:
            return await self._stream(request, session.token_hash if session else "")
        finally:
            self._per_session[key] -= 1
            if not self._per_session[key]:
                del self._per_session[key]

    async def _stream(self, request: web.Request, session: str) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "X-Accel-Buffering": "no",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            }
        )
        await response.prepare(request)
        q: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._queues.add(q)
        try:
            await response.write(b"retry: 3000\n\n")
            quiet = 0.0
            while not self._closed.is_set() and _connected(request) and self._still(session):
                try:
                    async with asyncio.timeout(_CHECK_S):
                        name = await q.get()
                except TimeoutError:
                    quiet += _CHECK_S
                    if quiet >= _KEEPALIVE_S:
                        await response.write(b": keepalive\n\n")
                        quiet = 0.0
                    continue
                await response.write(f"event: {name}\ndata: {{}}\n\n".encode())
        except ConnectionResetError:
            pass
        finally:
            self._queues.discard(q)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()
