"""Sans-I/O client state: which frame each answer belongs to.

:class:`ClientSession` is shared by the asyncio client (:mod:`net001.client`)
and the blocking one (:mod:`net001.sync`). It builds the frames to send and
consumes the bytes received, and never does I/O itself.

Every frame sent is kept, in order, until the server has visibly dealt
with it (runs of BROADCAST/DATA frames as one counted entry, so a client
that only sends them stays in bounded memory):

* PING, ECHO and AUTH are *requests*: each gets exactly one answer, its
  reply (PONG, ECHO_REPLY, AUTH_REPLY) or an ERROR. The server answers in
  request order, so replies are matched in order; a PONG must carry its
  PING's 8 bytes (a unique, increasing u64 per connection) and an
  ECHO_REPLY its ECHO's payload, else the stream is a :class:`ProtocolError`.
* BROADCAST and DATA get no answer, except an ERROR when the server refuses
  them (AUTH_REQUIRED, RATE_LIMITED). A reply to a later request proves the
  server took them.

An ERROR does not say which frame it is about. The rules:

* A code after which the server closes (SHUTTING_DOWN, IDLE_TIMEOUT, ...)
  fails every outstanding request with a :class:`ServerClosedError`.
* AUTH_REQUIRED can only be about a BROADCAST or DATA: it belongs to the
  oldest one outstanding.
* Any other code (in practice RATE_LIMITED) belongs to the oldest
  outstanding request if there is one, else to the oldest outstanding
  BROADCAST/DATA. A request therefore never waits for an answer that is not
  coming. When a BROADCAST/DATA sent before that request was the frame
  actually refused, the request's real reply arrives afterwards: it is then
  dropped (``late_replies``) and the error is recorded as the
  BROADCAST/DATA's, like any other such error.

Errors about a BROADCAST or DATA cannot be raised by the call that sent it
(it returned once the frame was written): they are kept, in order, and the
next call on the client raises the oldest of them (a :class:`ServerError`
whose ``request`` is ``FrameType.BROADCAST`` or ``FrameType.DATA``) before
it sends anything. ``sync()`` on the clients sends a PING and, once its PONG
is back, raises any such error: a way to confirm a batch;
``take_errors()`` hands them over without raising.

BROADCAST frames from other clients can arrive between replies at any
time. They go to a bounded queue (``broadcast_queue`` frames, default 1024):
when it is full the *oldest* queued broadcast is dropped and counted in
``dropped_broadcasts``, so a client that never reads its broadcasts keeps
answering requests in bounded memory (at most ``broadcast_queue`` x 64 KiB).
"""

from __future__ import annotations

import enum
import ssl as _ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Union

from .codec import (
    MAX_PAYLOAD,
    CLOSING_CODES,
    DecodeError,
    Decoder,
    ErrorCode,
    Frame,
    FrameType,
    auth_payload,
    encode_frame,
    parse_auth_reply,
    parse_error,
    ping_payload,
)
from .errors import (
    AuthError,
    ConnectionClosed,
    Net001Error,
    ProtocolError,
    ServerClosedError,
    ServerError,
)

__all__ = [
    "Pong",
    "Request",
    "ClientSession",
    "ClientBase",
    "DEFAULT_BROADCAST_QUEUE",
    "DEFAULT_TIMEOUT",
]

DEFAULT_BROADCAST_QUEUE = 1024

#: Seconds a connect or a request may take before TimeoutError.
DEFAULT_TIMEOUT = 10.0

#: Bytes asked of the socket per read, by both clients.
READ_SIZE = 256 * 1024

_ANSWER_OF = {
    FrameType.PONG: FrameType.PING,
    FrameType.ECHO_REPLY: FrameType.ECHO,
    FrameType.AUTH_REPLY: FrameType.AUTH,
}


@dataclass(frozen=True, slots=True)
class Pong:
    """The result of ``ping()``: the round trip, measured from just before
    the PING was handed to the socket to the arrival of its PONG."""

    latency_ms: float
    timestamp: int  # the u64 the PING carried (and its PONG returned)


class _State(enum.Enum):
    WAITING = 1  # someone waits for the answer
    ABANDONED = 2  # the caller gave up (timeout, cancel): drop the answer
    BLAMED = 3  # failed by an ERROR that may have been about an earlier
    # BROADCAST/DATA: if its reply comes after all, the error was theirs
    DONE = 4


Result = Union[Pong, bytes, None]


