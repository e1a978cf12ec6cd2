"""The daemon's side of the local control channel.

Owns receiving control requests on the node's own NATS, checking them
(node/control/channel.py), answering each on the reply subject its MAC covers,
and dispatching them to the operations' handlers. Unauthenticated requests get
no answer at all; failed operations answer with one line.

A request that changes something runs at most once: its nonce is written to a
journal (the store) before it runs and its answer after, so a retry after a
timeout gets the first answer again, never a second alert, even across a daemon
restart; a request the daemon was running when it stopped is answered with an
error saying so. Requests that only read run again on a retry.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Final, Protocol

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from prometheus_client import CollectorRegistry, Counter

from rrn.node.control.channel import MAX_SKEW_MS, ControlReply, Request, Verifier, encode_reply
from rrn.node.home.clock import Clock
from rrn.protocol import subjects
from rrn.protocol.errors import ProtocolError, RrnError

__all__ = ["ControlServer", "Journal"]

logger = logging.getLogger(__name__)

Handler = Callable[[bytes], Awaitable[object]]
#: Nonces are kept twice as long as a request stays fresh.
_KEEP_MS = 2 * MAX_SKEW_MS


class Journal(Protocol):
    """Where the nonces of requests that change something outlive the daemon."""

    async def recent(self, since_ms: int) -> dict[bytes, tuple[int, bytes | None]]:
        """Nonce -> (request time, answer, or None if it never finished)."""
        ...

    async def begin(self, nonce: bytes, ts_ms: int) -> None:
        """Record a request about to run."""
        ...

    async def done(self, nonce: bytes, reply: bytes) -> None:
        """Record its answer."""
        ...

    async def prune(self, before_ms: int) -> None:
        """Forget requests older than this."""
        ...

    async def forget_answers(self) -> None:
        """Delete every answer kept (they are answered with _FORGOTTEN from then on)."""
        ...


class ControlServer:
    """Answers the CLI's requests for one node."""

    def __init__(
        self,
        *,
        key: bytes,
        handlers: dict[str, Handler],
        reads: Iterable[str],
        journal: Journal,
        registry: CollectorRegistry,
        rejected: Counter,
        clock: Clock,
    ) -> None:
        self._verifier = Verifier(key)
        self._handlers = handlers
        self._reads = frozenset(reads)
        self._journal = journal
        self._requests = Counter(
            "rrn_control_requests_total",
            "Control requests from the CLI, by operation and outcome.",
            ["op", "outcome"],
            registry=registry,
        )
        self._rejected = rejected
        self._clock = clock
        self._sub: Subscription | None = None
        #: Requests that change something, by nonce: (time, answer or None while running).
        self._seen: dict[bytes, tuple[int, bytes | None]] = {}
        #: Nonces the journal shows started before a restart and never answered.
        self._interrupted: set[bytes] = set()
        self.stopping = False

    async def start(self, nc: NatsClient, org: str) -> None:
        """Recall recent requests, then listen on the node's control subject."""
        self._seen = await self._journal.recent(self._clock.now_ms() - _KEEP_MS)
        self._interrupted = {n for n, (_, reply) in self._seen.items() if reply is None}
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
            request = self._verifier.check(msg.data, self._clock.now_ms(), reply=msg.reply)
        except ProtocolError as exc:
            self._requests.labels(op="unknown", outcome="refused").inc()
            self._rejected.labels(reason=str(exc.reason)).inc()
            logger.warning("refused a control request: %s", exc.reason)
            return
        reply = await self._answer(request)
        if reply is not None:
            with contextlib.suppress(NatsError):
                await msg.respond(reply)

    async def _answer(self, request: Request) -> bytes | None:
        """The answer to a request (None: another delivery of it is still running)."""
        if request.op in self._reads or request.op not in self._handlers:
            return await self._run(request)
        if request.nonce in self._interrupted:
            return encode_reply(ControlReply(ok=False, error=_INTERRUPTED))
        if request.nonce in self._seen:
            _, earlier = self._seen[request.nonce]
            self._requests.labels(op=request.op, outcome="repeated").inc()
            if earlier == b"":
                return encode_reply(ControlReply(ok=False, error=_FORGOTTEN))
            return earlier  # a retry: the first answer again (None: still running)
        try:
            await self._forget_old()
            await self._journal.begin(request.nonce, request.ts_ms)
        except RrnError as exc:  # a full disk: nothing runs that could not be journaled
            self._requests.labels(op=request.op, outcome="error").inc()
            return encode_reply(ControlReply(ok=False, error=str(exc)))
        self._seen[request.nonce] = (request.ts_ms, None)
        reply = await self._run(request)
        self._seen[request.nonce] = (request.ts_ms, reply)
        try:  # an answer holding secrets shown once (a plan's codes) is not kept on disk
            await self._journal.done(request.nonce, b"" if request.op in _UNKEPT else reply)
        except RrnError as exc:  # it ran: answer; only a retry after a restart is unsure
            logger.warning("could not journal a control answer: %s", exc)
        return reply

    async def _run(self, request: Request) -> bytes:
        handler = self._handlers.get(request.op)
        if handler is None:
            return encode_reply(ControlReply(ok=False, error=f"unknown operation {request.op!r}"))
        if self.stopping:
            return encode_reply(ControlReply(ok=False, error="the daemon is stopping"))
        try:
            result = await handler(request.args)
        except RrnError as exc:
            self._requests.labels(op=request.op, outcome="error").inc()
            return encode_reply(ControlReply(ok=False, error=str(exc)))
        except Exception:  # a bug must not leave the caller waiting 45 s for nothing
            logger.exception("control operation %s failed", request.op)
            self._requests.labels(op=request.op, outcome="error").inc()
            return encode_reply(
                ControlReply(ok=False, error="the daemon failed on this request (see its log)")
            )
        self._requests.labels(op=request.op, outcome="ok").inc()
        return encode_reply(ControlReply(ok=True), result)

    async def forget_answers(self) -> None:
        """Keep no answer, here or in the journal: one may hold an alert its origin deleted."""
        self._seen = {n: (ts, None if r is None else b"") for n, (ts, r) in self._seen.items()}
        await self._journal.forget_answers()

    async def _forget_old(self) -> None:
        horizon = self._clock.now_ms() - _KEEP_MS
        old = [n for n, (ts, _) in self._seen.items() if ts < horizon]
        if old:
            for nonce in old:
                del self._seen[nonce]
                self._interrupted.discard(nonce)
            await self._journal.prune(horizon)


_FORGOTTEN = (
    "the answer to this request is not kept (it held codes shown once, or an alert its origin "
    "deleted): check whether it took effect (e.g. rrn alert list, rrn checkin list) before "
    "asking again"
)
#: Operations whose answers hold secrets shown once (a check-in plan's codes): the
#: journal keeps only that they ran, so a retry after a restart is told the answer
#: is gone, and the codes never reach the disk.
_UNKEPT: Final = frozenset({"checkin.plan"})
_INTERRUPTED = (
    "the daemon stopped while it was handling this request: check whether it took effect "
    "(e.g. rrn alert list) before asking again"
)
