"""Shared pieces of the Wireshark dissector tests.

NET-001 frames built from PROTOCOL.md (CRC from zlib), a pcap writer for
made-up TCP conversations, tshark runs of proto/wireshark/net001.lua with
-T fields, and the values the dissector is expected to show for a frame,
computed from the frame's bytes.
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

SOURCE_ROOT = os.environ.get(
    "NET001_SOURCE_ROOT",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
LUA_SCRIPT = os.path.join(SOURCE_ROOT, "proto", "wireshark", "net001.lua")

MAGIC = b"\xde\xad\xbe\xef"
VERSION = 1

PING, PONG, ECHO, ECHO_REPLY, BROADCAST, AUTH, AUTH_REPLY, DATA, ERROR = (
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xFF)

ERROR_NAMES = {
    1: "BAD_MAGIC", 2: "BAD_VERSION", 3: "BAD_CRC", 4: "UNSUPPORTED_TYPE",
    5: "BAD_PAYLOAD", 6: "FRAME_TOO_LARGE", 7: "AUTH_REQUIRED",
    8: "AUTH_FAILED", 9: "RATE_LIMITED", 10: "SERVER_FULL",
    11: "IDLE_TIMEOUT", 12: "SLOW_CONSUMER", 13: "SHUTTING_DOWN",
    14: "INTERNAL",
}

# The fields every test asks tshark for, in this order.
FIELDS = [
    "net001.magic", "net001.version", "net001.type", "net001.length",
    "net001.payload", "net001.crc", "net001.crc.status",
    "net001.ping.timestamp", "net001.pong.timestamp",
    "net001.auth.user_len", "net001.auth.user", "net001.auth.token",
    "net001.auth_reply.status", "net001.auth_reply.session",
    "net001.error.code", "net001.error.name", "net001.error.message",
    "net001.garbage",
]
# Expert infos are checked by their field names (present or not).
EXPERTS = [
    "net001.crc.bad", "net001.magic.bad", "net001.version.bad",
    "net001.payload.bad", "net001.type.unknown", "net001.truncated",
    "net001.error.frame", "net001.auth_reply.failed",
]
# A value that holds none of the separators below.
AGGREGATOR = "\x1f"


class Failure(Exception):
    pass


# ---------------------------------------------------------------------------
# Frames

def frame(ftype, payload=b"", crc=None, magic=MAGIC, version=VERSION):
    """A NET-001 frame; crc overrides the correct CRC-32."""
    head = magic + bytes([version, ftype]) + struct.pack(">H", len(payload))
    if crc is None:
        crc = zlib.crc32(head + payload) & 0xFFFFFFFF
    return head + payload + struct.pack(">I", crc)


def ping(ts):
    return frame(PING, struct.pack(">Q", ts))


def auth(user, token):
    return frame(AUTH, bytes([len(user)]) + user + token)


def error(code, message):
    return frame(ERROR, struct.pack(">H", code) + message)


def split_frames(data):
    """Cut a byte stream of well-formed frames into frames."""
    out = []
    while data:
        if len(data) < 12 or data[:4] != MAGIC:
            raise Failure("not a frame stream at %r" % data[:16])
        n = 12 + struct.unpack(">H", data[6:8])[0]
        out.append(data[:n])
        data = data[n:]
    return out


def expected_fields(fr, check_crc=True):
    """The -T fields values the dissector should show for one well-formed
    frame (magic and version right, fully captured), from its bytes alone.
    Absent fields are left out."""
    ftype = fr[5]
    (length,) = struct.unpack(">H", fr[6:8])
    payload = fr[8:8 + length]
    (crc,) = struct.unpack(">I", fr[8 + length:12 + length])
    good = (zlib.crc32(fr[:8 + length]) & 0xFFFFFFFF) == crc
    v = {
        "net001.magic": "0xdeadbeef",
        "net001.version": str(fr[4]),
        "net001.type": "0x%02x" % ftype,
        "net001.length": str(length),
        "net001.crc": "0x%08x" % crc,
        "net001.crc.status": ("1" if good else "0") if check_crc else "2",
    }
    if payload:
        v["net001.payload"] = payload.hex()
    if ftype in (PING, PONG) and length == 8:
        key = "net001.ping.timestamp" if ftype == PING else "net001.pong.timestamp"
        v[key] = str(struct.unpack(">Q", payload)[0])
    elif ftype == AUTH and length >= 1:
        ulen = payload[0]
        v["net001.auth.user_len"] = str(ulen)
        if 1 + ulen <= length:
            if ulen:
                v["net001.auth.user"] = payload[1:1 + ulen].decode()
            if length > 1 + ulen:
                v["net001.auth.token"] = payload[1 + ulen:].decode()
    elif ftype == AUTH_REPLY and length >= 1:
        v["net001.auth_reply.status"] = str(payload[0])
        if length >= 17:
            v["net001.auth_reply.session"] = payload[1:17].hex()
    elif ftype == ERROR and length >= 2:
        (code,) = struct.unpack(">H", payload[:2])
        v["net001.error.code"] = str(code)
        v["net001.error.name"] = ERROR_NAMES.get(code, "unknown")
        if length > 2:  # tshark prints an empty one as nothing
            v["net001.error.message"] = payload[2:].decode()
    return v


def expected_row(frames, check_crc=True):
    """Per field, the values of several frames in one packet, as tshark
    aggregates them (occurrences in order)."""
    row = {}
    for fr in frames:
        for k, val in expected_fields(fr, check_crc).items():
            row.setdefault(k, []).append(val)
    return {k: AGGREGATOR.join(vals) for k, vals in row.items()}


def expected_experts(frames, check_crc=True):
    """Expert infos (field -> aggregated "1"s) for well-formed frames."""
    counts = {}
    for fr in frames:
        (length,) = struct.unpack(">H", fr[6:8])
        (crc,) = struct.unpack(">I", fr[8 + length:12 + length])
        names = []
        if check_crc and (zlib.crc32(fr[:8 + length]) & 0xFFFFFFFF) != crc:
            names.append("net001.crc.bad")
        if fr[5] == ERROR and length >= 2:
            names.append("net001.error.frame")
        if fr[5] == AUTH_REPLY and length >= 1 and fr[8] == 0:
            names.append("net001.auth_reply.failed")
        for n in names:
            counts[n] = counts.get(n, 0) + 1
    return {k: AGGREGATOR.join(["1"] * n) for k, n in counts.items()}


def info_text(raw, limit=64):
    """Bytes from the wire as the dissector puts them in the Info column:
    UTF-8 kept, control characters, backslashes and stray bytes escaped,
    at most limit characters."""
    out = []
    for ch in raw.decode("utf-8", errors="surrogateescape"):
        if len(out) >= limit:
            out.append("...")
            break
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:
            out.append("\\x%02x" % (o - 0xDC00))
        elif ch in "\t\n\r\\":
            out.append({"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}[ch])
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    return "".join(out)


def info_summary(fr, check_crc=True):
    """What the Info column says for one well-formed frame."""
    names = {PING: "PING", PONG: "PONG", ECHO: "ECHO", ECHO_REPLY: "ECHO_REPLY",
             BROADCAST: "BROADCAST", AUTH: "AUTH", AUTH_REPLY: "AUTH_REPLY",
             DATA: "DATA", ERROR: "ERROR"}
    ftype = fr[5]
    (length,) = struct.unpack(">H", fr[6:8])
    p = fr[8:8 + length]
    name = names.get(ftype, "type 0x%02x" % ftype)
    if ftype in (PING, PONG) and length == 8:
        s = "%s ts=%d" % (name, struct.unpack(">Q", p)[0])
    elif ftype in (ECHO, ECHO_REPLY, BROADCAST, DATA):
        s = "%s len=%d" % (name, length)
        if length == 0:
            s += ' ""'
        elif all(32 <= b <= 126 for b in p[:32]):
            s += ' "%s%s"' % (p[:32].decode(), "..." if length > 32 else "")
    elif ftype == AUTH:
        s = "AUTH user=%s" % info_text(p[1:1 + p[0]])
    elif ftype == AUTH_REPLY:
        s = "AUTH_REPLY " + ("success" if p[0] == 1 else "failure")
    elif ftype == ERROR:
        code = struct.unpack(">H", p[:2])[0]
        s = "ERROR %d %s" % (code, ERROR_NAMES.get(code, "unknown"))
        if length > 2:
            s += ' "%s"' % info_text(p[2:])
    else:
        s = "%s len=%d" % (name, length)
    crc = struct.unpack(">I", fr[8 + length:12 + length])[0]
    if check_crc and (zlib.crc32(fr[:8 + length]) & 0xFFFFFFFF) != crc:
        s += " [bad CRC]"
    return s


# ---------------------------------------------------------------------------
# pcap files with made-up TCP conversations

def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class PcapWriter:
    """Ethernet/IPv4/TCP packets into a classic pcap file."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.count = 0
        self.usec = 1_700_000_000 * 1_000_000

    def packet(self, src, dst, sport, dport, seq, ack, flags, data, snap=None):
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags,
                          65535, 0, 0)
        pseudo = struct.pack("!4s4sBBH", src, dst, 0, 6, len(tcp) + len(data))
        csum = _checksum(pseudo + tcp + data)
        tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
        total = 20 + len(tcp) + len(data)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, self.count & 0xFFFF,
                         0x4000, 64, 6, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        eth = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00"
        pkt = eth + ip + tcp + data
        caplen = len(pkt) if snap is None else min(snap, len(pkt))
        self.usec += 1000
        self.f.write(struct.pack("<IIII", self.usec // 1_000_000,
                                 self.usec % 1_000_000, caplen, len(pkt)))
        self.f.write(pkt[:caplen])
        self.count += 1
        return self.count

    def close(self):
        self.f.close()


SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


class TcpConversation:
    """A TCP connection in a PcapWriter: handshake, then data segments in
    either direction. Packet numbers are returned for the checks."""

    def __init__(self, w, client_port, server_port,
                 client_ip=b"\x0a\0\0\x01", server_ip=b"\x0a\0\0\x02"):
        self.w = w
        self.c = (client_ip, client_port)
        self.s = (server_ip, server_port)
        self.cseq = 1000
        self.sseq = 50000
        w.packet(self.c[0], self.s[0], self.c[1], self.s[1], self.cseq, 0, SYN, b"")
        self.cseq += 1
        w.packet(self.s[0], self.c[0], self.s[1], self.c[1], self.sseq, self.cseq,
                 SYN | ACK, b"")
        self.sseq += 1
        w.packet(self.c[0], self.s[0], self.c[1], self.s[1], self.cseq, self.sseq,
                 ACK, b"")

    def client(self, data, snap=None):
        n = self.w.packet(self.c[0], self.s[0], self.c[1], self.s[1], self.cseq,
                          self.sseq, PSH | ACK, data, snap)
        self.cseq += len(data)
        return n

    def server(self, data, snap=None):
        n = self.w.packet(self.s[0], self.c[0], self.s[1], self.c[1], self.sseq,
                          self.cseq, PSH | ACK, data, snap)
        self.sseq += len(data)
        return n

    def segments(self, side, data, cuts, order):
        """data ("client" or "server" sends it) cut at the offsets in cuts,
        the pieces written in the given order (indices into the pieces; one
        given twice is a retransmission), each with its true sequence
        number: the stream as a capture sees it when segments overtake one
        another. Returns the packet number of each write, in write order."""
        bounds = [0] + list(cuts) + [len(data)]
        pieces = [(bounds[i], data[bounds[i]:bounds[i + 1]]) for i in range(len(bounds) - 1)]
        if side == "client":
            src, dst, base, peer = self.c, self.s, self.cseq, self.sseq
        else:
            src, dst, base, peer = self.s, self.c, self.sseq, self.cseq
        nums = []
        for i in order:
            off, piece = pieces[i]
            nums.append(self.w.packet(src[0], dst[0], src[1], dst[1],
                                      (base + off) & 0xFFFFFFFF, peer, PSH | ACK, piece))
        if side == "client":
            self.cseq += len(data)
        else:
            self.sseq += len(data)
        return nums

    def close(self):
        self.w.packet(self.c[0], self.s[0], self.c[1], self.s[1], self.cseq,
                      self.sseq, FIN | ACK, b"")
        self.cseq += 1
        self.w.packet(self.s[0], self.c[0], self.s[1], self.c[1], self.sseq,
                      self.cseq, FIN | ACK, b"")
        self.sseq += 1
        self.w.packet(self.c[0], self.s[0], self.c[1], self.s[1], self.cseq,
                      self.sseq, ACK, b"")