class Request:
    """One frame sent and not yet dealt with by the server.

    For a request (PING, ECHO, AUTH): once ``done`` is true, ``result``
    (:class:`Pong`, ``bytes`` or the session id) or ``error`` holds the
    outcome, and ``callback`` (if set) has been called once with the
    request.
    """

    __slots__ = (
        "type",
        "key",
        "user",
        "sent_ns",
        "done_ns",
        "_state",
        "result",
        "error",
        "callback",
        "_blamed_for",
    )

    def __init__(self, type: FrameType, key: bytes = b"", user: str | bytes = "") -> None:
        self.type = type
        self.key = key
        self.user = user
        self.sent_ns = time.monotonic_ns()
        self.done_ns = 0
        self._state = _State.WAITING
        self.result: Result = None
        self.error: BaseException | None = None
        self.callback: Callable[[Request], None] | None = None
        self._blamed_for: FrameType | None = None

    @property
    def done(self) -> bool:
        return self._state in (_State.DONE, _State.BLAMED)

    def abandon(self) -> None:
        """The caller no longer waits (timeout, cancellation): the answer,
        when it comes, is dropped."""
        if self._state is _State.WAITING:
            self._state = _State.ABANDONED

    def value(self) -> Result:
        """The result, or raise the error."""
        if self.error is not None:
            raise self.error
        return self.result

    def _finish(self, result: Result, error: BaseException | None, blamed: bool = False) -> None:
        waiting = self._state is _State.WAITING
        self._state = _State.BLAMED if blamed else _State.DONE
        if not waiting:
            return
        self.done_ns = time.monotonic_ns()
        self.result = result
        self.error = error
        if self.callback is not None:
            self.callback(self)


class _Run:
    """Consecutive BROADCAST or DATA frames not yet known to be handled."""

    __slots__ = ("type", "count")

    def __init__(self, type: FrameType) -> None:
        self.type = type
        self.count = 1


# Runs kept at most; beyond it a BROADCAST/DATA joins the last run whatever
# its type (only the type named in a later ERROR can then be off), so a
# client sending only BROADCAST and DATA, alternating, stays bounded too.
_MAX_RUNS = 4096

_Entry = Union[Request, _Run]


