"""The daemon's side of the local control channel.

Owns receiving control requests on the node's own NATS, checking them
(node/control/channel.py) and dispatching them to the API's handlers. Unauthenticated
requests get no answer at all; failed operations answer with one line.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from prometheus_client import CollectorRegistry, Counter

from rrn.node.control.channel import ControlReply, Verifier, encode_reply
from rrn.node.home.clock import Clock
from rrn.protocol import subjects
from rrn.protocol.errors import ProtocolError, RrnError

__all__ = ["ControlServer"]

logger = logging.getLogger(__name__)

Handler = Callable[[bytes], Awaitable[object]]


class ControlServer:
    """Answers the CLI's requests for one node."""

    def __init__(
        self,
        *,
        key: bytes,
        handlers: dict[str, Handler],
        registry: CollectorRegistry,
        rejected: Counter,
        clock: Clock,
    ) -> None:
        self._verifier = Verifier(key)
        self._handlers = handlers
        self._requests = Counter(
            "rrn_control_requests_total",
            "Control requests from the CLI, by operation and outcome.",
            ["op", "outcome"],
            registry=registry,
        )
        self._rejected = rejected
        self._clock = clock
        self._sub: Subscription | None = None
        self.stopping = False

    async def start(self, nc: NatsClient, org: str) -> None:
        """Listen on the node's control subject."""
        self._sub = await nc.subscribe(subjects.control(org, "request"), cb=self._on_request)
        await nc.flush()

    async def drain(self) -> None:
        """Stop taking requests; let the ones in progress finish."""
        self.stopping = True
        if self._sub is not None:
            with contextlib.suppress(NatsError):
                await self._sub.drain()  # type: ignore[no-untyped-call]

    async def _on_request(self, msg: Msg) -> None:
        try:
            request = self._verifier.check(msg.data, self._clock.now_ms())
        except ProtocolError as exc:
            self._requests.labels(op="unknown", outcome="refused").inc()
            self._rejected.labels(reason=str(exc.reason)).inc()
            logger.warning("refused a control request: %s", exc.reason)
            return
        handler = self._handlers.get(request.op)
        if handler is None:
            reply = encode_reply(ControlReply(ok=False, error=f"unknown operation {request.op!r}"))
        elif self.stopping:
            reply = encode_reply(ControlReply(ok=False, error="the daemon is stopping"))
        else:
            try:
                result = await handler(request.args)
                reply = encode_reply(ControlReply(ok=True), result)
                self._requests.labels(op=request.op, outcome="ok").inc()
            except RrnError as exc:
                reply = encode_reply(ControlReply(ok=False, error=str(exc)))
                self._requests.labels(op=request.op, outcome="error").inc()
        with contextlib.suppress(NatsError):
            await msg.respond(reply)
