"""The asyncio client against a real server."""

from __future__ import annotations

import asyncio
import random
import signal
import time

import pytest

from net001 import BinaryProtocolClient, ConnectionClosed, Pong
from net001.codec import FrameType

from .conftest import Server, StartServer


def client(server: Server, **kw: object) -> BinaryProtocolClient:
    return BinaryProtocolClient("127.0.0.1", server.port, **kw)  # type: ignore[arg-type]


async def wait_for(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_ping_echo_and_context_manager(server: Server) -> None:
    async with client(server) as c:
        pong = await c.ping()
        assert isinstance(pong, Pong)
        assert 0 < pong.latency_ms < 10_000
        assert await c.echo(b"hi") == b"hi"
        assert await c.echo(b"") == b""
        rng = random.Random(3)
        for size in (1, 1000, 4096, 65535):
            data = rng.randbytes(size)
            assert await c.echo(data) == data
        assert await c.echo(bytearray(b"ba")) == b"ba"
        await c.send_data(b"some data")
        assert isinstance(await c.sync(), Pong)
        assert not c.closed
    assert c.closed
    with pytest.raises(ConnectionClosed):
        await c.ping()


async def test_bad_arguments_leave_the_connection_usable(server: Server) -> None:
    async with client(server) as c:
        with pytest.raises(ValueError):
            await c.echo(bytes(65536))
        with pytest.raises(ValueError):
            await c.broadcast(bytes(65536))
        with pytest.raises(TypeError):
            await c.echo("text")  # type: ignore[arg-type]
        assert await c.echo(b"still fine") == b"still fine"
    with pytest.raises(ValueError):
        BinaryProtocolClient("127.0.0.1", 0)
    with pytest.raises(ValueError):
        BinaryProtocolClient("127.0.0.1", 5000, timeout=0)


async def test_pipelined_requests_match_in_order(server: Server) -> None:
    rng = random.Random(5)
    async with client(server) as c:
        payloads = [rng.randbytes(rng.randint(0, 3000)) for _ in range(400)]
        calls = []
        for i, p in enumerate(payloads):
            calls.append(c.echo(p))
            if i % 10 == 0:
                calls.append(c.ping())
        t = time.monotonic()
        results = await asyncio.gather(*calls)
        elapsed = time.monotonic() - t
        echoes = [r for r in results if isinstance(r, bytes)]
        pongs = [r for r in results if isinstance(r, Pong)]
        assert echoes == payloads
        assert len(pongs) == 40
        # all in flight at once: no pong waited for the whole batch twice
        assert max(p.latency_ms for p in pongs) <= elapsed * 1000 + 1


async def test_concurrent_tasks_share_a_connection(server: Server) -> None:
    async with client(server) as c:

        async def worker(n: int) -> int:
            for i in range(50):
                data = f"{n}:{i}".encode()
                assert await c.echo(data) == data
            return n

        assert sorted(await asyncio.gather(*(worker(n) for n in range(20)))) == list(range(20))


async def test_broadcast_between_two_clients(server: Server) -> None:
    async with client(server) as a, client(server) as b:
        await b.ping()  # b is registered before a sends
        sent = [f"msg {i}".encode() * (i % 7) for i in range(200)]
        for m in sent:
            await a.broadcast(m)
        got = []
        async for m in b:
            got.append(m)
            if len(got) == len(sent):
                break
        assert got == sent  # in order, nothing lost
        await a.sync()
        assert a._session.take_broadcast() is None  # the sender gets none back
        assert b.dropped_broadcasts == 0


async def test_broadcasts_interleave_with_replies(server: Server) -> None:
    async with client(server) as a, client(server) as b:
        await b.ping()
        n = 300

        async def blast() -> None:
            for i in range(n):
                await a.broadcast(i.to_bytes(4, "big"))

        async def requests() -> None:
            for i in range(200):
                data = b"r%d" % i
                assert await b.echo(data) == data
                await b.ping()

        await asyncio.gather(blast(), requests())
        got = [await b.next_broadcast(timeout=10) for _ in range(n)]
        assert got == [i.to_bytes(4, "big") for i in range(n)]


async def test_broadcast_queue_is_bounded(server: Server) -> None:
    async with client(server) as a, client(server, broadcast_queue=10) as b:
        await b.ping()
        for i in range(100):
            await a.broadcast(bytes([i]))
        await a.sync()
        await wait_for(lambda: b.dropped_broadcasts + len(b._session.broadcasts) == 100)
        assert b.dropped_broadcasts == 90
        assert [await b.next_broadcast(1) for _ in range(10)] == [bytes([i]) for i in range(90, 100)]
        with pytest.raises(TimeoutError):
            await b.next_broadcast(timeout=0.05)
        assert isinstance(await b.ping(), Pong)  # replies were never blocked


async def test_iterator_ends_on_close_and_raises_on_loss(start_server: StartServer) -> None:
    srv = start_server("--rate-limit", "0", "--global-rate-limit", "0")
    c = client(srv)
    await c.connect()
    got: list[bytes] = []

    async def reader() -> None:
        async for m in c.broadcasts():
            got.append(m)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    await c.close()
    await asyncio.wait_for(task, 5)  # ends cleanly
    assert got == []

    c2 = client(srv)
    await c2.connect()
    await c2.ping()
    srv.signal(signal.SIGTERM)  # SHUTTING_DOWN, then close
    with pytest.raises(ConnectionClosed) as ei:
        async for _ in c2.broadcasts():
            pass
    assert ei.value.server_error is not None
    assert ei.value.server_error.name == "SHUTTING_DOWN"
    with pytest.raises(ConnectionClosed):
        await c2.ping()
    await c2.close()
    srv.proc.wait(20)  # type: ignore[union-attr]
    assert srv.proc.returncode == 0  # type: ignore[union-attr]


async def test_timeout_then_late_reply_is_dropped(start_server: StartServer) -> None:
    srv = start_server("--rate-limit", "0", "--global-rate-limit", "0")
    async with client(srv, timeout=0.3) as c:
        await c.ping()
        srv.pause()
        try:
            t = time.monotonic()
            with pytest.raises(TimeoutError):
                await c.echo(b"late")
            assert time.monotonic() - t < 3
        finally:
            srv.resume()
        # the late ECHO_REPLY arrives first and is dropped; this gets its own
        c.timeout = 20
        assert await c.echo(b"on time") == b"on time"
        assert c.late_replies == 1


async def test_cancelled_request_does_not_break_the_stream(server: Server) -> None:
    async with client(server) as c:
        tasks = [asyncio.create_task(c.echo(b"x%d" % i)) for i in range(50)]
        await asyncio.sleep(0)
        for t in tasks[::2]:
            t.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        for i, r in enumerate(done):
            if not isinstance(r, asyncio.CancelledError):
                assert r == b"x%d" % i
        assert await c.echo(b"after") == b"after"


async def test_connect_errors(start_server: StartServer) -> None:
    srv = start_server()
    port = srv.port
    srv.stop()
    with pytest.raises(ConnectionRefusedError):
        await BinaryProtocolClient("127.0.0.1", port).connect()
    c = BinaryProtocolClient("127.0.0.1", port)
    with pytest.raises(ConnectionClosed, match="connect"):
        await c.ping()
    with pytest.raises(ConnectionClosed):
        await c.next_broadcast()
    await c.close()  # harmless


async def test_server_killed_mid_request(start_server: StartServer) -> None:
    srv = start_server()
    async with client(srv, timeout=60) as c:
        await c.ping()
        srv.pause()  # the request is sent and never answered
        pending = asyncio.gather(c.echo(b"a" * 1000), c.ping(), return_exceptions=True)
        await asyncio.sleep(0.2)
        t = time.monotonic()
        srv.kill()
        results = await asyncio.wait_for(pending, 10)
        assert time.monotonic() - t < 5  # not the 60 s timeout
        assert all(isinstance(r, ConnectionClosed) for r in results), results
        with pytest.raises(ConnectionClosed):
            await c.ping()
        with pytest.raises(ConnectionClosed):
            await c.broadcast(b"x")
        assert c.closed


async def test_many_clients(server: Server) -> None:
    clients = [client(server) for _ in range(50)]
    await asyncio.gather(*(c.connect() for c in clients))
    try:
        pongs = await asyncio.gather(*(c.ping() for c in clients))
        assert all(isinstance(p, Pong) for p in pongs)
        await clients[0].broadcast(b"all")
        got = await asyncio.gather(*(c.next_broadcast(10) for c in clients[1:]))
        assert got == [b"all"] * 49
    finally:
        await asyncio.gather(*(c.close() for c in clients))


def test_frame_type_names() -> None:
    assert FrameType.BROADCAST == 5 and FrameType(0xFF).name == "ERROR"