# ---------------------------------------------------------------------------
# tshark

def tshark_env(workdir):
    """tshark with a configuration of its own: no personal preferences or
    plugins (a copy of net001.lua in ~/.local/lib/wireshark/plugins would
    register the protocol twice), whoever runs the test."""
    env = dict(os.environ)
    home = os.path.join(workdir, "home")
    os.makedirs(os.path.join(home, ".config"), exist_ok=True)
    env["HOME"] = home
    env["XDG_CONFIG_HOME"] = os.path.join(home, ".config")
    env["WIRESHARK_CONFIG_DIR"] = os.path.join(home, "wireshark-config")
    os.makedirs(env["WIRESHARK_CONFIG_DIR"], exist_ok=True)
    return env


def need_tools(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise Failure("%s not found: run scripts/deps --test" % ", ".join(missing))


# TCP settings of every run, before the caller's own (which may override
# them). Segments that overtake one another are real on loopback under load;
# Wireshark 4.0's TCP does not reassemble out of order by default and then,
# with tcp.no_subdissector_on_error (on by default), hands a frame completed
# by the late segment to no dissector at all: the frame is missing from the
# dissection although every byte of it is in the capture.
TCP_PREFS = ["tcp.reassemble_out_of_order:TRUE"]


def tshark_fields(pcap, workdir, fields, prefs=(), extra=()):
    """Run tshark with the dissector on pcap; one dict per packet."""
    cmd = ["tshark", "-n", "-r", pcap, "-X", "lua_script:" + LUA_SCRIPT]
    for p in TCP_PREFS + list(prefs):
        cmd += ["-o", p]
    cmd += list(extra)
    cmd += ["-T", "fields", "-E", "header=n", "-E", "separator=/t",
            "-E", "occurrence=a", "-E", "aggregator=" + AGGREGATOR,
            "-E", "quote=n"]
    allf = ["frame.number", "frame.protocols", "_ws.col.Info", "_ws.lua.error",
            "_ws.malformed", "_ws.malformed.dissector_bug",
            "_ws.expert.message"] + list(fields)
    for fld in allf:
        cmd += ["-e", fld]
    r = subprocess.run(cmd, env=tshark_env(workdir), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    err = r.stderr.decode(errors="replace")
    if r.returncode != 0:
        raise Failure("tshark failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), err))
    for line in err.splitlines():
        # the one line tshark prints for root; anything else is a problem
        if line.strip() and "could be dangerous" not in line:
            raise Failure("tshark said: %s" % err)
    rows = {}
    # (other dissectors' Info can hold bytes that are not UTF-8, or a
    # character cut in two)
    for line in r.stdout.decode(errors="surrogateescape").split("\n"):
        if not line:
            continue
        cols = line.split("\t")
        if len(cols) != len(allf):
            raise Failure("unexpected tshark line: %r" % line)
        row = {k: v for k, v in zip(allf, cols) if v != ""}
        rows[int(row["frame.number"])] = row
    return rows


def net001_fields(row, fields=FIELDS):
    return {k: row[k] for k in fields if k in row}


def check_clean(ck, label, rows, allow_malformed=False):
    """No Lua error and no dissector bug in any packet; no malformed packet
    either unless allowed (a capture cut by its snap length is reported
    as malformed by Wireshark itself)."""
    keys = ["_ws.lua.error", "_ws.malformed.dissector_bug"]
    if not allow_malformed:
        keys.append("_ws.malformed")
    bad = {n: {k: r[k] for k in keys if k in r}
           for n, r in rows.items() if any(k in r for k in keys)}
    ck.eq("%s: no Lua error%s" % (label, "" if allow_malformed else " or malformed packet"),
          bad, {})


def short(v, n=300):
    r = repr(v)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(r)


def tcp_info_stripped(info):
    """The Info column without what TCP's analysis puts before it
    ("[TCP Out-Of-Order] ", "[TCP Retransmission] ", ...)."""
    while info and info.startswith("[TCP ") and "] " in info:
        info = info.split("] ", 1)[1]
    return info


def check_packets(ck, label, rows, expected, check_crc=True, foreign=()):
    """expected: packet number -> the well-formed frames that complete in
    that packet, in order. Every other packet must show no NET-001 field
    (a segment that starts a frame finished later is claimed, but shows
    nothing); packets in foreign must not even be claimed.
    Compares every field, the expert infos and the Info column."""
    diffs = []
    for num in sorted(rows):
        row = rows[num]
        got = net001_fields(row, FIELDS + EXPERTS)
        frames = expected.get(num, [])
        if frames:
            want = expected_row(frames, check_crc)
            want.update(expected_experts(frames, check_crc))
            info = ", ".join(info_summary(fr, check_crc) for fr in frames)
            if got != want:
                diffs.append((num, "fields", got, want))
            if tcp_info_stripped(row.get("_ws.col.Info")) != info:
                diffs.append((num, "Info", row.get("_ws.col.Info"), info))
        elif got:
            diffs.append((num, "no NET-001 field", got, {}))
        if num in foreign and "net001" in row.get("frame.protocols", "").split(":"):
            diffs.append((num, "not NET-001", row.get("frame.protocols"), "no net001"))
    missing = sorted(set(expected) - set(rows))
    if missing:
        diffs.append((missing, "packets missing", None, None))
    nframes = sum(len(v) for v in expected.values())
    ck.true("%s: %d frames in %d packets dissected as sent" % (label, nframes, len(rows)),
            not diffs, "\n" + "\n".join(
                "     packet %s %s\n       got:  %s\n       want: %s" % (
                    d[0], d[1], short(d[2]), short(d[3])) for d in diffs[:5]))
    check_clean(ck, label, rows)


class Checker:
    """Collects results; prints each check and fails at the end."""

    def __init__(self):
        self.failed = 0
        self.passed = 0

    def eq(self, what, got, want):
        if got == want:
            self.passed += 1
            print("ok   %s" % what)
        else:
            self.failed += 1
            print("FAIL %s\n     got:  %s\n     want: %s" % (what, short(got, 2000), short(want, 2000)))

    def true(self, what, cond, detail=""):
        if cond:
            self.passed += 1
            print("ok   %s" % what)
        else:
            self.failed += 1
            print("FAIL %s %s" % (what, detail))

    def done(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def workdir():
    return tempfile.mkdtemp(prefix="net001-ws-")
