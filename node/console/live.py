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
from typing import Final

from aiohttp import web

__all__ = ["Live"]

_KEEPALIVE_S: Final = 20.0
#: Open /live streams at most (browsers keep one per tab).
MAX_LISTENERS: Final = 200


class Live:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[str]] = set()
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
        if len(self._queues) >= MAX_LISTENERS:
            raise web.HTTPServiceUnavailable(text="too many live pages open on this console")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        q: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._queues.add(q)
        try:
            await response.write(b"retry: 3000\n\n")
            while not self._closed.is_set():
                try:
                    async with asyncio.timeout(_KEEPALIVE_S):
                        name = await q.get()
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                await response.write(f"event: {name}\ndata: {{}}\n\n".encode())
        except ConnectionResetError:
            pass
        finally:
            self._queues.discard(q)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response
