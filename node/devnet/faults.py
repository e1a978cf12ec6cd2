"""A fault-injecting TCP proxy between a devnet's nodes: latency, jitter, bandwidth,
loss, resets and partitions.

Owns the paths between nodes when a devnet is made to look like the networks
members really sit on (`rrn devnet up --wan`, the WAN tests and the soak). Kernels
without `netem` (these machines have none) cannot delay or drop packets, so the
faults are injected in user space, in the spirit of Toxiproxy: the dialling side
of each direct link reaches its peer through one listening port here (its
`[federation.dial_overrides]`), and each direction of that path has its faults:

- `delay_ms` ± `jitter_ms`: every chunk read is delivered that much later, never
  before an earlier one (TCP keeps order);
- `kbit_s`: delivered no faster than that (0: no limit);
- `loss`: the chance per chunk that the direction stalls for 200 ms–1 s, which is
  what a lost segment costs TCP (it retransmits); `reset`: the chance per chunk
  that the connection is reset;
- `cut`: nothing passes that way (what was sent waits, as on a dead route, and
  the links' own pings find out); a path cut both ways drops its connections
  and refuses new ones.

Faults change at run time (`update`, or SIGHUP on the proxy process after its
state file changed: `rrn devnet fault`). Random draws come from one seeded
generator, so a schedule of faults replays alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from dataclasses import dataclass, field, replace
from typing import Final

__all__ = ["FaultProxy", "Faults", "ProxyPath"]

#: Chunks waiting in one direction before the proxy stops reading (TCP backpressure).
_QUEUE: Final = 256
_CHUNK: Final = 16384


@dataclass(frozen=True)
class Faults:
    """What one direction of a path does to what crosses it."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    kbit_s: float = 0.0
    loss: float = 0.0
    reset: float = 0.0
    cut: bool = False

    def with_rtt(self, rtt_ms: float) -> Faults:
        """These faults with half of a round trip as this direction's delay."""
        return replace(self, delay_ms=rtt_ms / 2)


@dataclass
class ProxyPath:
    """One direct link's path: the dialler connects to `listen`, which reaches `target`."""

    name: str
    listen: tuple[str, int]
    target: tuple[str, int]
    forward: Faults = field(default_factory=Faults)  # dialler → acceptor
    back: Faults = field(default_factory=Faults)  # acceptor → dialler
    #: What crossed and what was done to it (for reports).
    bytes: int = 0
    stalls: int = 0
    resets: int = 0
    _conns: set[_Conn] = field(default_factory=set, repr=False)
    #: Set (and replaced) whenever the faults change: what waits on a cut looks again.
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def severed(self) -> bool:
        return self.forward.cut and self.back.cut


class _Conn:
    """One proxied connection: both writers, so a reset or a cut closes both ends."""

    def __init__(self, a: asyncio.StreamWriter, b: asyncio.StreamWriter) -> None:
        self.writers = (a, b)

    def abort(self) -> None:
        for w in self.writers:
            w.transport.abort()


class FaultProxy:
    """Serves every path of a devnet from one event loop."""

    def __init__(self, paths: list[ProxyPath], *, seed: int = 0) -> None:
        self.paths = {p.name: p for p in paths}
        self.rng = random.Random(seed)
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        """Listen on every path's port."""
        for path in self.paths.values():
            server = await asyncio.start_server(functools.partial(self._accept, path), *path.listen)
            self._servers.append(server)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for path in self.paths.values():
            for conn in list(path._conns):
                conn.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()

    def update(
        self, name: str, *, forward: Faults | None = None, back: Faults | None = None
    ) -> None:
        """New faults for one path, at once; a path cut both ways drops its connections."""
        path = self.paths[name]
        path.forward = forward if forward is not None else path.forward
        path.back = back if back is not None else path.back
        path._changed.set()
        path._changed = asyncio.Event()
        if path.severed:
            for conn in list(path._conns):
                conn.abort()

    async def _accept(
        self, path: ProxyPath, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if path.severed:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*path.target)
        except OSError:
            writer.transport.abort()
            return
        conn = _Conn(writer, up_writer)
        path._conns.add(conn)
        try:
            await asyncio.gather(
                self._direction(path, True, reader, up_writer, conn),
                self._direction(path, False, up_reader, writer, conn),
            )
        finally:
            path._conns.discard(conn)
            conn.abort()

    async def _direction(
        self,
        path: ProxyPath,
        forward: bool,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: _Conn,
    ) -> None:
        """Read, stamp each chunk with when it may arrive, deliver in order."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUE)
        deliver = asyncio.create_task(self._deliver(path, forward, queue, writer))
        loop = asyncio.get_running_loop()
        last = free = 0.0
        try:
            while data := await reader.read(_CHUNK):
                f = path.forward if forward else path.back
                if f.reset and self.rng.random() < f.reset:
                    path.resets += 1
                    conn.abort()
                    break
                at = loop.time() + max(0.0, f.delay_ms + self._jitter(f)) / 1000
                if f.loss and self.rng.random() < f.loss:
                    path.stalls += 1
                    at += self.rng.uniform(0.2, 1.0)
                at = max(at, last)
                if f.kbit_s:
                    free = max(free, at) + len(data) * 8 / (f.kbit_s * 1000)
                    at = free
                last = at
                await queue.put((at, data))
        except (OSError, ConnectionError):
            pass
        finally:
            await queue.put((0.0, b""))  # the end: close once what is queued is out
            with contextlib.suppress(Exception):
                await deliver

    def _jitter(self, f: Faults) -> float:
        return self.rng.uniform(-f.jitter_ms, f.jitter_ms) if f.jitter_ms else 0.0

    async def _deliver(
        self,
        path: ProxyPath,
        forward: bool,
        queue: asyncio.Queue[tuple[float, bytes]],
        writer: asyncio.StreamWriter,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                at, data = await queue.get()
                if not data:
                    break
                while (path.forward if forward else path.back).cut:
                    await path._changed.wait()  # held, as on a dead route
                if (wait := at - loop.time()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                path.bytes += len(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, ConnectionError, RuntimeError):
            writer.transport.abort()
