#!/usr/bin/python3
"""The NET-001 Wireshark dissector on captures written by this test.

Each case writes a pcap of made-up TCP conversations holding known bytes,
dissects it with `tshark -X lua_script:proto/wireshark/net001.lua -T fields`
and compares every net001.* field, the expert infos and the Info column
with what the test computes from the bytes it wrote (ws_support.py):
the PROTOCOL.md vectors, frames split across segments (fixed cuts and
random ones), segments out of order and retransmitted, many frames in one
segment, bad CRCs, ERROR frames, TLS on
the port, the heuristic on other ports and the port preference, bad input
of every kind, and random damage that must never raise a Lua error.
"""

import os
import random
import re
import ssl
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ws_support import *  # noqa: E402,F403

ALL = FIELDS + EXPERTS
CLIENT_PORT = 40000


def pcap_path(wd, name):
    return os.path.join(wd, name + ".pcap")


def new_pcap(wd, name):
    return PcapWriter(pcap_path(wd, name))


def dissect(wd, name, prefs=(), extra=()):
    return tshark_fields(pcap_path(wd, name), wd, ALL, prefs, extra)


def mixed_frames(rng, n):
    """n well-formed frames of every type, with varied payloads."""
    out = []
    for i in range(n):
        k = i % 11
        if k == 0:
            out.append(ping(rng.getrandbits(64)))
        elif k == 1:
            out.append(frame(PONG, struct.pack(">Q", rng.getrandbits(64))))
        elif k == 2:
            out.append(frame(ECHO, ("echo %d" % i).encode()))
        elif k == 3:
            out.append(frame(ECHO_REPLY, bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))))
        elif k == 4:
            out.append(frame(BROADCAST, b"x" * rng.randrange(0, 80)))
        elif k == 5:
            out.append(auth(b"user%d" % i, b"token-%d" % rng.getrandbits(32)))
        elif k == 6:
            out.append(frame(AUTH_REPLY, b"\x01" + bytes(rng.getrandbits(8) for _ in range(16))))
        elif k == 7:
            out.append(frame(AUTH_REPLY, b"\x00" + bytes(16)))
        elif k == 8:
            out.append(frame(DATA, bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 1200)))))
        elif k == 9:
            out.append(error(rng.randrange(1, 15), ("message %d" % i).encode()))
        else:
            out.append(frame(ECHO))
    return out


# ---------------------------------------------------------------------------

def protocol_vectors():
    """The test vectors of proto/PROTOCOL.md, read from the document."""
    text = open(os.path.join(SOURCE_ROOT, "proto", "PROTOCOL.md")).read()
    block = text.split("### Test vectors", 1)[1].split("```")[1]
    out = []
    for line in block.strip().splitlines():
        m = re.match(r"^(.*?)\s{2,}((?:[0-9a-f]{2} ?)+)$", line.strip())
        if m:
            out.append((m.group(1), bytes.fromhex(m.group(2))))
    return out


def case_vectors(ck, wd):
    vecs = protocol_vectors()
    ck.eq("PROTOCOL.md has 6 test vectors", len(vecs), 6)
    byname = dict(vecs)
    # the test's own frame builder agrees with the document
    ck.eq("frame builder reproduces the vectors", [
        ping(1), frame(ECHO, b"hi"), frame(ECHO), frame(BROADCAST, b"hello"),
        auth(b"alice", b"s3cret"), error(3, b"bad crc")], [b for _, b in vecs])

    w = new_pcap(wd, "vectors")
    c = TcpConversation(w, CLIENT_PORT, 5000)
    expected = {}
    for _, b in vecs:
        expected[c.client(b)] = [b]
    c.close()
    w.close()
    rows = dissect(wd, "vectors")
    check_packets(ck, "vectors", rows, expected)

    # and the meaning, spelled out once
    def row_of(name):
        for num, frames in expected.items():
            if frames[0] == byname[name]:
                return rows[num]
        return {}
    r = row_of("PING ts=1")
    ck.eq("vector PING: type and timestamp",
          (r.get("net001.type"), r.get("net001.ping.timestamp")), ("0x01", "1"))
    r = row_of('ECHO "hi"')
    ck.eq('vector ECHO "hi": payload', r.get("net001.payload"), "6869")
    r = row_of("ECHO empty")
    ck.eq("vector ECHO empty: length, no payload",
          (r.get("net001.length"), r.get("net001.payload")), ("0", None))
    r = row_of('BROADCAST "hello"')
    ck.eq("vector BROADCAST: info", r.get("_ws.col.Info"), 'BROADCAST len=5 "hello"')
    r = row_of("AUTH alice/s3cret")
    ck.eq("vector AUTH: user and token",
          (r.get("net001.auth.user_len"), r.get("net001.auth.user"), r.get("net001.auth.token")),
          ("5", "alice", "s3cret"))
    r = row_of('ERROR 3 "bad crc"')
    ck.eq("vector ERROR: code, name, message",
          (r.get("net001.error.code"), r.get("net001.error.name"), r.get("net001.error.message")),
          ("3", "BAD_CRC", "bad crc"))
    ck.eq("vectors: every CRC good",
          sorted({r.get("net001.crc.status") for n, r in rows.items() if n in expected}), ["1"])


