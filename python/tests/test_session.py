"""The sans-I/O session on its own: which answer belongs to which frame,
fed with server frames built here (the clients' tests do the same against
the real server)."""

from __future__ import annotations

import pytest

from net001 import session as session_mod
from net001.codec import ErrorCode, FrameType, encode_frame, error_payload
from net001.errors import (
    AuthError,
    ConnectionClosed,
    ProtocolError,
    ServerClosedError,
    ServerError,
)
from net001.session import ClientSession, Pong, Request


def err(code: int, msg: str = "") -> bytes:
    return encode_frame(FrameType.ERROR, error_payload(code, msg))


def pong_for(frame: bytes) -> bytes:
    return encode_frame(FrameType.PONG, frame[8:16])


def bcast(p: bytes) -> bytes:
    return encode_frame(FrameType.BROADCAST, p)


def test_replies_matched_in_order_with_broadcasts_between() -> None:
    s = ClientSession()
    f1, p1 = s.ping()
    f2, e2 = s.echo(b"two")
    f3, a3 = s.auth("alice", "pw")
    wire = (
        bcast(b"x")
        + pong_for(f1)
        + bcast(b"y")
        + encode_frame(FrameType.ECHO_REPLY, b"two")
        + encode_frame(FrameType.AUTH_REPLY, b"\x01" + bytes(range(16)))
        + bcast(b"z")
    )
    for b in wire:  # one byte at a time
        s.receive(bytes([b]))
    assert isinstance(p1.value(), Pong) and p1.value() is p1.result
    assert e2.value() == b"two"
    assert a3.value() == bytes(range(16))
    assert list(s.broadcasts) == [b"x", b"y", b"z"]
    assert s.outstanding == 0 and s.failure is None


def test_pong_carries_unique_increasing_timestamps() -> None:
    s = ClientSession()
    stamps = [int.from_bytes(s.ping()[0][8:16], "big") for _ in range(1000)]
    assert stamps == sorted(set(stamps))


def test_auth_failure_is_auth_error() -> None:
    s = ClientSession()
    _, r = s.auth("mallory", "nope")
    s.receive(encode_frame(FrameType.AUTH_REPLY, bytes(17)))
    with pytest.raises(AuthError, match="mallory"):
        r.value()


def test_auth_required_belongs_to_the_broadcast() -> None:
    s = ClientSession()
    s.broadcast(b"b")
    f, p = s.ping()
    s.receive(err(ErrorCode.AUTH_REQUIRED) + pong_for(f))
    assert isinstance(p.value(), Pong)  # the ping itself is fine
    with pytest.raises(ServerError) as ei:
        s.check()  # the next call raises the broadcast's error
    assert ei.value.code == 7 and ei.value.name == "AUTH_REQUIRED"
    assert ei.value.request == FrameType.BROADCAST
    s.check()  # raised once only


def test_auth_required_for_data_names_data() -> None:
    s = ClientSession()
    s.data(b"d")
    s.receive(err(ErrorCode.AUTH_REQUIRED))
    with pytest.raises(ServerError) as ei:
        s.check()
    assert ei.value.request == FrameType.DATA


def test_rate_limited_goes_to_the_request_at_once() -> None:
    s = ClientSession()
    s.broadcast(b"b")
    f, p = s.ping()
    s.receive(err(ErrorCode.RATE_LIMITED, "slow down"))
    with pytest.raises(ServerError) as ei:
        p.value()
    assert (ei.value.code, ei.value.request, ei.value.message) == (9, FrameType.PING, "slow down")
    # Its PONG arrives after all: the error was the broadcast's.
    s.receive(pong_for(f))
    assert s.late_replies == 1
    with pytest.raises(ServerError) as ei:
        s.check()
    assert ei.value.request == FrameType.BROADCAST and ei.value.code == 9
    assert s.outstanding == 0


def test_rate_limited_request_whose_reply_never_comes() -> None:
    s = ClientSession()
    for _ in range(5):
        s.broadcast(b"b")
    f1, p1 = s.ping()
    # B1..B3 pass; B4, B5 and the PING are refused.
    s.receive(err(9) * 3)
    with pytest.raises(ServerError):
        p1.value()
    errors = []
    while True:  # the two others are the broadcasts', raised one per call
        try:
            s.check()
            break
        except ServerError as e:
            errors.append(e.request)
    assert errors == [FrameType.BROADCAST, FrameType.BROADCAST]
    f2, p2 = s.ping()
    s.receive(pong_for(f2))
    assert isinstance(p2.value(), Pong)
    assert s.outstanding == 0 and s.late_replies == 0


