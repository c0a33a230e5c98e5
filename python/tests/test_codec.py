"""The sans-I/O codec: PROTOCOL.md's vectors byte for byte, every prefix,
any chunking, every decoder error."""

from __future__ import annotations

import random
import re
import zlib

import pytest

from net001 import codec
from net001.codec import (
    BadCRC,
    BadLength,
    BadMagic,
    BadVersion,
    Decoder,
    DecodeError,
    ErrorCode,
    Frame,
    FrameType,
    encode_frame,
)
from net001.errors import ProtocolError

from .conftest import REPO

# (name, type, payload, frame hex) exactly as in PROTOCOL.md section 1.
VECTORS = [
    ("PING ts=1", FrameType.PING, bytes.fromhex("0000000000000001"),
     "de ad be ef 01 01 00 08 00 00 00 00 00 00 00 01 9e f2 f1 cc"),
    ('ECHO "hi"', FrameType.ECHO, b"hi", "de ad be ef 01 03 00 02 68 69 97 1f e5 14"),
    ("ECHO empty", FrameType.ECHO, b"", "de ad be ef 01 03 00 00 60 77 f2 de"),
    ('BROADCAST "hello"', FrameType.BROADCAST, b"hello",
     "de ad be ef 01 05 00 05 68 65 6c 6c 6f 8e 5b 34 d4"),
    ("AUTH alice/s3cret", FrameType.AUTH, b"\x05alices3cret",
     "de ad be ef 01 06 00 0c 05 61 6c 69 63 65 73 33 63 72 65 74 11 07 bc db"),
    ('ERROR 3 "bad crc"', FrameType.ERROR, b"\x00\x03bad crc",
     "de ad be ef 01 ff 00 09 00 03 62 61 64 20 63 72 63 05 86 52 1e"),
]


def test_vectors_are_protocol_md_s() -> None:
    text = (REPO / "proto" / "PROTOCOL.md").read_text()
    block = text.split("### Test vectors", 1)[1].split("```")[1]
    found = {}
    for line in block.strip().splitlines():
        m = re.match(r"(.*?)\s{2,}((?:[0-9a-f]{2} ?)+)$", line.strip())
        assert m, line
        found[m.group(1)] = m.group(2).strip()
    assert found == {name: hx for name, _, _, hx in VECTORS}


def test_crc_variant_check_value() -> None:
    assert zlib.crc32(b"123456789") == 0xCBF43926


@pytest.mark.parametrize("name,ftype,payload,hx", VECTORS, ids=[v[0] for v in VECTORS])
def test_encode_vector(name: str, ftype: int, payload: bytes, hx: str) -> None:
    assert encode_frame(ftype, payload) == bytes.fromhex(hx)
    assert Frame(ftype, payload).encode() == bytes.fromhex(hx)


@pytest.mark.parametrize("name,ftype,payload,hx", VECTORS, ids=[v[0] for v in VECTORS])
def test_decode_vector_and_every_prefix(name: str, ftype: int, payload: bytes, hx: str) -> None:
    wire = bytes.fromhex(hx)
    for cut in range(len(wire)):
        d = Decoder()
        assert d.feed(wire[:cut]) == [], cut
        # need: header first, then exactly the rest of the frame
        want = 8 - cut if cut < 8 else len(wire) - cut
        assert d.need == want, cut
        assert d.feed(wire[cut:]) == [Frame(ftype, payload)], cut
        assert d.need == 8 and d.buffered == 0
    d = Decoder()
    events = [e for b in wire for e in d.feed(bytes([b]))]
    assert events == [Frame(ftype, payload)]


def test_payload_helpers_match_vectors() -> None:
    assert codec.ping_payload(1) == VECTORS[0][2]
    assert codec.auth_payload("alice", "s3cret") == VECTORS[4][2]
    assert codec.parse_error(VECTORS[5][2]) == (3, "bad crc")
    assert codec.error_payload(3, "bad crc") == VECTORS[5][2]


def test_all_vectors_in_any_chunking() -> None:
    rng = random.Random(1)
    wire = b"".join(bytes.fromhex(v[3]) for v in VECTORS)
    want = [Frame(v[1], v[2]) for v in VECTORS]
    for _ in range(300):
        d = Decoder()
        got: list[object] = []
        i = 0
        while i < len(wire):
            n = rng.randint(1, 40)
            got += d.feed(wire[i : i + n])
            i += n
        assert got == want


def test_random_frames_roundtrip() -> None:
    rng = random.Random(7)
    frames = []
    for i in range(600):
        size = rng.choice([0, 1, 7, 8, 100, 1000, rng.randint(0, 70000) % 65536, 65535])
        frames.append(Frame(rng.randint(0, 255), rng.randbytes(size)))
    wire = b"".join(f.encode() for f in frames)
    assert len(wire) == sum(12 + len(f.payload) for f in frames)
    # whole, in random chunks, and in chunks that cut at every header byte
    assert Decoder().feed(wire) == frames
    d = Decoder()
    got: list[object] = []
    pos = 0
    while pos < len(wire):
        n = rng.choice([1, 2, 5, 11, 12, 13, 4096, 70000])
        got += d.feed(wire[pos : pos + n])
        pos += n
    assert got == frames


def test_encode_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        encode_frame(FrameType.ECHO, bytes(65536))
    with pytest.raises(ValueError):
        encode_frame(256, b"")
    with pytest.raises(ValueError):
        encode_frame(-1, b"")
    assert len(encode_frame(FrameType.ECHO, bytes(65535))) == codec.MAX_FRAME