def case_many_in_one_segment(ck, wd):
    rng = random.Random(1)
    requests = mixed_frames(rng, 66)
    replies = mixed_frames(rng, 33)
    w = new_pcap(wd, "many")
    c = TcpConversation(w, CLIENT_PORT, 5000)
    expected = {c.client(b"".join(requests)): requests,
                c.server(b"".join(replies)): replies}
    c.close()
    w.close()
    rows = dissect(wd, "many")
    check_packets(ck, "many frames in one segment", rows, expected)
    ck.eq("many frames: 66 types listed in the one packet",
          len(rows[min(expected)].get("net001.type", "").split(AGGREGATOR)), 66)
    # two passes (as the GUI does) give the very same answers
    rows2 = dissect(wd, "many", extra=["-2"])
    check_packets(ck, "many frames in one segment, two passes", rows2, expected)


def case_split(ck, wd):
    w = new_pcap(wd, "split")
    c = TcpConversation(w, CLIENT_PORT, 5000)
    expected = {}
    big = frame(DATA, bytes(range(256)) * 12)
    # inside the magic, inside the header, one byte, payload, the rest
    cuts = [3, 7, 8, 9, 700, len(big)]
    prev = 0
    for cut in cuts:
        n = c.client(big[prev:cut])
        prev = cut
    expected[n] = [big]
    # the largest frame, in 1460-byte segments
    largest = frame(ECHO, bytes(i % 251 for i in range(65535)))
    for off in range(0, len(largest), 1460):
        n = c.server(largest[off:off + 1460])
    expected[n] = [largest]
    # the tail of one frame, whole frames and the head of the next
    a, b2, d = frame(ECHO, b"A" * 100), ping(7), frame(BROADCAST, b"B" * 50)
    c.client(a[:60])
    n1 = c.client(a[60:] + b2 + d[:10])
    n2 = c.client(d[10:])
    expected[n1] = [a, b2]
    expected[n2] = [d]
    c.close()
    w.close()
    rows = dissect(wd, "split")
    check_packets(ck, "frames split across segments", rows, expected)
    ck.eq("split: the DATA frame reassembled from 6 segments",
          rows[min(k for k in expected)].get("net001.payload"), big[8:-4].hex())


def random_segments(rng, data, maxseg):
    out, off = [], 0
    while off < len(data):
        n = rng.randrange(1, maxseg + 1)
        out.append(data[off:off + n])
        off += n
    return out


def case_random_cuts(ck, wd):
    """Both directions cut at random places, segments interleaved."""
    rng = random.Random(2)
    w = new_pcap(wd, "random")
    expected = {}
    for conv in range(3):
        c = TcpConversation(w, CLIENT_PORT + 1 + conv, 5000)
        streams = {}
        for side in ("client", "server"):
            frames = mixed_frames(rng, 40)
            data = b"".join(frames)
            ends, off = [], 0
            for fr in frames:
                off += len(fr)
                ends.append(off)
            segs = random_segments(rng, data, [7, 60, 700][conv])
            streams[side] = [frames, ends, segs, 0, 0]
        while any(s[2] for s in streams.values()):
            side = rng.choice([k for k, s in streams.items() if s[2]])
            frames, ends, segs, pos, done = streams[side]
            seg = segs.pop(0)
            n = (c.client if side == "client" else c.server)(seg)
            pos += len(seg)
            completed = []
            while done < len(frames) and ends[done] <= pos:
                completed.append(frames[done])
                done += 1
            if completed:
                expected[n] = completed
            streams[side][3:] = [pos, done]
        c.close()
    w.close()
    rows = dissect(wd, "random")
    check_packets(ck, "random cuts, 3 conversations x 2 directions x 40 frames", rows, expected)


