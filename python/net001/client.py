"""The asyncio client: ``from net001 import BinaryProtocolClient``.

::

    async with BinaryProtocolClient("localhost", 5000) as c:
        pong = await c.ping()
        print(pong.latency_ms)
        assert await c.echo(b"hi") == b"hi"
        await c.broadcast(b"to everyone else")

Requests may be pipelined: calls made concurrently (``asyncio.gather``,
several tasks) are all written at once and their replies matched in order.
One task reads the connection all the time, so replies are never stuck
behind broadcasts nobody reads; see :mod:`net001.session` for how answers,
ERROR frames and broadcasts are told apart.
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Callable, cast

from .errors import ConnectionClosed, ServerError
from .session import DEFAULT_TIMEOUT, READ_SIZE, ClientBase, ClientSession, Pong, Request

__all__ = ["BinaryProtocolClient", "DEFAULT_TIMEOUT"]


class BinaryProtocolClient(ClientBase):
    """One NET-001 connection, for asyncio.

    ``ssl``: ``None``/``False`` for plain TCP, ``True`` for TLS checked
    against the system's CAs, or an :class:`ssl.SSLContext`; the host name
    (or ``server_hostname``) is checked unless the context says not to.
    ``timeout``: seconds for ``connect()`` (TCP and TLS handshake) and for
    each request's answer, ``None`` for no limit. ``broadcast_queue``: how
    many received broadcasts are kept for :meth:`broadcasts` (the oldest is
    dropped beyond it; see ``dropped_broadcasts``).

    Calls raise :class:`net001.ServerError` for an ERROR answer,
    :class:`net001.ConnectionClosed` once the connection is gone,
    :class:`TimeoutError` when the answer takes longer than ``timeout``.
    """

    def _setup(self) -> None:
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._bcast_waiters: list[asyncio.Future[None]] = []
        self._connected = False

    # ---- connection ---------------------------------------------------

    async def connect(self) -> None:
        """Open the connection (TCP, then TLS if asked). Raises OSError
        (ConnectionRefusedError, ssl.SSLError, ...) or TimeoutError."""
        if self._connected:
            raise RuntimeError("connect() was already called (a client connects once)")
        ctx = self._ssl_context()
        kw: dict[str, Any] = {}
        if ctx is not None:
            kw["ssl"] = ctx
            kw["server_hostname"] = self.server_hostname or self.host
            if self.timeout is not None:
                kw["ssl_handshake_timeout"] = self.timeout
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(
                self.host, self.port, limit=READ_SIZE, **kw
            )
        self._reader, self._writer = reader, writer
        self._connected = True
        self._read_task = asyncio.create_task(self._read_loop(reader))

    async def close(self) -> None:
        """Close the connection. Calls still waiting raise ConnectionClosed;
        broadcast iterators end. Safe to call more than once."""
        self._session.close()
        task, self._read_task = self._read_task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except BaseException:
                pass
        w, self._writer = self._writer, None
        if w is not None:
            w.close()
            try:
                async with asyncio.timeout(1.0):
                    await w.wait_closed()
            except (OSError, TimeoutError, _ssl.SSLError):
                pass

    async def __aenter__(self) -> BinaryProtocolClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- requests -----------------------------------------------------

    async def ping(self) -> Pong:
        """PING; returns the :class:`Pong` (``latency_ms``)."""
        return cast(Pong, await self._request(self._start(ClientSession.ping)))

    async def echo(self, data: bytes) -> bytes:
        """ECHO ``data`` (0..65535 bytes); returns the reply's payload."""
        return cast(bytes, await self._request(self._start(lambda s: s.echo(data))))

    async def auth(self, user: str | bytes, token: str | bytes) -> bytes:
        """AUTH; returns the 16-byte session id, raises
        :class:`net001.AuthError` when refused."""
        return cast(bytes, await self._request(self._start(lambda s: s.auth(user, token))))

    async def broadcast(self, data: bytes) -> None:
        """Send a BROADCAST (no reply): returns once it is written. If the
        server refuses it, a later call raises that ServerError."""
        await self._send_unanswered(lambda s: s.broadcast(data))

    async def send_data(self, data: bytes) -> None:
        """Send a DATA frame (no reply); refusals are raised like
        :meth:`broadcast`'s."""
        await self._send_unanswered(lambda s: s.data(data))

    async def sync(self) -> Pong:
        """A PING round trip that proves every earlier frame was handled:
        raises the ERROR the server sent about an earlier BROADCAST or DATA,
        if any, else returns the Pong."""
        pong = await self.ping()
        self._session.check()
        return pong

    def take_errors(self) -> list[ServerError]:
        """The ERRORs the server sent about earlier BROADCAST/DATA frames and
        no call has raised yet, oldest first. Taking them means later calls
        do not raise them."""
        return self._session.take_errors()

    # ---- broadcasts ---------------------------------------------------

    async def next_broadcast(self, timeout: float | None = None) -> bytes:
        """The oldest received broadcast's payload, waiting up to
        ``timeout`` seconds (None: for ever). Raises TimeoutError, or
        ConnectionClosed once the connection has ended and nothing is
        queued."""
        async with asyncio.timeout(timeout):
            while True:
                p = self._session.take_broadcast()
                if p is not None:
                    return p
                if self._session.failure is not None:
                    raise self._session.closed_error()
                if not self._connected:
                    raise ConnectionClosed("not connected")
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._bcast_waiters.append(fut)
                try:
                    await fut
                finally:
                    if fut in self._bcast_waiters:
                        self._bcast_waiters.remove(fut)

    async def broadcasts(self) -> AsyncIterator[bytes]:
        """Received broadcast payloads, in arrival order. Ends when the
        client is closed; raises ConnectionClosed (or ServerClosedError) when
        the connection is lost otherwise, after what was queued."""
        while True:
            try:
                yield await self.next_broadcast()
            except ConnectionClosed:
                if self._session.closed_by_client:
                    return
                raise

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.broadcasts()

    # ---- internals ----------------------------------------------------

    def _need_open(self) -> None:
        if not self._connected:
            if self._session.failure is None:
                raise ConnectionClosed("not connected: call connect() first")
        self._session.check()

    def _start(self, make: Callable[[ClientSession], tuple[bytes, Request]]) -> Request:
        """Build the frame and hand it to the transport at once, so frames
        leave in the order their calls were made."""
        self._need_open()
        frame, r = make(self._session)
        self._send(frame)
        return r

    async def _send_unanswered(self, make: Callable[[ClientSession], bytes]) -> None:
        """BROADCAST/DATA: send, and wait until the transport takes it."""
        self._need_open()
        self._send(make(self._session))
        async with asyncio.timeout(self.timeout):
            await self._drain()

    async def _request(self, r: Request) -> object:
        if r.done:  # the send failed: the connection is gone
            return r.value()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[object] = loop.create_future()

        def done(req: Request) -> None:
            if fut.done():
                return
            if req.error is not None:
                fut.set_exception(req.error)
            else:
                fut.set_result(req.result)

        r.callback = done
        try:
            async with asyncio.timeout(self.timeout):
                await self._drain(raise_closed=False)
                return await fut
        except BaseException:
            r.abandon()
            if not fut.done():
                fut.cancel()
            raise

    def _send(self, frame: bytes) -> None:
        w = self._writer
        if w is None:
            raise self._session.closed_error()
        try:
            w.write(frame)
        except (OSError, RuntimeError) as e:
            self._session.connection_lost(e)

    async def _drain(self, raise_closed: bool = True) -> None:
        """Wait until the transport's buffer is below its high-water mark.
        A connection that breaks meanwhile fails every waiting request;
        with raise_closed, this raises ConnectionClosed too."""
        w = self._writer
        if w is not None and self._session.failure is None:
            try:
                await w.drain()
            except (OSError, RuntimeError) as e:
                self._session.connection_lost(e)
        if raise_closed and self._session.failure is not None:
            raise self._session.closed_error()

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        s = self._session
        try:
            while s.failure is None:
                chunk = await reader.read(READ_SIZE)
                if not chunk:
                    s.connection_lost(None)
                    break
                s.receive(chunk)
        except asyncio.CancelledError:
            s.connection_lost(None)
            raise
        except Exception as e:  # reset, TLS failure, ...: never leave callers hanging
            s.connection_lost(e)
        if s.failure is not None and not s.closed_by_client:
            # The server is gone or broke the protocol: close our side.
            w = self._writer
            if w is not None:
                w.close()

    def _on_broadcast(self) -> None:
        # Wake the next_broadcast() calls waiting for one (or for the end).
        waiters, self._bcast_waiters = self._bcast_waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("open" if self._connected else "new")
        return f"<BinaryProtocolClient {self.host}:{self.port} {state}>"

