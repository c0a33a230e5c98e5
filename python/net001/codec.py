"""Sans-I/O codec for NET-001 frames (proto/PROTOCOL.md, section 1).

Nothing here touches a socket: :func:`encode_frame` builds the bytes of one
frame and :class:`Decoder` turns a byte stream, cut into chunks of any size,
back into :class:`Frame` objects or typed :class:`DecodeError` values.

A frame is ``DE AD BE EF | version 0x01 | type | u16 length | payload |
u32 CRC``, big-endian, where the CRC is CRC-32/ISO-HDLC (``zlib.crc32``)
over the 8-byte header and the payload.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass
from typing import Final, Union

from .errors import ProtocolError

__all__ = [
    "MAGIC",
    "VERSION",
    "HEADER_SIZE",
    "CRC_SIZE",
    "MAX_PAYLOAD",
    "MAX_FRAME",
    "SESSION_ID_LEN",
    "FrameType",
    "ErrorCode",
    "CLOSING_CODES",
    "error_name",
    "Frame",
    "encode_frame",
    "frame_crc",
    "DecodeError",
    "BadMagic",
    "BadVersion",
    "BadLength",
    "BadCRC",
    "Decoder",
    "DecodeEvent",
    "ping_payload",
    "auth_payload",
    "parse_auth_reply",
    "auth_reply_payload",
    "parse_error",
    "error_payload",
]

MAGIC: Final = 0xDEADBEEF
MAGIC_BYTES: Final = b"\xde\xad\xbe\xef"
VERSION: Final = 1
HEADER_SIZE: Final = 8
CRC_SIZE: Final = 4
MAX_PAYLOAD: Final = 65535
MAX_FRAME: Final = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE
SESSION_ID_LEN: Final = 16
AUTH_USER_MAX: Final = 64
AUTH_TOKEN_MAX: Final = 256

_HEADER = struct.Struct(">IBBH")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")


class FrameType(enum.IntEnum):
    """Message types (PROTOCOL.md section 2)."""

    PING = 0x01
    PONG = 0x02
    ECHO = 0x03
    ECHO_REPLY = 0x04
    BROADCAST = 0x05
    AUTH = 0x06
    AUTH_REPLY = 0x07
    DATA = 0x08
    ERROR = 0xFF


class ErrorCode(enum.IntEnum):
    """ERROR frame codes (PROTOCOL.md section 3)."""

    BAD_MAGIC = 1
    BAD_VERSION = 2
    BAD_CRC = 3
    UNSUPPORTED_TYPE = 4
    BAD_PAYLOAD = 5
    FRAME_TOO_LARGE = 6
    AUTH_REQUIRED = 7
    AUTH_FAILED = 8
    RATE_LIMITED = 9
    SERVER_FULL = 10
    IDLE_TIMEOUT = 11
    SLOW_CONSUMER = 12
    SHUTTING_DOWN = 13
    INTERNAL = 14


#: Codes after which the server closes the connection.
CLOSING_CODES: Final = frozenset(
    {
        ErrorCode.BAD_MAGIC,
        ErrorCode.BAD_VERSION,
        ErrorCode.FRAME_TOO_LARGE,
        ErrorCode.AUTH_FAILED,
        ErrorCode.SERVER_FULL,
        ErrorCode.IDLE_TIMEOUT,
        ErrorCode.SLOW_CONSUMER,
        ErrorCode.SHUTTING_DOWN,
        ErrorCode.INTERNAL,
    }
)


def error_name(code: int) -> str:
    """The PROTOCOL.md name of an error code, or ``UNKNOWN_<n>``."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"UNKNOWN_{code}"


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: its type byte and its payload."""

    type: int
    payload: bytes

    def encode(self) -> bytes:
        return encode_frame(self.type, self.payload)

    def __repr__(self) -> str:
        try:
            t = FrameType(self.type).name
        except ValueError:
            t = f"0x{self.type:02x}"
        p = self.payload if len(self.payload) <= 32 else self.payload[:32] + b"..."
        return f"Frame({t}, {p!r}, len={len(self.payload)})"


def frame_crc(header: bytes, payload: bytes | bytearray | memoryview = b"") -> int:
    """CRC-32 of a frame's header and payload, as sent in its last 4 bytes."""
    return zlib.crc32(payload, zlib.crc32(header)) & 0xFFFFFFFF


