"""The blocking client: ``from net001.sync import BinaryProtocolClient``.

The same methods as the asyncio client, without ``await``, on a plain
socket: for scripts, and for locust (gevent patches the socket module, so
the waits here yield to other greenlets). One thread (or greenlet) at a
time per client; requests are not pipelined.

::

    with BinaryProtocolClient("localhost", 5000) as c:
        print(c.ping().latency_ms)
        c.broadcast(b"hello")

The socket is read only while a call waits (for its reply, or in
:meth:`next_broadcast` / :meth:`poll`); ``broadcast()`` and ``send_data()``
also read whatever has already arrived, without waiting, so a client that
only sends keeps draining what the server sends it. Broadcasts received
meanwhile are queued (bounded, oldest dropped first; see
:mod:`net001.session`).
"""

from __future__ import annotations

import socket
import ssl as _ssl
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Callable, cast

from .errors import ConnectionClosed, ServerError
from .session import DEFAULT_TIMEOUT, READ_SIZE, ClientBase, ClientSession, Pong, Request

__all__ = ["BinaryProtocolClient", "DEFAULT_TIMEOUT"]


class BinaryProtocolClient(ClientBase):
    """One NET-001 connection over a blocking socket.

    Arguments and errors as for :class:`net001.BinaryProtocolClient`; the
    timeout also bounds each send.
    """

    def _setup(self) -> None:
        self._sock: socket.socket | None = None

    # ---- connection ---------------------------------------------------

    def connect(self) -> None:
        """Open the connection (TCP, then TLS if asked). Raises OSError
        (ConnectionRefusedError, ssl.SSLError, ...) or TimeoutError."""
        if self._sock is not None or self._session.failure is not None:
            raise RuntimeError("connect() was already called (a client connects once)")
        ctx = self._ssl_context()
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ctx is not None:
                sock = ctx.wrap_socket(sock, server_hostname=self.server_hostname or self.host)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def close(self) -> None:
        """Close the connection; safe to call more than once."""
        self._session.close()
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            if isinstance(sock, _ssl.SSLSocket):
                sock.settimeout(1.0)
                sock.unwrap()
        except (OSError, ValueError):
            pass
        finally:
            sock.close()

    def __enter__(self) -> BinaryProtocolClient:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def fileno(self) -> int:
        """The socket's descriptor (for select/poll), -1 when closed."""
        return self._sock.fileno() if self._sock is not None else -1

    # ---- requests -----------------------------------------------------

    def ping(self) -> Pong:
        """PING; returns the Pong (``latency_ms``)."""
        return cast(Pong, self._request(ClientSession.ping))

    def echo(self, data: bytes) -> bytes:
        """ECHO ``data``; returns the reply's payload."""
        return cast(bytes, self._request(lambda s: s.echo(data)))

    def auth(self, user: str | bytes, token: str | bytes) -> bytes:
        """AUTH; returns the 16-byte session id, raises AuthError when
        refused."""
        return cast(bytes, self._request(lambda s: s.auth(user, token)))

    def broadcast(self, data: bytes) -> None:
        """Send a BROADCAST (no reply). A refusal is raised by a later
        call, as a ServerError whose ``request`` is BROADCAST."""
        self._send_unanswered(lambda s: s.broadcast(data))

    def send_data(self, data: bytes) -> None:
        """Send a DATA frame (no reply); refusals as for broadcast()."""
        self._send_unanswered(lambda s: s.data(data))

    def sync(self) -> Pong:
        """A PING round trip; raises the ERROR the server sent about an
        earlier BROADCAST or DATA, if any."""
        pong = self.ping()
        self._session.check()
        return pong

    def take_errors(self) -> list[ServerError]:
        """The ERRORs the server sent about earlier BROADCAST/DATA frames and
        no call has raised yet, oldest first. Taking them means later calls
        do not raise them. Reads what has arrived first, without waiting."""
        self._read_available()
        return self._session.take_errors()

    # ---- broadcasts ---------------------------------------------------

    def poll(self) -> int:
        """Read what has arrived without waiting; returns how many
        broadcasts are queued."""
        if self._sock is not None:
            self._read_available()
        return len(self._session.broadcasts)

    def next_broadcast(self, timeout: float | None = None) -> bytes:
        """The oldest received broadcast's payload, waiting up to
        ``timeout`` seconds (None: for ever). Raises TimeoutError, or
        ConnectionClosed once the connection has ended and nothing is
        queued."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            p = self._session.take_broadcast()
            if p is not None:
                return p
            if self._session.failure is not None:
                raise self._session.closed_error()
            if self._sock is None:
                raise ConnectionClosed("not connected: call connect() first")
            self._read_once(deadline)

    def broadcasts(self, timeout: float | None = None) -> Iterator[bytes]:
        """Received broadcast payloads, in arrival order. Ends when the
        client is closed, or when none arrives within ``timeout`` seconds
        (None: waits for ever); raises ConnectionClosed when the connection
        is lost otherwise."""
        while True:
            try:
                yield self.next_broadcast(timeout)
            except TimeoutError:
                return
            except ConnectionClosed:
                if self._session.closed_by_client:
                    return
                raise

    def __iter__(self) -> Iterator[bytes]:
        return self.broadcasts()

    # ---- internals ----------------------------------------------------

    def _need_open(self) -> None:
        if self._sock is None and self._session.failure is None:
            raise ConnectionClosed("not connected: call connect() first")
        self._session.check()

    def _request(self, make: Callable[[ClientSession], tuple[bytes, Request]]) -> object:
        self._need_open()
        frame, r = make(self._session)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            self._send(frame, r)
            while not r.done:
                self._read_once(deadline)
        except BaseException:
            r.abandon()
            raise
        return r.value()

    def _send_unanswered(self, make: Callable[[ClientSession], bytes]) -> None:
        """BROADCAST/DATA: take in what has arrived (a refusal of an earlier
        one is raised now), then send."""
        self._need_open()
        self._read_available()
        self._need_open()
        self._send(make(self._session))

    def _send(self, frame: bytes, r: Request | None = None) -> None:
        sock = self._sock
        assert sock is not None
        try:
            sock.settimeout(self.timeout)
            sock.sendall(frame)
        except TimeoutError as e:
            # Part of the frame may be out: the stream cannot go on.
            self._lost(e)
            raise TimeoutError("timed out sending to the server") from None
        except OSError as e:
            self._lost(e)
            if r is None:
                raise self._session.closed_error() from e
            # r now holds the failure; the caller raises it.

    def _read_once(self, deadline: float | None) -> None:
        """Wait for bytes (until deadline) and take them in."""
        sock = self._sock
        if sock is None:
            self._session.connection_lost(None)
            return
        if deadline is None:
            wait: float | None = None
        else:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise TimeoutError("timed out waiting for the server")
        try:
            sock.settimeout(wait)
            data = sock.recv(READ_SIZE)
        except TimeoutError:
            raise TimeoutError("timed out waiting for the server") from None
        except OSError as e:
            self._lost(e)
            return
        self._take_in(data)

    def _read_available(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.settimeout(0.0)
            while self._take_in(sock.recv(READ_SIZE)):
                pass
        except (BlockingIOError, _ssl.SSLWantReadError, _ssl.SSLWantWriteError, TimeoutError):
            return
        except OSError as e:
            self._lost(e)

    def _take_in(self, data: bytes) -> bool:
        """Hand what was read to the session (b"": the server closed);
        False once the connection has ended."""
        if not data:
            self._lost(None)
            return False
        self._session.receive(data)
        if self._session.failure is not None:
            self._drop_socket()
            return False
        return True

    def _lost(self, exc: BaseException | None) -> None:
        self._session.connection_lost(exc)
        self._drop_socket()

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("open" if self._sock is not None else "new")
        return f"<net001.sync.BinaryProtocolClient {self.host}:{self.port} {state}>"