class ClientSession:
    """Protocol state of one client connection (no I/O).

    Outgoing: ``ping()``, ``echo()``, ``auth()`` return the bytes to send and
    a :class:`Request`; ``broadcast()`` and ``data()`` return the bytes.
    The caller must send the bytes in the order it got them. Incoming:
    ``receive(chunk)`` with every chunk read, ``connection_lost()`` at EOF or
    on a socket error, ``close()`` when the client closes.
    """

    def __init__(
        self,
        *,
        broadcast_queue: int = DEFAULT_BROADCAST_QUEUE,
        on_broadcast: Callable[[], None] | None = None,
    ) -> None:
        if broadcast_queue < 0:
            raise ValueError("broadcast_queue must be >= 0")
        self._decoder = Decoder()
        self._out: deque[_Entry] = deque()
        self._runs = 0
        self._deferred: deque[ServerError] = deque()
        self.broadcasts: deque[bytes] = deque(maxlen=broadcast_queue)
        self.dropped_broadcasts = 0
        self.late_replies = 0
        self.failure: ConnectionClosed | ProtocolError | None = None
        self.closed_by_client = False
        self.on_broadcast = on_broadcast
        self._last_ts = 0

    # ---- state --------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Frames sent that the server has not visibly dealt with yet."""
        return sum(e.count if isinstance(e, _Run) else 1 for e in self._out)

    @property
    def pending_errors(self) -> int:
        """ERRORs about BROADCAST/DATA frames not yet raised."""
        return len(self._deferred)

    def check(self) -> None:
        """Raise what makes the next call fail: the connection's end, or the
        oldest kept error about a BROADCAST/DATA (which is then gone)."""
        if self.failure is not None:
            raise self.closed_error()
        if self._deferred:
            raise self._deferred.popleft()

    def take_errors(self) -> list[ServerError]:
        """The kept errors about BROADCAST/DATA frames, oldest first; they
        are then gone (the next call will not raise them)."""
        errs = list(self._deferred)
        self._deferred.clear()
        return errs

    def closed_error(self) -> ConnectionClosed | ProtocolError:
        """A fresh exception for a call on a connection that has ended."""
        f = self.failure
        if f is None:
            return ConnectionClosed("connection is open")  # pragma: no cover
        if isinstance(f, ServerClosedError):
            e: ConnectionClosed | ProtocolError = ConnectionClosed(
                f"connection closed by the server after {f.name}"
                + (f": {f.message}" if f.message else ""),
                server_error=f,
            )
        elif isinstance(f, ProtocolError):
            e = ConnectionClosed(f"connection closed after a protocol error: {f}")
        else:
            e = ConnectionClosed(str(f), server_error=f.server_error)
        e.__cause__ = f
        return e

    # ---- outgoing -----------------------------------------------------

    def _track(self, r: Request) -> None:
        self.check()
        self._out.append(r)

    def _track_run(self, t: FrameType) -> None:
        self.check()
        last = self._out[-1] if self._out else None
        if isinstance(last, _Run) and (last.type == t or self._runs >= _MAX_RUNS):
            last.count += 1
        else:
            self._out.append(_Run(t))
            self._runs += 1

    def _pop(self) -> _Entry:
        e = self._out.popleft()
        if isinstance(e, _Run):
            self._runs -= 1
        return e

    def ping(self) -> tuple[bytes, Request]:
        ts = max(time.monotonic_ns(), self._last_ts + 1)
        self._last_ts = ts
        key = ping_payload(ts)
        r = Request(FrameType.PING, key)
        self._track(r)
        return encode_frame(FrameType.PING, key), r

    def echo(self, data: bytes | bytearray | memoryview) -> tuple[bytes, Request]:
        payload = _payload(data)
        r = Request(FrameType.ECHO, payload)
        frame = encode_frame(FrameType.ECHO, payload)
        self._track(r)
        return frame, r

    def auth(self, user: str | bytes, token: str | bytes) -> tuple[bytes, Request]:
        frame = encode_frame(FrameType.AUTH, auth_payload(user, token))
        r = Request(FrameType.AUTH, user=user)
        self._track(r)
        return frame, r

    def broadcast(self, data: bytes | bytearray | memoryview) -> bytes:
        frame = encode_frame(FrameType.BROADCAST, _payload(data))
        self._track_run(FrameType.BROADCAST)
        return frame

    def data(self, data: bytes | bytearray | memoryview) -> bytes:
        frame = encode_frame(FrameType.DATA, _payload(data))
        self._track_run(FrameType.DATA)
        return frame

    def take_broadcast(self) -> bytes | None:
        return self.broadcasts.popleft() if self.broadcasts else None

    # ---- incoming -----------------------------------------------------

    def receive(self, data: bytes | bytearray | memoryview) -> None:
        if self.failure is not None:
            return
        for ev in self._decoder.feed(data):
            if isinstance(ev, DecodeError):
                # TCP does not corrupt bytes: any bad frame from the server
                # (a bad CRC included) loses a reply, so the stream is over.
                self._fail(ev)
                return
            self._on_frame(ev)
            if self.failure is not None:
                return

    def connection_lost(self, exc: BaseException | None = None) -> None:
        if self.failure is not None:
            return
        if self.closed_by_client:
            self._fail(ConnectionClosed("connection closed by the client"))
        elif exc is None:
            left = self._decoder.buffered
            tail = f" in the middle of a frame ({left} bytes of it received)" if left else ""
            self._fail(ConnectionClosed(f"connection closed by the server{tail}"))
        else:
            c = ConnectionClosed(f"connection lost: {exc}")
            c.__cause__ = exc
            self._fail(c)

    def close(self) -> None:
        self.closed_by_client = True
        self.connection_lost(None)

    def _fail(self, exc: ConnectionClosed | ProtocolError) -> None:
        self.failure = exc
        out, self._out = self._out, deque()
        self._runs = 0
        for r in out:
            if isinstance(r, Request):
                r._finish(None, _fresh(exc, r.type))
        if self.on_broadcast is not None:
            self.on_broadcast()  # wake readers: no more broadcasts

    def _on_frame(self, f: Frame) -> None:
        t = f.type
        if t == FrameType.BROADCAST:
            if len(self.broadcasts) == self.broadcasts.maxlen:
                self.dropped_broadcasts += 1
            self.broadcasts.append(f.payload)
            if self.on_broadcast is not None:
                self.on_broadcast()
        elif t in _ANSWER_OF:
            self._on_reply(FrameType(t), f.payload)
        elif t == FrameType.ERROR:
            try:
                code, msg = parse_error(f.payload)
            except ProtocolError as e:
                self._fail(e)
                return
            self._on_error(code, msg)
        else:
            self._fail(ProtocolError(f"unexpected frame from the server: {f!r}"))

    def _matches(self, r: Request, t: FrameType, payload: bytes) -> bool:
        if r.type != _ANSWER_OF[t]:
            return False
        if t == FrameType.AUTH_REPLY:
            return True
        return r.key == payload

    def _on_reply(self, t: FrameType, payload: bytes) -> None:
        out = self._out
        while out:
            r = out[0]
            if isinstance(r, _Run):
                self._pop()  # BROADCAST/DATA frames the server took
                continue
            if r._state is _State.BLAMED:
                self._pop()
                if self._matches(r, t, payload):
                    # Its error was about a BROADCAST/DATA before it.
                    self.late_replies += 1
                    if isinstance(r.error, ServerError):
                        self._deferred.append(r.error.with_request(r._blamed_for))
                    return
                continue  # the error was its own: no reply comes
            if not self._matches(r, t, payload):
                self._fail(
                    ProtocolError(
                        f"{t.name} with payload {payload[:16].hex()} does not answer "
                        f"the oldest outstanding {r.type.name}"
                    )
                )
                return
            self._pop()
            if r._state is _State.ABANDONED:
                self.late_replies += 1
                r._finish(None, None)
                return
            if t == FrameType.PONG:
                now = time.monotonic_ns()
                pong = Pong((now - r.sent_ns) / 1e6, int.from_bytes(payload, "big"))
                r._finish(pong, None)
            elif t == FrameType.ECHO_REPLY:
                r._finish(payload, None)
            else:
                try:
                    ok, session = parse_auth_reply(payload)
                except ProtocolError as e:
                    self._fail(e)
                    return
                if ok:
                    r._finish(session, None)
                else:
                    r._finish(None, AuthError(r.user))
            return
        self._fail(ProtocolError(f"{t.name} while no request waits for one"))

    def _on_error(self, code: int, msg: str) -> None:
        out = self._out
        if code in CLOSING_CODES:
            # Stays the connection's failure; every waiting call gets it.
            self._fail(ServerClosedError(code, msg))
            return
        if code != ErrorCode.AUTH_REQUIRED:
            # The oldest request not already blamed for an earlier ERROR.
            first_run: FrameType | None = None
            for i, r in enumerate(out):
                if isinstance(r, _Run):
                    if first_run is None:
                        first_run = r.type
                    continue
                if r._state is _State.BLAMED:
                    continue
                err = ServerError(code, msg, r.type)
                if first_run is not None and r._state is _State.WAITING:
                    # BROADCAST/DATA went before it: the ERROR may be theirs.
                    # It fails the request now (nobody waits for an answer
                    # that may never come) and stays here in case its reply
                    # still arrives.
                    r._blamed_for = first_run
                    r._finish(None, err, blamed=True)
                else:
                    for _ in range(i + 1):
                        self._pop()
                    if r._state is _State.ABANDONED:
                        self.late_replies += 1
                    r._finish(None, err)
                return
        # AUTH_REQUIRED, or no request outstanding: the oldest BROADCAST/DATA.
        for i, r in enumerate(out):
            if isinstance(r, _Run):
                r.count -= 1
                if r.count == 0:
                    del out[i]
                    self._runs -= 1
                self._deferred.append(ServerError(code, msg, r.type))
                return
        # About nothing we sent (or a request we no longer track): keep it
        # for the next call.
        self._deferred.append(ServerError(code, msg, None))