def completions(frames, cuts, order, nums):
    """Where each frame is dissected when the stream's pieces (cut at cuts)
    arrive in order (packet numbers nums): at the packet that extends the
    contiguous start of the stream past the frame's last byte, as TCP
    reassembling out of order delivers it. A repeated piece completes
    nothing."""
    data_len = sum(len(fr) for fr in frames)
    bounds = [0] + list(cuts) + [data_len]
    ends, off = [], 0
    for fr in frames:
        off += len(fr)
        ends.append(off)
    have, prefix, done, out = set(), 0, 0, {}
    for i, num in zip(order, nums):
        have.add(i)
        while prefix < data_len and bounds.index(prefix) in have:
            prefix = bounds[bounds.index(prefix) + 1]
        completed = []
        while done < len(frames) and ends[done] <= prefix:
            completed.append(frames[done])
            done += 1
        if completed:
            out[num] = completed
    return out


def case_out_of_order(ck, wd):
    """Segments that overtake one another, as loopback delivers them under
    load: a frame's last segment captured after the next frame's (the
    live capture where a 65535-byte DATA frame went missing), a late
    middle segment, a late segment across a frame boundary, a
    retransmission, and random reordering in both directions."""
    rng = random.Random(5)
    w = new_pcap(wd, "ooo")
    expected = {}
    late = {}  # label -> packet numbers of the segments written late

    def conv(port, side, frames, cuts, order, label):
        c = TcpConversation(w, CLIENT_PORT + port, 5000)
        nums = c.segments(side, b"".join(frames), cuts, order)
        c.close()
        expected.update(completions(frames, cuts, order, nums))
        # a piece written after a later piece of the stream, or again
        late[label] = [nums[k] for k, i in enumerate(order) if any(j >= i for j in order[:k])]

    # the live capture: AUTH, DATA 65535, 65535 and 18930 bytes (the file
    # of the live test), PING; the second DATA frame's tail (17942 bytes)
    # captured after the third frame, which starts right after it
    blob = bytes(rng.getrandbits(8) for _ in range(150000))
    frames = [auth(b"alice", b"s3cret"), frame(DATA, blob[:65535]),
              frame(DATA, blob[65535:131070]), frame(DATA, blob[131070:]), ping(77)]
    conv(0, "client", frames, [24, 32792, 65560, 113176, 131118, 150060],
         [0, 1, 2, 3, 5, 4, 6], "DATA tail after the next frame")
    # a late middle segment of one frame, then frames after it
    big = frame(ECHO, bytes(i % 253 for i in range(3000)))
    frames = [big, ping(1), frame(ECHO, b"after")]
    conv(1, "client", frames, [1000, 2000, len(big)], [0, 2, 1, 3], "late middle segment")
    # the late segment holds a frame's tail, a whole frame and the next's head
    a, b2, d = frame(ECHO, b"A" * 100), ping(7), frame(BROADCAST, b"B" * 50)
    conv(2, "server", [a, b2, d], [60, len(a) + len(b2) + 10], [0, 2, 1],
         "late segment across frames")
    # a retransmission: the same segment twice, the frame once
    frames = [frame(ECHO, b"R" * 500), frame(ECHO, b"S" * 20)]
    conv(3, "client", frames, [200, 400, 512], [0, 1, 1, 2, 3], "retransmission")
    # random frames cut at random, neighbouring segments swapped
    for k in range(4):
        frames = mixed_frames(rng, 30)
        data_len = sum(len(fr) for fr in frames)
        cuts = sorted(rng.sample(range(1, data_len), 40))
        order = list(range(len(cuts) + 1))
        for _ in range(8):
            i = rng.randrange(len(order) - 1)
            order[i], order[i + 1] = order[i + 1], order[i]
        conv(4 + k, "client" if k % 2 == 0 else "server", frames, cuts, order,
             "random %d" % k)
    w.close()

    flags = ["tcp.analysis.out_of_order", "tcp.analysis.retransmission"]
    rows = tshark_fields(pcap_path(wd, "ooo"), wd, ALL + flags)
    check_packets(ck, "out of order (tcp.reassemble_out_of_order on)", rows, expected)
    # the capture holds the pattern: TCP's analysis flags each late segment
    ck.eq("out of order: TCP flags every late segment", {
        label: [n for n in nums if not any(f in rows[n] for f in flags)]
        for label, nums in late.items()}, {label: [] for label in late})
    ck.true("out of order: the DATA tail is flagged out-of-order, as in the live capture",
            all("tcp.analysis.out_of_order" in rows[n]
                for n in late["DATA tail after the next frame"]))

    # Wireshark 4.0's defaults hand some frames to no dissector (see
    # ws_support.TCP_PREFS), and the segment after a gap to the dissector
    # in the middle of a frame (flagged as bytes outside any frame, up to
    # the next magic); whatever is handed over is dissected right
    rows = tshark_fields(pcap_path(wd, "ooo"), wd, ALL,
                         prefs=["tcp.reassemble_out_of_order:FALSE"])
    check_clean(ck, "out of order, TCP defaults", rows, allow_malformed=True)
    wrong = []
    for n, r in sorted(rows.items()):
        if "net001.type" not in r:
            continue
        types = r["net001.type"].split(AGGREGATOR)
        status = r.get("net001.crc.status", "").split(AGGREGATOR)
        if len(status) != len(types) or any(st != "1" for st in status):
            wrong.append((n, net001_fields(r)))
    ck.eq("out of order, TCP defaults: every frame shown is whole (good CRC)", wrong, [])


