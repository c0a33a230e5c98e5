"""Locust load test for a NET-001 server.

    locust -f python/locustfile.py --host tcp://localhost:5000 --headless -u 50 -r 10 -t 30s

Each user holds one connection (the blocking client in net001.sync: locust
runs users as gevent greenlets, whose patched sockets make its waits
cooperative) and, between short pauses, sends PING (weight 3), ECHO of a
random payload (weight 2, 1..4096 bytes) and BROADCAST (weight 1, 16..512
bytes). Every request goes through locust's request event, with its
latency in ms; a ServerError, a timeout or a lost connection is a failure.
A lost connection is reopened by the next task (reported as CONNECT).

--host: tcp://HOST:PORT, tls://HOST:PORT (certificate checked against the
system's CAs, or the PEM file in $NET001_TLS_CA) or HOST:PORT.

BROADCAST has no reply: its time is the time to hand the frame to the
socket, and an ERROR the server sends about it (RATE_LIMITED,
AUTH_REQUIRED) arrives later; it is reported as a BROADCAST failure as soon
as the user sees it. Broadcasts the user receives from the others are kept
in a small queue (oldest dropped) and counted, not reported.
"""

from __future__ import annotations

import os
import random
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from locust import User, between, task

try:
    from net001 import ServerError
    from net001.codec import FrameType
    from net001.sync import BinaryProtocolClient
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from net001 import ServerError
    from net001.codec import FrameType
    from net001.sync import BinaryProtocolClient

REQUEST_TYPE = "net001"
TIMEOUT = 10.0


def parse_host(host: str | None) -> tuple[str, int, ssl.SSLContext | None]:
    """tcp://h:p, tls://h:p or h:p to (host, port, TLS context or None)."""
    if not host:
        raise ValueError("no host: give --host tcp://HOST:PORT")
    url = urlsplit(host if "://" in host else "tcp://" + host)
    if url.scheme not in ("tcp", "tls") or not url.hostname or url.port is None:
        raise ValueError(f"--host {host!r}: expected tcp://HOST:PORT or tls://HOST:PORT")
    ctx = None
    if url.scheme == "tls":
        ctx = ssl.create_default_context(cafile=os.environ.get("NET001_TLS_CA") or None)
    return url.hostname, url.port, ctx


class Net001User(User):
    """A locust user with one net001 connection; subclasses add tasks."""

    abstract = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.client: BinaryProtocolClient | None = None
        self.address = parse_host(self.host)

    def on_start(self) -> None:
        self.connected()

    def on_stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def connected(self) -> BinaryProtocolClient | None:
        """The open client, reconnecting (reported as CONNECT) if needed."""
        c = self.client
        if c is not None and not c.closed:
            return c
        host, port, ctx = self.address
        c = BinaryProtocolClient(host, port, ssl=ctx, timeout=TIMEOUT, broadcast_queue=64)
        start = time.perf_counter()
        try:
            c.connect()
        except Exception as e:  # refused, TLS, timeout: a failed CONNECT
            self.report("CONNECT", start, 0, e)
            return None
        self.report("CONNECT", start, 0, None)
        self.client = c
        return c

    def report(self, name: str, start: float, length: int, exc: BaseException | None) -> None:
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=(time.perf_counter() - start) * 1000.0,
            response_length=length,
            response=None,
            context={},
            exception=exc,
        )

    def call(self, name: str, fn: Callable[[BinaryProtocolClient], int]) -> None:
        """Run one request, timed, and report it; fn returns the bytes."""
        c = self.connected()
        if c is None:
            return
        # ERRORs about earlier BROADCASTs, so that they are not raised by
        # (and charged to) this request.
        for e in c.take_errors():
            self.report_late_error(e)
        start = time.perf_counter()
        try:
            length = fn(c)
        except ServerError as e:
            if e.request in (FrameType.BROADCAST, FrameType.DATA):
                self.report_late_error(e)  # raised before this one was sent
                return
            self.report(name, start, 0, e)
        except Exception as e:  # ConnectionClosed, TimeoutError, ProtocolError...
            self.report(name, start, 0, e)
        else:
            self.report(name, start, length, None)

    def report_late_error(self, e: ServerError) -> None:
        name = FrameType(e.request).name if e.request is not None else "ERROR"
        self.report(name, time.perf_counter(), 0, e)


class ProtocolUser(Net001User):
    """PING, ECHO random payloads, BROADCAST."""

    wait_time = between(0.01, 0.1)

    @task(3)
    def ping(self) -> None:
        self.call("PING", lambda c: (c.ping(), 8)[1])

    @task(2)
    def echo(self) -> None:
        payload = random.randbytes(random.randint(1, 4096))

        def run(c: BinaryProtocolClient) -> int:
            reply = c.echo(payload)
            if reply != payload:  # the client checks too; be explicit
                raise AssertionError("ECHO_REPLY differs from the ECHO")
            return len(reply)

        self.call("ECHO", run)

    @task(1)
    def broadcast(self) -> None:
        payload = random.randbytes(random.randint(16, 512))

        def run(c: BinaryProtocolClient) -> int:
            c.broadcast(payload)
            return len(payload)

        self.call("BROADCAST", run)