class ClientBase:
    """What the asyncio client (:mod:`net001.client`) and the blocking one
    (:mod:`net001.sync`) share, none of it I/O: the arguments and their
    checks, the TLS context they ask for, the :class:`ClientSession` and its
    counters. Each subclass sets up its own transport state in
    ``_setup()`` and hears of broadcasts (and of the connection's end) in
    ``_on_broadcast()``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl: _ssl.SSLContext | bool | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        server_hostname: str | None = None,
        broadcast_queue: int = DEFAULT_BROADCAST_QUEUE,
    ) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is not within 1..65535")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be > 0 or None")
        self.host = host
        self.port = port
        self.ssl = ssl
        self.timeout = timeout
        self.server_hostname = server_hostname
        self._session = ClientSession(
            broadcast_queue=broadcast_queue, on_broadcast=self._on_broadcast
        )
        self._setup()

    def _setup(self) -> None:
        """The subclass's own state, set at the end of ``__init__``."""

    def _on_broadcast(self) -> None:
        """A broadcast was queued, or the connection ended."""

    def _ssl_context(self) -> _ssl.SSLContext | None:
        """The context ``ssl`` asks for: none, the system's default, or the
        caller's own."""
        if self.ssl is True:
            return _ssl.create_default_context()
        if self.ssl is None or self.ssl is False:
            return None
        return self.ssl

    @property
    def closed(self) -> bool:
        """True once the connection has ended (either side)."""
        return self._session.failure is not None

    @property
    def dropped_broadcasts(self) -> int:
        """Received broadcasts dropped because the queue was full."""
        return self._session.dropped_broadcasts

    @property
    def late_replies(self) -> int:
        """Replies that came after their caller gave up (and were dropped)."""
        return self._session.late_replies


def _payload(data: bytes | bytearray | memoryview) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload must be bytes-like, not {type(data).__name__}")
    b = bytes(data)
    if len(b) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(b)} bytes is above the limit of {MAX_PAYLOAD}")
    return b


def _fresh(exc: Net001Error, about: FrameType) -> BaseException:
    """A new exception per failed request (tracebacks stay separate)."""
    if isinstance(exc, ServerError):
        e: BaseException = exc.with_request(about)
        if isinstance(exc, ServerClosedError):
            return e
    elif isinstance(exc, ConnectionClosed):
        e = ConnectionClosed(str(exc), exc.server_error)
    else:
        e = ProtocolError(str(exc))
    e.__cause__ = exc
    return e