def case_bad_crc(ck, wd):
    good1, good2 = ping(5), frame(ECHO, b"after")
    bad_field = frame(ECHO, b"crc field wrong", crc=0x12345678)
    flipped = bytearray(frame(BROADCAST, b"payload flipped"))
    flipped[10] ^= 0x01
    flipped = bytes(flipped)
    w = new_pcap(wd, "badcrc")
    c = TcpConversation(w, CLIENT_PORT, 5000)
    seg = [good1, bad_field, good2, flipped]
    expected = {c.client(b"".join(seg)): seg}
    hdr = bytearray(frame(DATA, b"z" * 20))
    hdr[5] = ECHO  # type changed in flight: the CRC covers the header too
    expected[c.client(bytes(hdr))] = [bytes(hdr)]
    c.close()
    w.close()
    rows = dissect(wd, "badcrc")
    check_packets(ck, "bad CRCs", rows, expected)
    first = rows[min(expected)]
    ck.eq("bad CRC: status per frame", first.get("net001.crc.status"),
          AGGREGATOR.join(["1", "0", "1", "0"]))
    ck.eq("bad CRC: flagged twice with expert info", first.get("net001.crc.bad"),
          AGGREGATOR.join(["1", "1"]))
    ck.true("bad CRC: expert message gives both values",
            "frame says 0x12345678, computed 0x%08x" % (zlib.crc32(bad_field[:-4]) & 0xFFFFFFFF)
            in first.get("_ws.expert.message", ""), first.get("_ws.expert.message"))
    ck.true("bad CRC: Info marks it", "[bad CRC]" in first.get("_ws.col.Info", ""))
    # with verification off: unverified, nothing flagged
    rows = dissect(wd, "badcrc", prefs=["net001.check_crc:FALSE"])
    check_packets(ck, "bad CRCs, net001.check_crc off", rows, expected, check_crc=False)


