"""Exceptions raised by the net001 package.

::

    Net001Error
    +-- ProtocolError         the server sent bytes that are not valid NET-001,
    |   |                     or a reply that fits no request
    |   +-- codec.DecodeError (BadMagic, BadVersion, BadLength, BadCRC)
    +-- ServerError           the server answered with an ERROR frame
    |   +-- ServerClosedError an ERROR after which the server closes
    |                         (also a ConnectionClosed)
    +-- AuthError             AUTH answered with failure
    +-- ConnectionClosed      the connection is gone (also a ConnectionError)

Timeouts are the built-in :class:`TimeoutError`; failures to connect are the
usual :class:`OSError` subclasses (``ConnectionRefusedError``,
``socket.gaierror``, ``ssl.SSLCertVerificationError``, ...).
"""

from __future__ import annotations

__all__ = [
    "Net001Error",
    "ProtocolError",
    "ServerError",
    "ServerClosedError",
    "AuthError",
    "ConnectionClosed",
]


class Net001Error(Exception):
    """Base class of every error this package raises about the protocol."""


class ProtocolError(Net001Error):
    """Bytes from the server that break the protocol."""


class ConnectionClosed(Net001Error, ConnectionError):
    """The connection is closed (by the client, by the server, or lost).

    ``server_error`` is the ERROR frame that closed it, if there was one.
    """

    def __init__(self, message: str, server_error: ServerError | None = None) -> None:
        super().__init__(message)
        self.server_error = server_error


class ServerError(Net001Error):
    """The server answered with an ERROR frame.

    ``code`` is the numeric code, ``name`` its PROTOCOL.md name
    (``RATE_LIMITED``...), ``message`` the text the server sent, and
    ``request`` the type of the frame it was about (a ``FrameType``; ``None``
    when it was about no frame the client knows of, e.g. SHUTTING_DOWN).
    ``closes`` tells whether the server closes the connection after it.
    """

    def __init__(self, code: int, message: str = "", request: int | None = None) -> None:
        from .codec import CLOSING_CODES, FrameType, error_name

        self.code = code
        self.name = error_name(code)
        self.message = message
        self.request = request
        self.closes = code in CLOSING_CODES
        about = ""
        if request is not None:
            try:
                about = f" (about a {FrameType(request).name})"
            except ValueError:
                about = f" (about a frame of type 0x{request:02x})"
        text = f": {message}" if message else ""
        Net001Error.__init__(self, f"server error {self.name} ({code}){about}{text}")

    def with_request(self, request: int | None) -> ServerError:
        """The same error, about another frame."""
        return type(self)(self.code, self.message, request)


class ServerClosedError(ServerError, ConnectionClosed):
    """An ERROR frame after which the server closes the connection
    (SHUTTING_DOWN, IDLE_TIMEOUT, AUTH_FAILED, ...)."""

    def __init__(self, code: int, message: str = "", request: int | None = None) -> None:
        ServerError.__init__(self, code, message, request)
        self.server_error = self


class AuthError(Net001Error):
    """The server refused the AUTH (wrong user or token, or no auth file)."""

    def __init__(self, user: str | bytes) -> None:
        u = user if isinstance(user, str) else bytes(user).decode("utf-8", "replace")
        super().__init__(f"authentication failed for user {u!r}")
        self.user = u