@pytest.mark.parametrize("bad_at", [0, 1, 2, 3])
def test_bad_magic_found_at_the_first_wrong_byte(bad_at: int) -> None:
    wire = bytearray(encode_frame(FrameType.PING, bytes(8)))
    wire[bad_at] ^= 0x40
    d = Decoder()
    events = d.feed(wire[: bad_at + 1])
    assert len(events) == 1 and isinstance(events[0], BadMagic)
    assert events[0].fatal and events[0].code == ErrorCode.BAD_MAGIC
    assert events[0].offset == 0
    # fatal: the decoder keeps answering the same error
    assert d.feed(encode_frame(FrameType.PING, bytes(8))) == [events[0]]
    assert d.error is events[0] and d.need == 0


def test_bad_version() -> None:
    good = encode_frame(FrameType.ECHO, b"ok")
    wire = bytearray(encode_frame(FrameType.PING, bytes(8)))
    wire[4] = 2
    d = Decoder()
    events = d.feed(good + wire[:5])
    assert events[0] == Frame(FrameType.ECHO, b"ok")
    assert isinstance(events[1], BadVersion)
    assert events[1].version == 2 and events[1].offset == len(good)
    assert isinstance(events[1], DecodeError) and isinstance(events[1], ProtocolError)


def test_length_above_limit_decided_from_the_header() -> None:
    d = Decoder(max_payload=8)
    frame = encode_frame(FrameType.ECHO, bytes(9))
    assert d.feed(frame[:7]) == []
    events = d.feed(frame[7:8])
    assert len(events) == 1 and isinstance(events[0], BadLength)
    assert (events[0].length, events[0].limit) == (9, 8)
    assert events[0].code == ErrorCode.FRAME_TOO_LARGE
    ok = Decoder(max_payload=8)
    assert ok.feed(encode_frame(FrameType.ECHO, bytes(8))) == [Frame(FrameType.ECHO, bytes(8))]
    with pytest.raises(ValueError):
        Decoder(max_payload=65536)


def test_bad_crc_skips_the_frame_and_goes_on() -> None:
    a = encode_frame(FrameType.ECHO, b"first")
    bad = bytearray(encode_frame(FrameType.BROADCAST, b"corrupt me"))
    bad[10] ^= 1
    c = encode_frame(FrameType.PING, bytes(8))
    wire = a + bad + c
    for step in (1, 3, len(wire)):
        d = Decoder()
        events: list[object] = []
        for i in range(0, len(wire), step):
            events += d.feed(wire[i : i + step])
        assert len(events) == 3
        assert events[0] == Frame(FrameType.ECHO, b"first")
        e = events[1]
        assert isinstance(e, BadCRC) and not e.fatal
        assert e.frame_type == FrameType.BROADCAST and e.offset == len(a)
        assert e.size == len(bad) and e.code == ErrorCode.BAD_CRC
        assert e.expected == int.from_bytes(bad[-4:], "big")
        assert e.actual == zlib.crc32(bytes(bad[:-4]))
        assert events[2] == Frame(FrameType.PING, bytes(8))
        assert d.error is None


def test_crc_covers_the_header() -> None:
    wire = bytearray(encode_frame(FrameType.ECHO, b"abc"))
    wire[5] = FrameType.BROADCAST  # type changed, CRC not updated
    events = Decoder().feed(wire)
    assert len(events) == 1 and isinstance(events[0], BadCRC)


def test_auth_payload_limits() -> None:
    assert codec.auth_payload(b"u" * 64, b"t" * 256)[0] == 64
    for user, token in [("", "t"), ("u" * 65, "t"), ("u", ""), ("u", "t" * 257)]:
        with pytest.raises(ValueError):
            codec.auth_payload(user, token)
    with pytest.raises(TypeError):
        codec.auth_payload(1, "t")  # type: ignore[arg-type]
    assert codec.auth_payload("é", "x") == b"\x02\xc3\xa9x"


def test_auth_reply_and_error_payloads() -> None:
    sid = bytes(range(16))
    assert codec.parse_auth_reply(codec.auth_reply_payload(True, sid)) == (True, sid)
    assert codec.parse_auth_reply(bytes(17)) == (False, bytes(16))
    for bad in [b"", bytes(16), bytes(18), b"\x02" + bytes(16)]:
        with pytest.raises(ProtocolError):
            codec.parse_auth_reply(bad)
    assert codec.parse_error(b"\x00\x09") == (9, "")
    assert codec.parse_error(b"\x00\x01\xff") == (1, "\ufffd")
    with pytest.raises(ProtocolError):
        codec.parse_error(b"\x00")
    assert codec.error_name(9) == "RATE_LIMITED"
    assert codec.error_name(99) == "UNKNOWN_99"
    assert ErrorCode.SHUTTING_DOWN in codec.CLOSING_CODES
    assert ErrorCode.RATE_LIMITED not in codec.CLOSING_CODES


def test_error_codes_match_protocol_md() -> None:
    text = (REPO / "proto" / "PROTOCOL.md").read_text()
    rows = re.findall(r"^\| (\d+) \| ([A-Z_]+) \| (close|frame discarded)", text, re.M)
    assert len(rows) == 14
    for code, name, after in rows:
        assert ErrorCode(int(code)).name == name
        assert (ErrorCode(int(code)) in codec.CLOSING_CODES) == (after == "close")