def case_errors(ck, wd):
    w = new_pcap(wd, "errors")
    c = TcpConversation(w, CLIENT_PORT, 5000)
    expected = {}
    msgs = [(code, ("error %s" % name.lower()).encode()) for code, name in ERROR_NAMES.items()]
    msgs += [(99, b"a code of the future"), (3, b""), (11, "délai dépassé ✓".encode())]
    for code, msg in msgs:
        fr = error(code, msg)
        expected[c.server(fr)] = [fr]
    # control characters, a stray byte and a long text: escaped and cut in Info
    odd = error(5, b"a\nb\tc\x01\\\xff" + "é".encode() * 70)
    n_odd = c.server(odd)
    c.close()
    w.close()
    rows = dissect(wd, "errors")
    r = rows[n_odd]
    ck.eq("ERROR with odd bytes: Info", r.get("_ws.col.Info"),
          'ERROR 5 BAD_PAYLOAD "a\\nb\\tc\\x01\\\\\\xff' + "é" * 56 + '..."')
    ck.eq("ERROR with odd bytes: Info as the test computes it", r.get("_ws.col.Info"),
          info_summary(odd))
    ck.eq("ERROR with odd bytes: code and name",
          (r.get("net001.error.code"), r.get("net001.error.name"), r.get("net001.crc.status")),
          ("5", "BAD_PAYLOAD", "1"))
    del rows[n_odd]
    check_packets(ck, "ERROR frames: 14 codes, an unknown one, empty and UTF-8 messages",
                  rows, expected)
    names = [rows[n].get("net001.error.name") for n in sorted(expected)]
    ck.eq("ERROR names", names, [ERROR_NAMES.get(code, "unknown") for code, _ in msgs])
    last = rows[max(expected)]
    ck.eq("ERROR UTF-8 message", last.get("net001.error.message"), "délai dépassé ✓")