def test_error_without_broadcasts_fails_the_oldest_request() -> None:
    s = ClientSession()
    f1, p1 = s.ping()
    f2, p2 = s.ping()
    s.receive(err(ErrorCode.RATE_LIMITED) + pong_for(f2))
    with pytest.raises(ServerError):
        p1.value()
    assert isinstance(p2.value(), Pong)


def test_unsolicited_error_is_kept_for_the_next_call() -> None:
    s = ClientSession()
    s.receive(err(ErrorCode.UNSUPPORTED_TYPE, "what"))
    with pytest.raises(ServerError) as ei:
        s.ping()
    assert ei.value.request is None and ei.value.name == "UNSUPPORTED_TYPE"
    assert s.outstanding == 0  # nothing was sent


def test_closing_error_fails_everything() -> None:
    s = ClientSession()
    _, p1 = s.ping()
    _, e1 = s.echo(b"e")
    s.receive(err(ErrorCode.SHUTTING_DOWN, "bye"))
    for r, t in [(p1, FrameType.PING), (e1, FrameType.ECHO)]:
        with pytest.raises(ServerClosedError) as ei:
            r.value()
        assert ei.value.code == 13 and ei.value.request == t
        assert isinstance(ei.value, ConnectionClosed)
    with pytest.raises(ConnectionClosed) as ci:
        s.ping()
    assert ci.value.server_error is not None
    assert ci.value.server_error.name == "SHUTTING_DOWN"
    assert "SHUTTING_DOWN" in str(ci.value)


def test_mismatched_reply_is_a_protocol_error() -> None:
    s = ClientSession()
    _, p = s.ping()
    s.receive(encode_frame(FrameType.PONG, bytes(8)))  # not our timestamp
    with pytest.raises(ProtocolError):
        p.value()
    with pytest.raises(ConnectionClosed, match="protocol error"):
        s.check()


@pytest.mark.parametrize(
    "wire",
    [
        encode_frame(FrameType.ECHO_REPLY, b"nobody asked"),
        encode_frame(FrameType.PING, bytes(8)),
        encode_frame(0x42, b""),
        encode_frame(FrameType.ERROR, b"\x00"),
        b"\xde\xad\xbe\xee",
        b"\xde\xad\xbe\xef\x07",
    ],
)
def test_bad_server_input_ends_the_connection(wire: bytes) -> None:
    s = ClientSession()
    s.receive(wire)
    assert isinstance(s.failure, ProtocolError)
    with pytest.raises(ConnectionClosed):
        s.check()


def test_bad_crc_from_the_server_ends_the_connection() -> None:
    s = ClientSession()
    f, p = s.ping()
    bad = bytearray(pong_for(f))
    bad[-1] ^= 1
    s.receive(bytes(bad))
    with pytest.raises(ProtocolError, match="bad CRC"):
        p.value()


def test_abandoned_request_reply_is_dropped() -> None:
    s = ClientSession()
    f1, p1 = s.ping()
    p1.abandon()
    f2, p2 = s.echo(b"x")
    s.receive(pong_for(f1) + encode_frame(FrameType.ECHO_REPLY, b"x"))
    assert s.late_replies == 1 and p1.result is None
    assert p2.value() == b"x"


def test_connection_lost_mid_frame() -> None:
    s = ClientSession()
    f, p = s.ping()
    s.receive(pong_for(f)[:5])
    s.connection_lost(None)
    with pytest.raises(ConnectionClosed, match="middle of a frame"):
        p.value()


def test_callback_runs_once_on_completion() -> None:
    s = ClientSession()
    f, p = s.ping()
    seen: list[Request] = []
    p.callback = seen.append
    s.receive(pong_for(f))
    s.connection_lost(None)
    assert seen == [p]


def test_broadcast_queue_drops_the_oldest() -> None:
    s = ClientSession(broadcast_queue=3)
    s.receive(b"".join(bcast(bytes([i])) for i in range(10)))
    assert list(s.broadcasts) == [b"\x07", b"\x08", b"\x09"]
    assert s.dropped_broadcasts == 7
    none = ClientSession(broadcast_queue=0)
    none.receive(bcast(b"a"))
    assert none.take_broadcast() is None and none.dropped_broadcasts == 1


def test_untracked_broadcasts_stay_bounded() -> None:
    s = ClientSession()
    for i in range(3 * session_mod._MAX_RUNS):
        if i % 2:
            s.broadcast(b"b")
        else:
            s.data(b"d")
    assert len(s._out) <= session_mod._MAX_RUNS
    assert s.outstanding == 3 * session_mod._MAX_RUNS
    f, p = s.ping()
    s.receive(pong_for(f))
    assert s.outstanding == 0


def test_payload_checks() -> None:
    s = ClientSession()
    with pytest.raises(ValueError):
        s.echo(bytes(65536))
    with pytest.raises(TypeError):
        s.broadcast("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        s.auth("", "x")
    assert s.outstanding == 0
