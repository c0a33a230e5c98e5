"""TLS: both clients against `net001-server --tls` with a certificate made
by openssl for this run."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

import pytest

from net001 import BinaryProtocolClient, ConnectionClosed, Pong, ProtocolError
from net001 import sync

from .conftest import Server, StartServer


@pytest.fixture
def tls_server(start_server: StartServer, tls_cert: tuple[Path, Path]) -> Server:
    cert, key = tls_cert
    return start_server("--tls", "--cert", str(cert), "--key", str(key), "--rate-limit", "0")


@pytest.fixture
def ctx(tls_cert: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_cert[0]))


async def test_async_over_tls(tls_server: Server, ctx: ssl.SSLContext) -> None:
    port = tls_server.port
    async with BinaryProtocolClient("127.0.0.1", port, ssl=ctx) as a, BinaryProtocolClient(
        "localhost", port, ssl=ctx
    ) as b:
        assert isinstance(await a.ping(), Pong)
        big = os.urandom(65535)
        assert await a.echo(big) == big
        results = await asyncio.gather(*(a.echo(b"%d" % i) for i in range(300)))
        assert results == [b"%d" % i for i in range(300)]
        await b.ping()
        for i in range(50):
            await a.broadcast(b"tls %d" % i)
        assert [await b.next_broadcast(10) for _ in range(50)] == [b"tls %d" % i for i in range(50)]
        assert a._writer is not None
        assert a._writer.get_extra_info("ssl_object") is not None


def test_sync_over_tls(tls_server: Server, ctx: ssl.SSLContext) -> None:
    with sync.BinaryProtocolClient("127.0.0.1", tls_server.port, ssl=ctx) as a, \
            sync.BinaryProtocolClient("localhost", tls_server.port, ssl=ctx) as b:
        assert isinstance(a.ping(), Pong)
        big = os.urandom(65535)
        assert a.echo(big) == big
        b.ping()
        for i in range(100):
            a.broadcast(b"s%d" % i)
        a.sync()
        assert [b.next_broadcast(10) for _ in range(100)] == [b"s%d" % i for i in range(100)]
        assert b.poll() == 0
        assert isinstance(a._sock, ssl.SSLSocket)


async def test_untrusted_certificate_is_refused(tls_server: Server) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        await BinaryProtocolClient("127.0.0.1", tls_server.port, ssl=True, timeout=10).connect()
    with pytest.raises(ssl.SSLCertVerificationError):
        sync.BinaryProtocolClient("127.0.0.1", tls_server.port, ssl=True, timeout=10).connect()


async def test_wrong_host_name_is_refused(tls_server: Server, ctx: ssl.SSLContext) -> None:
    c = BinaryProtocolClient(
        "127.0.0.1", tls_server.port, ssl=ctx, server_hostname="example.com", timeout=10
    )
    with pytest.raises(ssl.SSLCertVerificationError, match="example.com"):
        await c.connect()


async def test_plain_client_on_tls_port(tls_server: Server) -> None:
    async with BinaryProtocolClient("127.0.0.1", tls_server.port, timeout=20) as c:
        with pytest.raises((ProtocolError, ConnectionClosed)):
            await c.ping()
    with sync.BinaryProtocolClient("127.0.0.1", tls_server.port, timeout=20) as s:
        with pytest.raises((ProtocolError, ConnectionClosed)):
            s.ping()


async def test_tls_client_on_plain_port(server: Server, ctx: ssl.SSLContext) -> None:
    with pytest.raises(OSError):  # ssl.SSLError or a reset, not a hang
        await BinaryProtocolClient("127.0.0.1", server.port, ssl=ctx, timeout=20).connect()
    with pytest.raises(OSError):
        sync.BinaryProtocolClient("127.0.0.1", server.port, ssl=ctx, timeout=20).connect()


async def test_tls_server_killed_mid_request(tls_server: Server, ctx: ssl.SSLContext) -> None:
    async with BinaryProtocolClient("127.0.0.1", tls_server.port, ssl=ctx, timeout=60) as c:
        await c.ping()
        tls_server.pause()
        pending = asyncio.ensure_future(c.echo(b"x"))
        await asyncio.sleep(0.2)
        tls_server.kill()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(pending, 10)