def encode_frame(type: int, payload: bytes | bytearray | memoryview = b"") -> bytes:
    """The bytes of one frame. ValueError for a type outside 0..255 or a
    payload above 65535 bytes."""
    if not 0 <= type <= 0xFF:
        raise ValueError(f"frame type {type} is not a byte")
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError(f"payload of {n} bytes is above the limit of {MAX_PAYLOAD}")
    header = _HEADER.pack(MAGIC, VERSION, type, n)
    crc = zlib.crc32(payload, zlib.crc32(header)) & 0xFFFFFFFF
    return b"".join((header, payload, _U32.pack(crc)))


# ---- decoding ---------------------------------------------------------------


class DecodeError(ProtocolError):
    """A byte stream that is not valid NET-001.

    ``offset`` is where the bad frame starts in the stream (bytes fed since
    the decoder was made), ``code`` the ERROR code a server would answer
    with, ``fatal`` whether framing is lost (the stream cannot go on).
    """

    code: ErrorCode = ErrorCode.BAD_MAGIC
    fatal: bool = True

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at stream offset {offset}")
        self.offset = offset


class BadMagic(DecodeError):
    """The first 4 bytes of a frame are not DE AD BE EF (fatal)."""

    code = ErrorCode.BAD_MAGIC

    def __init__(self, got: bytes, offset: int) -> None:
        super().__init__(f"bad magic {got.hex(' ')}", offset)
        self.got = got


class BadVersion(DecodeError):
    """The version byte is not 1 (fatal)."""

    code = ErrorCode.BAD_VERSION

    def __init__(self, version: int, offset: int) -> None:
        super().__init__(f"bad version {version}", offset)
        self.version = version


class BadLength(DecodeError):
    """The length field is above the decoder's max payload (fatal)."""

    code = ErrorCode.FRAME_TOO_LARGE

    def __init__(self, length: int, limit: int, offset: int) -> None:
        super().__init__(f"payload length {length} above the limit of {limit}", offset)
        self.length = length
        self.limit = limit


class BadCRC(DecodeError):
    """A whole frame whose CRC does not match. Not fatal: the frame is
    skipped (its length was readable) and decoding goes on after it."""

    code = ErrorCode.BAD_CRC
    fatal = False

    def __init__(
        self, frame_type: int, payload: bytes, expected: int, actual: int, offset: int
    ) -> None:
        super().__init__(
            f"bad CRC (frame says {expected:08x}, computed {actual:08x}) on a frame "
            f"of type 0x{frame_type:02x} with {len(payload)} payload bytes",
            offset,
        )
        self.frame_type = frame_type
        self.payload = payload
        self.expected = expected
        self.actual = actual

    @property
    def size(self) -> int:
        return HEADER_SIZE + len(self.payload) + CRC_SIZE


DecodeEvent = Union[Frame, DecodeError]


