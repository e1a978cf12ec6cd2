"""The fault proxy between WAN devnet nodes, on real loopback sockets: what it does to
the bytes that cross it is what a profile or `rrn devnet fault` asks for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from rrn.node.devnet.faults import FaultProxy, Faults, ProxyPath
from rrn.node.devnet.wan import load_profile
from rrn.protocol.errors import ConfigError
from tests.procs import free_port


@asynccontextmanager
async def _echo_through(forward: Faults, back: Faults) -> AsyncIterator[FaultProxy]:
    """An echo server, and a proxy path in front of it."""

    handlers: set[asyncio.Task[None]] = set()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    path = ProxyPath("a>b", ("127.0.0.1", free_port()), ("127.0.0.1", port), forward, back)
    proxy = FaultProxy([path], seed=7)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


async def _connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*proxy.paths["a>b"].listen)


async def _round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    start = time.monotonic()
    writer.write(b"ping")
    await writer.drain()
    assert await reader.readexactly(4) == b"ping"
    return time.monotonic() - start


def test_delay_and_jitter_make_a_round_trip_and_keep_the_order() -> None:
    async def go() -> None:
        faults = Faults(delay_ms=150, jitter_ms=100)
        async with _echo_through(faults, faults) as proxy:
            reader, writer = await _connect(proxy)
            assert await _round_trip(reader, writer) >= 0.1  # 2 × (150 ± 100) ms at least
            sent = b"".join(b"%05d" % i for i in range(300))
            for i in range(300):  # many chunks, each with its own jitter
                writer.write(b"%05d" % i)
                await writer.drain()
                await asyncio.sleep(0.001)
            got = await asyncio.wait_for(reader.readexactly(len(sent)), 30)
            assert got == sent, "jitter never reorders what TCP keeps in order"
            writer.close()

    asyncio.run(go())


def test_a_one_way_cut_holds_what_is_sent_until_it_heals() -> None:
    async def go() -> None:
        async with _echo_through(Faults(), Faults()) as proxy:
            reader, writer = await _connect(proxy)
            await _round_trip(reader, writer)
            proxy.update("a>b", back=Faults(cut=True))  # the echo cannot come back
            writer.write(b"held")
            await writer.drain()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.readexactly(4), 1.0)
            proxy.update("a>b", back=Faults())
            assert await asyncio.wait_for(reader.readexactly(4), 5) == b"held"
            writer.close()

    asyncio.run(go())


def test_a_total_cut_drops_connections_and_refuses_new_ones_until_healed() -> None:
    async def go() -> None:
        async with _echo_through(Faults(), Faults()) as proxy:
            reader, writer = await _connect(proxy)
            await _round_trip(reader, writer)
            proxy.update("a>b", forward=Faults(cut=True), back=Faults(cut=True))
            assert await asyncio.wait_for(reader.read(10), 5) == b"", "the connection is dropped"
            writer.close()
            reader, writer = await _connect(proxy)
            assert await asyncio.wait_for(reader.read(10), 5) == b"", "and a new one refused"
            writer.close()
            proxy.update("a>b", forward=Faults(), back=Faults())
            reader, writer = await _connect(proxy)
            await _round_trip(reader, writer)
            writer.close()

    asyncio.run(go())


def test_bandwidth_loss_and_resets() -> None:
    async def go() -> None:
        slow = Faults(kbit_s=256)
        async with _echo_through(slow, Faults()) as proxy:
            reader, writer = await _connect(proxy)
            start = time.monotonic()
            writer.write(bytes(48_000))  # 384 kbit: at least 1.5 s at 256 kbit/s
            await writer.drain()
            await asyncio.wait_for(reader.readexactly(48_000), 30)
            assert time.monotonic() - start >= 1.4
            writer.close()
        lossy = Faults(loss=0.5)
        async with _echo_through(lossy, Faults()) as proxy:
            reader, writer = await _connect(proxy)
            for _ in range(12):
                await _round_trip(reader, writer)
            assert proxy.paths["a>b"].stalls >= 2, "about half the chunks stalled"
            writer.close()
        async with _echo_through(Faults(reset=1.0), Faults()) as proxy:
            reader, writer = await _connect(proxy)
            writer.write(b"x")
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                await asyncio.wait_for(reader.readexactly(1), 5)
            writer.close()
            assert proxy.paths["a>b"].resets == 1

    asyncio.run(go())


def test_a_wan_profile_is_checked_before_anything_is_made(tmp_path: Path) -> None:
    cities = load_profile(None)
    assert cities.spec("jakarta-pb", "lima-hr").rtt_ms >= 300, "Lima-Jakarta is over 300 ms"
    assert 200 <= cities.spec("lima-hr", "nairobi-dl").rtt_ms <= 300
    for text, named in (
        ("[default]\nrtt = 80\n", "rtt"),
        ("[default]\nloss = 0.9\n", "loss"),
        ("[[link]]\nbetween = ['lima-hr']\n", "between"),
        ("seed = ", "TOML"),
    ):
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=named):
            load_profile(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_profile(tmp_path / "missing.toml")