def tls_flights(wd, client_data, server_data):
    """A real TLS 1.3 session between two Python ssl objects, both sides'
    bytes in order, with client_data and server_data sent inside it."""
    cert, key = os.path.join(wd, "tls.crt"), os.path.join(wd, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    cin, cout, sin, sout = (ssl.MemoryBIO() for _ in range(4))
    cli = cctx.wrap_bio(cin, cout, server_hostname="localhost")
    srv = sctx.wrap_bio(sin, sout, server_side=True)
    flights = []

    def pump():
        d = cout.read()
        if d:
            flights.append(("client", d))
            sin.write(d)
        d = sout.read()
        if d:
            flights.append(("server", d))
            cin.write(d)

    done = [False, False]
    for _ in range(20):
        for i, side in enumerate((cli, srv)):
            if not done[i]:
                try:
                    side.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
            pump()
        if all(done):
            break
    cli.write(client_data)
    pump()
    if srv.read(len(client_data)) != client_data:
        raise Failure("TLS self-test: server read something else")
    srv.write(server_data)
    pump()
    if cli.read(len(server_data)) != server_data:
        raise Failure("TLS self-test: client read something else")
    return flights


def case_tls(ck, wd):
    req, rep = ping(42), frame(PONG, struct.pack(">Q", 42))
    flights = tls_flights(wd, req, rep)
    w = new_pcap(wd, "tls")
    c = TcpConversation(w, CLIENT_PORT, 5000)
    tls_packets = [(c.client if side == "client" else c.server)(d) for side, d in flights]
    c.close()
    # a plain conversation on the same port afterwards: still NET-001
    c = TcpConversation(w, CLIENT_PORT + 1, 5000)
    expected = {c.client(req): [req], c.server(rep): [rep]}
    c.close()
    w.close()
    rows = dissect(wd, "tls")
    check_packets(ck, "TLS on port 5000 left alone, plain NET-001 beside it", rows, expected,
                  foreign=tls_packets)
    ck.true("TLS: every TLS segment is dissected as TLS (%d)" % len(tls_packets),
            all("tls" in rows[n].get("frame.protocols", "").split(":") for n in tls_packets),
            str({n: rows[n].get("frame.protocols") for n in tls_packets}))


def case_heuristic_and_port(ck, wd):
    rng = random.Random(3)
    w = new_pcap(wd, "heur")
    on_7777, on_5000 = {}, {}
    c = TcpConversation(w, CLIENT_PORT, 7777)
    frames = mixed_frames(rng, 22)
    on_7777[c.client(frames[0])] = [frames[0]]
    on_7777[c.server(frames[1])] = [frames[1]]
    on_7777[c.client(b"".join(frames[2:12]))] = frames[2:12]
    big = frame(DATA, b"q" * 3000)
    c.server(big[:100])
    on_7777[c.server(big[100:] + frames[12])] = [big, frames[12]]
    c.close()
    c = TcpConversation(w, CLIENT_PORT + 1, 5000)
    on_5000[c.client(frames[13])] = [frames[13]]
    on_5000[c.server(frames[14])] = [frames[14]]
    c.close()
    # magic with another version, and data with the magic further in: not ours
    c = TcpConversation(w, CLIENT_PORT + 2, 7778)
    others = [c.client(frame(PING, bytes(8), version=2))]
    c.close()
    c = TcpConversation(w, CLIENT_PORT + 3, 7779)
    others.append(c.client(b"HELLO" + ping(1)))
    c.close()
    w.close()

    both = dict(on_7777)
    both.update(on_5000)
    rows = dissect(wd, "heur")
    check_packets(ck, "heuristic: port 7777 found, 5000 by port, version 2 and late magic not",
                  rows, both, foreign=others)
    rows = dissect(wd, "heur", prefs=["net001.heuristic:FALSE"])
    check_packets(ck, "net001.heuristic off: only port 5000", rows, on_5000,
                  foreign=list(on_7777) + others)
    rows = dissect(wd, "heur", prefs=["net001.heuristic:FALSE", "net001.port:7777"])
    check_packets(ck, "net001.port:7777, heuristic off: only port 7777", rows, on_7777,
                  foreign=list(on_5000) + others)
    rows = dissect(wd, "heur", prefs=["net001.port:0"])
    check_packets(ck, "net001.port:0: the heuristic finds both", rows, both, foreign=others)


def case_bad_input(ck, wd):
    w = new_pcap(wd, "bad")
    c = TcpConversation(w, CLIENT_PORT, 5000)
    checks = []  # (packet, label, expert fields wanted, row predicate)
    good = ping(9)
    c.client(good)
    junk = b"this is not a frame at all"
    n = c.client(junk)
    checks.append((n, "garbage after a frame", ["net001.magic.bad"],
                   lambda r: r.get("net001.garbage") == junk.hex()
                   and r.get("_ws.col.Info") == "Bad magic (%d bytes)" % len(junk)))
    seg = good + b"#" * 20 + frame(ECHO, b"resync")
    n = c.client(seg)
    checks.append((n, "frame, garbage, frame in one segment", ["net001.magic.bad"],
                   lambda r: r.get("net001.type") == "0x01" + AGGREGATOR + "0x03"
                   and r.get("net001.garbage") == ("#" * 20).encode().hex()))
    n = c.client(frame(PING, bytes(8), version=7))
    checks.append((n, "version 7", ["net001.version.bad"],
                   lambda r: r.get("net001.version") == "7"
                   and r.get("net001.magic") == "0xdeadbeef"))
    n = c.client(frame(0x42, b"what"))
    checks.append((n, "unknown type 0x42", ["net001.type.unknown"],
                   lambda r: r.get("net001.type") == "0x42"
                   and r.get("net001.crc.status") == "1"))
    shapes = [
        ("PING of 4 bytes", frame(PING, b"abcd")),
        ("PONG of 9 bytes", frame(PONG, b"123456789")),
        ("AUTH empty", frame(AUTH)),
        ("AUTH user length 0", frame(AUTH, b"\x00token")),
        ("AUTH user length 65", frame(AUTH, b"\x41" + b"u" * 65 + b"t")),
        ("AUTH user past the payload", frame(AUTH, b"\x09abc")),
        ("AUTH without token", frame(AUTH, b"\x03bob")),
        ("AUTH token of 257 bytes", frame(AUTH, b"\x03bob" + b"t" * 257)),
        ("AUTH_REPLY of 5 bytes", frame(AUTH_REPLY, b"\x01abcd")),
        ("AUTH_REPLY status 2", frame(AUTH_REPLY, b"\x02" + bytes(16))),
        ("AUTH_REPLY empty", frame(AUTH_REPLY)),
        ("ERROR of 1 byte", frame(ERROR, b"\x01")),
        ("PING empty", frame(PING)),
    ]
    for label, fr in shapes:
        n = c.client(fr)
        checks.append((n, label, ["net001.payload.bad"],
                       lambda r, fr=fr: r.get("net001.length") == str(len(fr) - 12)
                       and r.get("net001.crc.status") == "1"))
    # cut short by the capture's snap length: header only, payload part
    fr = frame(DATA, b"d" * 500)
    n = c.client(fr, snap=54 + 6)
    checks.append((n, "snap length inside the header", ["net001.truncated"], lambda r: True))
    c.close()

    # a length running past the end of the capture (no more data, no FIN)
    c2 = TcpConversation(w, CLIENT_PORT + 1, 5000)
    c2.client(ping(1))
    long_frame = frame(DATA, b"L" * 1000)
    n_long = c2.client(long_frame[:40])
    w.close()

    rows = dissect(wd, "bad")
    # expert infos of the group "Malformed" mark their packets _ws.malformed
    check_clean(ck, "bad input", rows, allow_malformed=True)
    for n, label, experts, pred in checks:
        r = rows.get(n, {})
        got = [x for x in EXPERTS if x in r]
        ck.eq("bad input: %s flagged %s" % (label, experts), got, experts)
        ck.true("bad input: %s fields" % label, pred(r),
                str(net001_fields(r, FIELDS + ["_ws.col.Info"])))
    ck.eq("length past the capture: waits for more data, no field shown",
          net001_fields(rows[n_long], ALL), {})
    # without reassembly, the same frame is flagged as cut short
    rows = dissect(wd, "bad", prefs=["net001.reassemble:FALSE"])
    check_clean(ck, "bad input, net001.reassemble off", rows, allow_malformed=True)
    r = rows[n_long]
    ck.true("length past the capture, no reassembly: truncated",
            "net001.truncated" in r and r.get("net001.length") == "1000", str(r))
    ck.eq("length past the capture, no reassembly: Info", r.get("_ws.col.Info"),
          "DATA (truncated)")


def case_fuzz(ck, wd):
    """Damaged streams must never make the dissector fail."""
    rng = random.Random(4)
    w = new_pcap(wd, "fuzz")
    for conv in range(24):
        port = 5000 if conv % 2 == 0 else 6000 + conv
        c = TcpConversation(w, CLIENT_PORT + conv, port)
        data = bytearray(b"".join(mixed_frames(rng, 30)))
        for _ in range(rng.randrange(1, 40)):
            kind = rng.randrange(4)
            i = rng.randrange(len(data))
            if kind == 0:
                data[i] ^= 1 << rng.randrange(8)
            elif kind == 1:
                data[i:i + rng.randrange(1, 30)] = b""
            elif kind == 2:
                data[i:i] = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 30)))
            else:
                data[i] = rng.choice([0x00, 0xFF, 0xDE, 0x01])
        for seg in random_segments(rng, bytes(data), rng.choice([5, 50, 1000, 5000])):
            snap = None if rng.random() < 0.9 else rng.randrange(54, 54 + len(seg) + 1)
            (c.client if rng.random() < 0.5 else c.server)(seg, snap)
        if rng.random() < 0.5:
            c.close()
    w.close()
    for prefs in ([], ["net001.reassemble:FALSE"], ["tcp.desegment_tcp_streams:FALSE"]):
        rows = dissect(wd, "fuzz", prefs=prefs)
        dissected = sum(1 for r in rows.values() if "net001" in r.get("frame.protocols", ""))
        ck.true("fuzz %s: %d packets, %d with NET-001, none failing" % (
            " ".join(prefs) or "defaults", len(rows), dissected),
            dissected > 0 and not any("_ws.lua.error" in r for r in rows.values()))
        check_clean(ck, "fuzz %s" % (" ".join(prefs) or "defaults"), rows,
                    allow_malformed=True)


def main():
    need_tools("tshark", "openssl")
    wd = workdir()
    ck = Checker()
    for case in (case_vectors, case_many_in_one_segment, case_split, case_random_cuts,
                 case_out_of_order, case_bad_crc, case_errors, case_tls, case_heuristic_and_port,
                 case_bad_input, case_fuzz):
        print("# " + case.__name__[5:])
        case(ck, wd)
    if ck.failed == 0:
        subprocess.run(["rm", "-rf", wd])
    else:
        print("captures kept in " + wd)
    ck.done()


if __name__ == "__main__":
    try:
        main()
    except Failure as exc:
        print("FAIL %s" % exc)
        sys.exit(1)
