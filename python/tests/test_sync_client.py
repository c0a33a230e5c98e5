"""The blocking client against a real server."""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest

from net001 import ConnectionClosed, Pong
from net001.sync import BinaryProtocolClient

from .conftest import Server, StartServer


def client(server: Server, **kw: object) -> BinaryProtocolClient:
    return BinaryProtocolClient("127.0.0.1", server.port, **kw)  # type: ignore[arg-type]


def test_ping_echo_data(server: Server) -> None:
    with client(server) as c:
        pong = c.ping()
        assert isinstance(pong, Pong) and 0 < pong.latency_ms < 10_000
        rng = random.Random(9)
        for size in (0, 1, 2, 100, 5000, 65535):
            data = rng.randbytes(size)
            assert c.echo(data) == data
        c.send_data(b"d" * 100)
        assert isinstance(c.sync(), Pong)
        with pytest.raises(ValueError):
            c.echo(bytes(65536))
        assert c.echo(b"ok") == b"ok"
        assert c.fileno() >= 0
    assert c.closed and c.fileno() == -1
    with pytest.raises(ConnectionClosed):
        c.ping()
    c.close()  # twice is fine


def test_many_requests(server: Server) -> None:
    with client(server) as c:
        for i in range(3000):
            data = i.to_bytes(4, "big")
            assert c.echo(data) == data


def test_broadcast_between_two_clients(server: Server) -> None:
    with client(server) as a, client(server) as b:
        b.ping()
        sent = [b"m%d" % i for i in range(300)]
        for m in sent:
            a.broadcast(m)
        got = []
        for m in b:
            got.append(m)
            if len(got) == len(sent):
                break
        assert got == sent
        a.sync()
        assert a.poll() == 0  # the sender gets none back


def test_broadcasts_queued_while_waiting_for_replies(server: Server) -> None:
    with client(server) as a, client(server) as b:
        b.ping()
        for i in range(100):
            a.broadcast(bytes([i]))
        a.sync()
        # b's requests read the broadcasts that arrived in front of replies
        deadline = time.monotonic() + 10
        while b.poll() < 100:
            assert time.monotonic() < deadline
            assert b.echo(b"e") == b"e"
        assert list(b.broadcasts(timeout=0.05)) == [bytes([i]) for i in range(100)]


def test_bounded_queue_and_sender_that_never_waits(server: Server) -> None:
    with client(server) as a, client(server, broadcast_queue=5) as b:
        b.ping()
        for i in range(50):
            a.broadcast(bytes([i]))
        a.sync()
        deadline = time.monotonic() + 10
        while b.poll() + b.dropped_broadcasts < 50:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert b.dropped_broadcasts == 45
        assert [b.next_broadcast(1) for _ in range(5)] == [bytes([i]) for i in range(45, 50)]
        with pytest.raises(TimeoutError):
            b.next_broadcast(timeout=0.05)
        # b only broadcasts now: each broadcast() also takes in what a sends
        for i in range(20):
            a.broadcast(b"x")
            b.broadcast(b"y")
        assert isinstance(b.sync(), Pong)


def test_timeout_then_late_reply_is_dropped(start_server: StartServer) -> None:
    srv = start_server()
    with client(srv, timeout=0.3) as c:
        c.ping()
        srv.pause()
        try:
            t = time.monotonic()
            with pytest.raises(TimeoutError):
                c.ping()
            assert time.monotonic() - t < 3
        finally:
            srv.resume()
        c.timeout = 20
        assert c.echo(b"x") == b"x"
        assert c.late_replies == 1


def test_server_killed_mid_request(start_server: StartServer) -> None:
    srv = start_server()
    c = client(srv, timeout=60)
    c.connect()
    c.ping()
    srv.pause()
    threading.Timer(0.3, srv.kill).start()
    t = time.monotonic()
    with pytest.raises(ConnectionClosed):
        c.echo(b"never answered")
    assert time.monotonic() - t < 10
    with pytest.raises(ConnectionClosed):
        c.ping()
    with pytest.raises(ConnectionClosed):
        c.broadcast(b"x")
    c.close()


def test_shutdown_is_a_server_closed_error(start_server: StartServer) -> None:
    srv = start_server()
    c = client(srv)
    c.connect()
    c.ping()
    srv.signal(signal.SIGTERM)
    with pytest.raises(ConnectionClosed) as ei:
        c.next_broadcast(timeout=20)
    assert ei.value.server_error is not None
    assert ei.value.server_error.code == 13
    c.close()
    srv.proc.wait(20)  # type: ignore[union-attr]
    assert srv.proc.returncode == 0  # type: ignore[union-attr]


def test_connect_errors(start_server: StartServer) -> None:
    srv = start_server()
    port = srv.port
    srv.stop()
    with pytest.raises(ConnectionRefusedError):
        BinaryProtocolClient("127.0.0.1", port).connect()
    c = BinaryProtocolClient("127.0.0.1", port)
    with pytest.raises(ConnectionClosed, match="connect"):
        c.ping()
