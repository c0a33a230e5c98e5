"""Authentication and server ERRORs, with both clients, against real
servers started with the flags that provoke them."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest

from net001 import (
    AuthError,
    BinaryProtocolClient,
    ConnectionClosed,
    FrameType,
    Pong,
    ProtocolError,
    ServerClosedError,
    ServerError,
)
from net001 import sync

from .conftest import USERS, StartServer


def aclient(port: int, **kw: object) -> BinaryProtocolClient:
    return BinaryProtocolClient("127.0.0.1", port, **kw)  # type: ignore[arg-type]


def sclient(port: int, **kw: object) -> sync.BinaryProtocolClient:
    return sync.BinaryProtocolClient("127.0.0.1", port, **kw)  # type: ignore[arg-type]


# ---- authentication ---------------------------------------------------------


async def test_auth_gates_broadcast_async(start_server: StartServer, auth_file: Path) -> None:
    srv = start_server("--auth-file", str(auth_file), "--rate-limit", "0")
    async with aclient(srv.port) as a, aclient(srv.port) as b, aclient(srv.port) as anon:
        # Not authenticated: the BROADCAST is refused; the ping after it is
        # fine and the refusal is raised by the next call.
        await a.broadcast(b"too early")
        assert isinstance(await a.ping(), Pong)
        with pytest.raises(ServerError) as ei:
            await a.ping()
        e = ei.value
        assert (e.code, e.name, e.request, e.closes) == (7, "AUTH_REQUIRED", FrameType.BROADCAST, False)
        await a.send_data(b"data too")
        with pytest.raises(ServerError) as ei:
            await a.sync()
        assert ei.value.name == "AUTH_REQUIRED" and ei.value.request == FrameType.DATA

        sid_a = await a.auth("alice", USERS["alice"])
        sid_b = await b.auth(b"bob", USERS["bob"].encode())
        assert len(sid_a) == 16 and sid_a != bytes(16) and sid_a != sid_b
        await anon.ping()
        await a.broadcast(b"hello bob")
        await a.send_data(b"accepted")
        await a.sync()  # no error now
        assert await b.next_broadcast(timeout=10) == b"hello bob"
        # only authenticated connections receive broadcasts
        await b.sync()
        with pytest.raises(TimeoutError):
            await anon.next_broadcast(timeout=0.2)


async def test_auth_failures_async(start_server: StartServer, auth_file: Path) -> None:
    srv = start_server("--auth-file", str(auth_file))
    async with aclient(srv.port) as c:
        await c.auth("alice", USERS["alice"])
        with pytest.raises(AuthError, match="alice"):
            await c.auth("alice", "wrong")
        # a failed AUTH ends the earlier success
        await c.broadcast(b"x")
        with pytest.raises(ServerError, match="AUTH_REQUIRED"):
            await c.sync()
        with pytest.raises(AuthError):
            await c.auth("nobody", "x")
        assert isinstance(await c.ping(), Pong)
        # the third failure: AUTH_REPLY (failure), then AUTH_FAILED and close
        with pytest.raises(AuthError):
            await c.auth("alice", "wrong again")
        with pytest.raises(ConnectionClosed) as ei:
            await c.next_broadcast(timeout=10)
        assert ei.value.server_error is not None
        assert ei.value.server_error.name == "AUTH_FAILED"
        with pytest.raises(ConnectionClosed, match="AUTH_FAILED"):
            await c.ping()


def test_auth_sync_client(start_server: StartServer, auth_file: Path) -> None:
    srv = start_server("--auth-file", str(auth_file))
    with sclient(srv.port) as a, sclient(srv.port) as b:
        a.broadcast(b"refused")
        with pytest.raises(ServerError) as ei:
            a.sync()
        assert ei.value.name == "AUTH_REQUIRED" and ei.value.request == FrameType.BROADCAST
        with pytest.raises(AuthError):
            a.auth("alice", "nope")
        assert len(a.auth("alice", USERS["alice"])) == 16
        b.auth("bob", USERS["bob"])
        a.broadcast(b"hi")
        a.sync()
        assert b.next_broadcast(timeout=10) == b"hi"
        with pytest.raises(ValueError):
            a.auth("x" * 65, "t")


async def test_auth_without_auth_file_fails(start_server: StartServer) -> None:
    srv = start_server()
    async with aclient(srv.port) as c:
        for _ in range(4):  # never counted: the connection stays
            with pytest.raises(AuthError):
                await c.auth("alice", USERS["alice"])
        await c.broadcast(b"anyone may")
        await c.sync()


# ---- server errors ----------------------------------------------------------


async def test_rate_limited_requests_async(start_server: StartServer) -> None:
    srv = start_server("--rate-limit", "5", "--global-rate-limit", "0")
    async with aclient(srv.port) as c:
        results = await asyncio.gather(*(c.ping() for _ in range(30)), return_exceptions=True)
        ok = [r for r in results if isinstance(r, Pong)]
        errs = [r for r in results if not isinstance(r, Pong)]
        assert 5 <= len(ok) <= 12, results
        for e in errs:
            assert isinstance(e, ServerError) and not isinstance(e, ConnectionClosed)
            assert (e.code, e.name, e.request) == (9, "RATE_LIMITED", FrameType.PING)
        await asyncio.sleep(1.2)
        assert isinstance(await c.ping(), Pong)


def test_rate_limited_broadcasts_sync(start_server: StartServer) -> None:
    # One frame a second: a stall of the test under 1 s changes nothing.
    srv = start_server("--rate-limit", "1", "--global-rate-limit", "0")
    with sclient(srv.port) as c:
        errs = []
        sent = 0
        while sent < 12:
            try:
                c.broadcast(b"b")
                sent += 1
            except ServerError as e:  # about an earlier one; this one is not sent
                errs.append(e)
        time.sleep(1.5)  # every ERROR is in; the bucket refilled
        errs += c.take_errors()
        assert c.take_errors() == []
        assert isinstance(c.sync(), Pong)
        assert 10 <= len(errs) <= 11, errs
        assert all(e.code == 9 and e.request == FrameType.BROADCAST for e in errs)


async def test_rate_limit_mixing_broadcasts_and_requests_never_hangs(
    start_server: StartServer,
) -> None:
    srv = start_server("--rate-limit", "1", "--global-rate-limit", "0")
    async with aclient(srv.port, timeout=30) as c:
        t = time.monotonic()
        for _ in range(5):
            await c.broadcast(b"b")
        r = await asyncio.gather(c.ping(), c.echo(b"e"), return_exceptions=True)
        assert time.monotonic() - t < 5
        assert all(isinstance(x, ServerError) and x.code == 9 for x in r), r
        await asyncio.sleep(1.5)
        raised = 0
        while True:
            try:
                await c.sync()
                break
            except ServerError as e:
                assert e.code == 9 and e.request == FrameType.BROADCAST
                raised += 1
        assert raised == 4  # 1 passed, 4 broadcasts and 2 requests refused


async def test_idle_timeout(start_server: StartServer) -> None:
    srv = start_server("--idle-timeout", "1")
    async with aclient(srv.port) as c:
        await c.ping()
        with pytest.raises(ConnectionClosed) as ei:
            await c.next_broadcast(timeout=15)
        assert ei.value.server_error is not None
        assert ei.value.server_error.name == "IDLE_TIMEOUT"
        assert ei.value.server_error.code == 11


async def test_server_full(start_server: StartServer) -> None:
    srv = start_server("--max-connections", "1")
    async with aclient(srv.port) as first:
        await first.ping()
        second = aclient(srv.port)
        await second.connect()
        with pytest.raises(ConnectionClosed) as ei:
            await second.ping()
        assert ei.value.server_error is not None
        assert ei.value.server_error.name == "SERVER_FULL"
        await second.close()
        with sclient(srv.port) as third:
            with pytest.raises(ConnectionClosed) as si:
                third.ping()
            assert si.value.server_error is not None
            assert si.value.server_error.name == "SERVER_FULL"
        assert isinstance(await first.ping(), Pong)


async def test_shutdown_fails_waiting_requests(start_server: StartServer) -> None:
    srv = start_server()
    async with aclient(srv.port, timeout=60) as c:
        await c.ping()
        srv.pause()
        task = asyncio.gather(c.ping(), c.echo(b"x"), return_exceptions=True)
        await asyncio.sleep(0.1)
        srv.resume()  # the pending requests are answered, then SHUTTING_DOWN
        t = time.monotonic()
        stopping = asyncio.create_task(asyncio.to_thread(srv.stop))
        results = await asyncio.wait_for(task, 20)
        assert await stopping == 0
        # the client closed at once: the server did not wait 5 s for it
        assert time.monotonic() - t < 4
        for r in results:
            assert isinstance(r, (Pong, bytes, ServerClosedError, ConnectionClosed)), r
        with pytest.raises(ConnectionClosed):
            await c.ping()


# ---- a peer that is not a net001 server --------------------------------------


def one_shot_peer(reply: bytes) -> tuple[int, threading.Thread]:
    """A listener that accepts one connection, reads a little, writes
    `reply` and closes."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)

    def run() -> None:
        conn, _ = ls.accept()
        conn.recv(100)
        conn.sendall(reply)
        conn.close()
        ls.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return ls.getsockname()[1], t


async def test_garbage_from_the_peer_async() -> None:
    port, t = one_shot_peer(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    async with aclient(port) as c:
        with pytest.raises(ProtocolError, match="bad magic"):
            await c.ping()
        with pytest.raises(ConnectionClosed, match="protocol error"):
            await c.ping()
    t.join(5)


def test_peer_closes_mid_frame_sync() -> None:
    port, t = one_shot_peer(b"\xde\xad\xbe\xef\x01\x02\x00\x08\x00")
    with sclient(port, timeout=30) as c:
        with pytest.raises(ConnectionClosed, match="middle of a frame"):
            c.ping()
    t.join(5)
