"""net001: a client for the NET-001 binary message protocol.

* :class:`BinaryProtocolClient` (this module): the asyncio client.
* :mod:`net001.sync`: the same client, blocking (scripts, locust/gevent).
* :mod:`net001.codec`: sans-I/O frame encoding and incremental decoding.
* :mod:`net001.session`: the sans-I/O request/answer bookkeeping both
  clients share.

Only the standard library is used.
"""

from .client import DEFAULT_TIMEOUT, BinaryProtocolClient
from .codec import ErrorCode, Frame, FrameType
from .errors import (
    AuthError,
    ConnectionClosed,
    Net001Error,
    ProtocolError,
    ServerClosedError,
    ServerError,
)
from .session import Pong

__version__ = "0.1.0"

__all__ = [
    "BinaryProtocolClient",
    "DEFAULT_TIMEOUT",
    "Pong",
    "Frame",
    "FrameType",
    "ErrorCode",
    "Net001Error",
    "ProtocolError",
    "ServerError",
    "ServerClosedError",
    "AuthError",
    "ConnectionClosed",
    "__version__",
]