class Decoder:
    """Incremental frame decoder.

    ``feed(chunk)`` takes the next bytes of the stream, in chunks of any size
    (one byte at a time, many frames at once, a frame split anywhere), and
    returns every event they complete, in stream order: a :class:`Frame`, or
    a :class:`DecodeError`. Errors are found as early as the bytes allow (a
    wrong first byte is :class:`BadMagic` at once, a too-large length as soon
    as the header is in). :class:`BadCRC` skips that one frame; the other
    errors are fatal: the decoder keeps that error in ``error`` and returns
    it again, alone, for every later ``feed``.
    """

    __slots__ = ("max_payload", "_buf", "_pos", "_offset", "error")

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        if not 0 <= max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload must be within 0..{MAX_PAYLOAD}")
        self.max_payload = max_payload
        self._buf = bytearray()
        self._pos = 0  # start of the first undecoded byte in _buf
        self._offset = 0  # stream offset of _buf[0]
        self.error: DecodeError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held back: the start of an incomplete frame."""
        return len(self._buf) - self._pos

    @property
    def need(self) -> int:
        """Bytes still missing before the next event can be decided (at
        least 1); 0 once the decoder has failed."""
        if self.error is not None:
            return 0
        have = self.buffered
        if have < HEADER_SIZE:
            return HEADER_SIZE - have
        length: int = _U16.unpack_from(self._buf, self._pos + 6)[0]
        return HEADER_SIZE + length + CRC_SIZE - have

    def feed(self, data: bytes | bytearray | memoryview) -> list[DecodeEvent]:
        if self.error is not None:
            return [self.error]
        if data:
            self._buf += data
        events: list[DecodeEvent] = []
        buf = self._buf
        pos = self._pos
        end = len(buf)
        while pos < end:
            have = end - pos
            # Magic and version are checked on the bytes that are there.
            m = min(have, 4)
            if buf[pos : pos + m] != MAGIC_BYTES[:m]:
                self._fail(BadMagic(bytes(buf[pos : pos + m]), self._offset + pos), events)
                return events
            if have < 5:
                break
            if buf[pos + 4] != VERSION:
                self._fail(BadVersion(buf[pos + 4], self._offset + pos), events)
                return events
            if have < HEADER_SIZE:
                break
            ftype = buf[pos + 5]
            length = (buf[pos + 6] << 8) | buf[pos + 7]
            if length > self.max_payload:
                self._fail(BadLength(length, self.max_payload, self._offset + pos), events)
                return events
            size = HEADER_SIZE + length + CRC_SIZE
            if have < size:
                break
            body = memoryview(buf)[pos : pos + HEADER_SIZE + length]
            actual = zlib.crc32(body) & 0xFFFFFFFF
            body.release()
            expected = _U32.unpack_from(buf, pos + HEADER_SIZE + length)[0]
            payload = bytes(buf[pos + HEADER_SIZE : pos + HEADER_SIZE + length])
            if actual == expected:
                events.append(Frame(ftype, payload))
            else:
                events.append(BadCRC(ftype, payload, expected, actual, self._offset + pos))
            pos += size
        # Drop what was decoded; keep the unfinished frame.
        if pos:
            del buf[:pos]
            self._offset += pos
            pos = 0
        self._pos = pos
        return events

    def _fail(self, err: DecodeError, events: list[DecodeEvent]) -> None:
        self.error = err
        events.append(err)
        self._buf = bytearray()
        self._pos = 0


# ---- payloads ---------------------------------------------------------------


def ping_payload(timestamp: int) -> bytes:
    """The 8-byte PING payload: a u64, big-endian."""
    return _U64.pack(timestamp & 0xFFFFFFFFFFFFFFFF)


def _as_bytes(v: str | bytes, what: str) -> bytes:
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    raise TypeError(f"{what} must be str or bytes, not {type(v).__name__}")


def auth_payload(user: str | bytes, token: str | bytes) -> bytes:
    """AUTH payload: u8 user length, user (1..64 bytes), token (1..256 bytes).
    str values are encoded as UTF-8. ValueError for a length out of range."""
    u = _as_bytes(user, "user")
    t = _as_bytes(token, "token")
    if not 1 <= len(u) <= AUTH_USER_MAX:
        raise ValueError(f"user must be 1..{AUTH_USER_MAX} bytes, not {len(u)}")
    if not 1 <= len(t) <= AUTH_TOKEN_MAX:
        raise ValueError(f"token must be 1..{AUTH_TOKEN_MAX} bytes, not {len(t)}")
    return bytes((len(u),)) + u + t


def parse_auth_reply(payload: bytes) -> tuple[bool, bytes]:
    """AUTH_REPLY payload to (success, 16-byte session id). ProtocolError
    unless it is exactly 17 bytes with a status of 0 or 1."""
    if len(payload) != 1 + SESSION_ID_LEN or payload[0] not in (0, 1):
        raise ProtocolError(f"malformed AUTH_REPLY payload {payload[:20].hex()}")
    return payload[0] == 1, bytes(payload[1:])


def auth_reply_payload(ok: bool, session: bytes = bytes(SESSION_ID_LEN)) -> bytes:
    if len(session) != SESSION_ID_LEN:
        raise ValueError(f"session id must be {SESSION_ID_LEN} bytes")
    return bytes((1 if ok else 0,)) + session


def parse_error(payload: bytes) -> tuple[int, str]:
    """ERROR payload to (code, message). The message is UTF-8 (undecodable
    bytes are replaced). ProtocolError when it is shorter than 2 bytes."""
    if len(payload) < 2:
        raise ProtocolError(f"malformed ERROR payload {payload.hex()}")
    code: int = _U16.unpack_from(payload)[0]
    return code, payload[2:].decode("utf-8", "replace")


def error_payload(code: int, message: str = "") -> bytes:
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"error code {code} is not a u16")
    return _U16.pack(code) + message.encode("utf-8")
