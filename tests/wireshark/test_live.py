#!/usr/bin/python3
"""The NET-001 Wireshark dissector on a live capture.

dumpcap captures loopback while the real server talks to net001-cli (ping,
echo, broadcast to a listener, auth right and wrong, a refused broadcast,
send of a file bigger than one frame), to raw sockets (garbage, a frame
with a bad CRC), to net001-cli over TLS on a second server, and to a short
net001-bench run. tshark then dissects the capture with the dissector
and every field is compared with what the programs sent and printed.

Environment: NET001_SERVER, NET001_CLI, NET001_BENCH (paths of the
programs; meson sets them), NET001_SOURCE_ROOT.
"""

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ws_support import *  # noqa: E402,F403

SERVER = os.environ.get("NET001_SERVER", os.path.join(SOURCE_ROOT, "build", "net001-server"))
CLI = os.environ.get("NET001_CLI", os.path.join(SOURCE_ROOT, "build", "net001-cli"))
# empty: the build has no bench (-Dperf=disabled), that part is left out
BENCH = os.environ.get("NET001_BENCH", os.path.join(SOURCE_ROOT, "build", "perf", "net001-bench"))

USER, TOKEN = "alice", "s3cret"
KEPT = []  # the work directory, named when the test stops on a Failure
FIELDS_LIVE = ["tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.len", "tcp.segment.count",
               "tcp.analysis.out_of_order", "tcp.analysis.retransmission"]


def free_port(rng):
    """A loopback port below 32768 that nobody listens on."""
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise Failure("no free port")


def wait_listening(port, proc, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise Failure("server on port %d exited with %d" % (port, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Failure("server did not listen on port %d" % port)


def run(cmd, want_rc=0, timeout=30, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, **kw)
    if want_rc is not None and r.returncode != want_rc:
        raise Failure("%s exited %d (wanted %d): %s%s" % (
            " ".join(cmd), r.returncode, want_rc, r.stderr.decode(errors="replace"),
            short(r.stdout.decode(errors="replace"), 2000)))
    return r


def recv_frames(sock, count, timeout=5.0):
    """Read count whole frames from sock."""
    sock.settimeout(timeout)
    buf = b""
    out = []
    while len(out) < count:
        while len(buf) >= 8 and len(buf) >= 12 + struct.unpack(">H", buf[6:8])[0]:
            n = 12 + struct.unpack(">H", buf[6:8])[0]
            out.append(buf[:n])
            buf = buf[n:]
        if len(out) >= count:
            break
        d = sock.recv(65536)
        if not d:
            break
        buf += d
    return out


class Capture:
    def __init__(self, path, ports, wd):
        self.path = path
        filt = " or ".join("tcp port %d" % p for p in ports)
        self.err = open(os.path.join(wd, "dumpcap.err"), "w+")
        self.proc = subprocess.Popen(
            ["dumpcap", "-q", "-i", "lo", "-f", filt, "-B", "32", "-w", path],
            stdout=subprocess.DEVNULL, stderr=self.err)
        end = time.time() + 15
        while time.time() < end:
            self.err.seek(0)
            if "Capturing on" in self.err.read():
                break
            if self.proc.poll() is not None:
                self.err.seek(0)
                raise Failure("dumpcap exited: " + self.err.read())
            time.sleep(0.05)
        else:
            raise Failure("dumpcap did not start")
        self.err.seek(0)
        started = self.err.read()
        if "Capturing on" not in started:
            raise Failure("dumpcap: " + started)
        time.sleep(0.3)

    def stop(self):
        time.sleep(0.5)  # let the last packets in
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=15)
        self.err.seek(0)
        return self.err.read()


def start_server(rng, args, wd, name):
    """net001-server on a free port: (port, process)."""
    for attempt in range(5):
        port = free_port(rng)
        log = open(os.path.join(wd, "%s-%d.log" % (name, attempt)), "w")
        proc = subprocess.Popen([SERVER, "--port", str(port)] + args, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            wait_listening(port, proc)
            return port, proc
        except Failure:
            if proc.poll() is None:
                proc.kill()
                raise
    raise Failure("%s: no free port after 5 tries" % name)


def per_frame(row):
    """A packet's NET-001 frames as (type, payload bytes, crc status); live
    traffic here never has an empty payload, so the fields line up."""
    def split(k):
        v = row.get(k)
        return v.split(AGGREGATOR) if v is not None else []
    types, payloads, status = split("net001.type"), split("net001.payload"), split("net001.crc.status")
    if not (len(types) == len(payloads) == len(status)):
        raise Failure("packet %s: fields do not line up: %r" % (row.get("frame.number"), row))
    return [(int(t, 16), bytes.fromhex(p), s) for t, p, s in zip(types, payloads, status)]


def main():
    need_tools("tshark", "dumpcap", "openssl")
    for prog in (SERVER, CLI, BENCH) if BENCH else (SERVER, CLI):
        if not os.access(prog, os.X_OK):
            raise Failure("%s not found (build first; meson sets NET001_SERVER, NET001_CLI, "
                          "NET001_BENCH)" % prog)
    wd = workdir()
    KEPT.append(wd)
    ck = Checker()
    rng = random.Random()

    authfile = os.path.join(wd, "auth")
    with open(authfile, "w") as f:
        f.write("# test user\n%s:%s\n" % (USER, hashlib.sha256(TOKEN.encode()).hexdigest()))
    cert, key = os.path.join(wd, "tls.crt"), os.path.join(wd, "tls.key")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"])
    blob = bytes(rng.getrandbits(8) for _ in range(150000))
    blob_path = os.path.join(wd, "blob")
    with open(blob_path, "wb") as f:
        f.write(blob)

    # the servers first (on free ports, another try if one is taken in the
    # meantime), then the capture of their two ports
    common = ["--host", "127.0.0.1", "--metrics-port", "0", "--threads", "2",
              "--rate-limit", "0", "--global-rate-limit", "0"]
    port, srv = start_server(rng, common + ["--auth-file", authfile], wd, "server")
    try:
        tls_port, tls_srv = start_server(rng, common + ["--tls", "--cert", cert, "--key", key],
                                         wd, "server-tls")
    except BaseException:
        srv.kill()
        raise
    pcap = os.path.join(wd, "live.pcapng")
    try:
        cap = Capture(pcap, [port, tls_port], wd)
    except BaseException:
        for p in (srv, tls_srv):
            p.kill()
        raise
    sent = {}
    try:
        cli = [CLI, "--port", str(port)]
        auth = ["--auth", "%s:%s" % (USER, TOKEN)]

        run(cli + ["ping", "-c", "3", "-i", "10"])
        sent["echo"] = "hello wireshark"
        r = run(cli + ["echo", sent["echo"]])
        ck.eq("cli echo printed the reply", r.stdout.decode().strip(), sent["echo"])

        # a listener, then two broadcasts from other authenticated clients
        listen = subprocess.Popen(cli + auth + ["listen", "-n", "2", "-k", "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = listen.stderr.readline().decode()
        if "listening on" not in line:
            raise Failure("listener: " + line)
        sent["broadcasts"] = ["broadcast one", "broadcast two"]
        for text in sent["broadcasts"]:
            run(cli + auth + ["broadcast", text])
        out, _ = listen.communicate(timeout=10)
        sent["heard"] = out.decode().splitlines()
        ck.eq("listener heard both broadcasts", sent["heard"], sent["broadcasts"])

        r = run(cli + ["auth", USER, TOKEN])
        sent["session"] = r.stdout.decode().strip().split("session=")[1]
        run(cli + ["auth", USER, "wrong"], want_rc=1)
        r = run(cli + ["broadcast", "not signed in"], want_rc=1)
        ck.true("unauthenticated broadcast refused with AUTH_REQUIRED",
                "AUTH_REQUIRED" in r.stderr.decode(), r.stderr.decode())
        run(cli + auth + ["send", blob_path])

        # raw sockets: garbage (BAD_MAGIC, closed), then a bad CRC (BAD_CRC,
        # the connection goes on) followed by a good PING
        s = socket.create_connection(("127.0.0.1", port))
        # (not text another dissector's heuristic would take, as Wireshark's
        # HTTP one takes "GET / HTTP/1.0" and the rest of its conversation)
        sent["garbage"] = b"\x00\x17garbage\xff, not a frame"
        s.sendall(sent["garbage"])
        sent["garbage_reply"] = recv_frames(s, 1)
        s.close()
        s = socket.create_connection(("127.0.0.1", port))
        good = ping(0x0102030405060708)
        sent["bad_crc"] = frame(ECHO, b"corrupted", crc=0xDEADBEEF)
        s.sendall(sent["bad_crc"])
        first = recv_frames(s, 1)
        s.sendall(good)
        sent["bad_crc_replies"] = first + recv_frames(s, 1)
        s.close()
        ck.eq("server answered garbage with ERROR 1",
              [(f[5], f[8:10]) for f in sent["garbage_reply"]], [(ERROR, b"\0\1")])
        ck.eq("server answered the bad CRC with ERROR 3, then PONG",
              [(f[5], f[8:10]) for f in sent["bad_crc_replies"][:1]] +
              [(f[5], f[8:16]) for f in sent["bad_crc_replies"][1:]],
              [(ERROR, b"\0\3"), (PONG, good[8:16])])

        # TLS: the same kind of traffic, encrypted, on the second server
        run([CLI, "--port", str(tls_port), "--tls-insecure", "ping", "-c", "2", "-i", "10"])
        run([CLI, "--port", str(tls_port), "--tls-insecure", "echo", "secret text"])

        # the load generator, briefly: pipelined ECHOs on two connections
        bench = None
        if not BENCH:
            print("note: no net001-bench in this build (-Dperf=disabled): its part left out")
        else:
            # (a window long enough to count replies on a busy machine: the
            # bench fails a run that counted none, as 20 ms sometimes did;
            # 2 in flight per connection keep the capture small)
            r = run([BENCH, "--port", str(port), "--type", "echo", "--payload", "100",
                     "--connections", "2", "--pipeline", "2", "--duration", "0.1",
                     "--warmup", "0", "--json"], timeout=60)
            bench = json.loads(r.stdout.decode().strip().splitlines()[-1])
            ck.eq("bench: clean run", (bench["status"], bench["mismatches"]), (0, 0))
    finally:
        for p in (srv, tls_srv):
            p.send_signal(signal.SIGTERM)
        codes = []
        for p in (srv, tls_srv):
            try:
                codes.append(p.wait(timeout=15))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append("killed after 15 s")
        stats = cap.stop()
    ck.eq("both servers exit 0 on SIGTERM", codes, [0, 0])
    drops = [ln for ln in stats.splitlines() if "dropped" in ln]
    ck.true("dumpcap dropped nothing: %s" % " ".join(drops).strip(),
            drops and all("/0 " in ln or ln.rstrip().endswith("/0") for ln in drops), stats)

    check_capture(ck, wd, pcap, port, tls_port, sent, bench, blob)
    if ck.failed == 0:
        subprocess.run(["rm", "-rf", wd])
    else:
        print("capture kept in " + pcap)
    ck.done()


def check_capture(ck, wd, pcap, port, tls_port, sent, bench, blob):
    fields = FIELDS + EXPERTS + FIELDS_LIVE
    rows = tshark_fields(pcap, wd, fields, prefs=["net001.port:%d" % port])
    # (heuristics first: a client's ephemeral port can be one Wireshark
    # gives another dissector, as 57000 is IRC's, and a port's dissector
    # otherwise goes before any heuristic)
    heur = tshark_fields(pcap, wd, fields,
                         prefs=["net001.port:0", "tcp.try_heuristic_first:TRUE"])
    ck.eq("the heuristic alone finds the same frames as net001.port:%d" % port,
          {n: net001_fields(r, fields) for n, r in heur.items()},
          {n: net001_fields(r, fields) for n, r in rows.items()})
    check_clean(ck, "live capture", {n: r for n, r in rows.items()
                                     if "net001.crc.bad" not in r and "net001.magic.bad" not in r})
    # loopback under load reorders and retransmits now and then; the
    # dissection must not depend on it (ws_support.TCP_PREFS)
    print("note: %d out-of-order and %d retransmitted segments in the capture" % (
        sum(1 for r in rows.values() if "tcp.analysis.out_of_order" in r),
        sum(1 for r in rows.values() if "tcp.analysis.retransmission" in r)))

    # every packet's fields agree with its frames' bytes, and the frames of
    # each direction of each stream, in order
    streams = {}  # (stream, to_server) -> [(type, payload)]
    bad_crc_packets = []
    mismatched = []
    frames_total = 0
    most_in_one = 0
    segments = {}
    for n in sorted(rows):
        row = rows[n]
        if str(tls_port) in (row.get("tcp.srcport"), row.get("tcp.dstport")):
            continue
        frames = per_frame(row)
        if not frames:
            continue
        frames_total += len(frames)
        most_in_one = max(most_in_one, len(frames))
        key = (int(row["tcp.stream"]), row.get("tcp.dstport") == str(port))
        for t, p, status in frames:
            streams.setdefault(key, []).append((t, p))
            if t == DATA:
                segments.setdefault("data", []).append(int(row.get("tcp.segment.count", "1")))
        if any(s != "1" for _, _, s in frames):
            bad_crc_packets.append(n)
            continue
        rebuilt = [frame(t, p) for t, p, _ in frames]
        want = expected_row(rebuilt)
        want.update(expected_experts(rebuilt))
        got = net001_fields(row, FIELDS + EXPERTS)
        if got != want:
            mismatched.append((n, got, want))
    ck.true("live: %d frames, every field agrees with the frame bytes" % frames_total,
            frames_total > 0 and not mismatched, short(mismatched[:2], 3000))

    def find(pred):
        return [k for k, fr in streams.items() if pred(k, fr)]

    def frames_of(key, t):
        return [p for ft, p in streams.get(key, []) if ft == t]

    # ping: the stream with 3 PINGs gets the 3 timestamps back in PONGs
    k = find(lambda k, fr: k[1] and len([1 for t, _ in fr if t == PING]) == 3)
    ck.eq("ping -c 3: one stream with 3 PINGs", len(k), 1)
    if k:
        pings = frames_of(k[0], PING)
        pongs = frames_of((k[0][0], False), PONG)
        ck.eq("ping -c 3: PONGs carry the PING timestamps", pongs, pings)
    # every PING anywhere is answered with its timestamp
    unanswered = [key for key in streams if key[1]
                  and frames_of(key, PING) != frames_of((key[0], False), PONG)[:len(frames_of(key, PING))]]
    ck.eq("every PING answered by a PONG with its timestamp", unanswered, [])

    # echo
    k = find(lambda k, fr: k[1] and (ECHO, sent["echo"].encode()) in fr)
    ck.eq("echo: one ECHO %r" % sent["echo"], len(k), 1)
    if k:
        ck.eq("echo: ECHO_REPLY with the same text", frames_of((k[0][0], False), ECHO_REPLY),
              [sent["echo"].encode()])

    # broadcast: what the senders sent, and what the listener received
    from_clients = [p for key in sorted(streams) if key[1] for p in frames_of(key, BROADCAST)]
    ck.eq("broadcast: BROADCAST frames from the clients",
          from_clients, [t.encode() for t in sent["broadcasts"] + ["not signed in"]])
    # the listener: the authenticated stream that got broadcasts and sent
    # none (the first sender may get the second broadcast too: its
    # connection can still be open for the server when that arrives, and
    # every other authenticated connection is eligible)
    listeners = [k[0] for k in sorted(streams) if k[1]
                 and AUTH in [t for t, _ in streams[k]] and not frames_of(k, BROADCAST)
                 and frames_of((k[0], False), BROADCAST)]
    ck.eq("broadcast: one listener stream", len(listeners), 1)
    ck.eq("broadcast: BROADCAST frames to the listener",
          frames_of((listeners[0], False), BROADCAST) if listeners else [],
          [t.encode() for t in sent["heard"]])
    stray = [(k[0], p) for k in sorted(streams) if not k[1] and k[0] not in listeners
             for p in frames_of(k, BROADCAST)
             if p not in [t.encode() for t in sent["broadcasts"]]
             or p in frames_of((k[0], True), BROADCAST)]
    ck.eq("broadcast: any other delivery is another sender's broadcast", stray, [])

    # auth: listener, 2 broadcasters, the sender, the auth command: right
    # token; one wrong
    auths = [p for key in sorted(streams) if key[1] for p in frames_of(key, AUTH)]
    want_auth = [auth(USER.encode(), TOKEN.encode())[8:-4]] * 5 + \
        [auth(USER.encode(), b"wrong")[8:-4]]
    ck.eq("auth: AUTH frames (user and token)", sorted(auths), sorted(want_auth))
    users = [r.get("net001.auth.user") for r in rows.values() if "net001.auth.user" in r]
    tokens = [r.get("net001.auth.token") for r in rows.values() if "net001.auth.token" in r]
    ck.eq("auth: dissected users and tokens", (sorted(users), sorted(tokens)),
          ([USER] * 6, sorted([TOKEN] * 5 + ["wrong"])))
    replies = [p for key in sorted(streams) if not key[1] for p in frames_of(key, AUTH_REPLY)]
    ck.eq("auth: 5 successes and 1 failure",
          sorted(p[0] for p in replies), [0, 1, 1, 1, 1, 1])
    sessions = [r.get("net001.auth_reply.session") for r in rows.values()
                if r.get("net001.auth_reply.status") == "1"]
    ck.true("auth: the session id the CLI printed is in the capture",
            sent["session"] in sessions, "%r not in %r" % (sent["session"], sessions))
    failed = [r for r in rows.values() if "net001.auth_reply.failed" in r]
    ck.eq("auth: the failure flagged with expert info", len(failed), 1)

    # ERROR frames decoded: AUTH_REQUIRED, BAD_MAGIC, BAD_CRC
    # (SHUTTING_DOWN aside: the server sends it at the end to connections
    # still open, and the bench's sockets may close only a moment after the
    # bench exits, when the kernel tears its io_uring down)
    errs = sorted((r.get("net001.error.code"), r.get("net001.error.name")) for r in rows.values()
                  if "net001.error.code" in r and r["net001.error.code"] != "13")
    ck.eq("errors: AUTH_REQUIRED, BAD_MAGIC and BAD_CRC decoded", errs,
          [("1", "BAD_MAGIC"), ("3", "BAD_CRC"), ("7", "AUTH_REQUIRED")])
    msgs = [r.get("net001.error.message") for r in rows.values() if "net001.error.code" in r]
    want_msgs = [f[10:-4].decode() for f in sent["garbage_reply"] + sent["bad_crc_replies"][:1]]
    ck.true("errors: the server's messages as sent", all(m in msgs for m in want_msgs),
            "%r vs %r" % (msgs, want_msgs))

    # garbage is not claimed; the bad CRC is flagged and the connection goes on
    garbage_rows = [r for r in rows.values()
                    if r.get("tcp.dstport") == str(port) and "net001.type" not in r
                    and r.get("tcp.len") == str(len(sent["garbage"]))]
    ck.true("garbage: left undissected (no NET-001 field)", len(garbage_rows) >= 1,
            "no packet with the garbage bytes")
    ck.eq("bad CRC: one packet flagged", len(bad_crc_packets), 1)
    if bad_crc_packets:
        r = rows[bad_crc_packets[0]]
        ck.eq("bad CRC: crc, status and expert",
              (r.get("net001.crc"), r.get("net001.crc.status"), r.get("net001.crc.bad"),
               r.get("net001.payload")),
              ("0xdeadbeef", "0", "1", b"corrupted".hex()))

    # DATA: the file comes back together from the frames, some of which
    # span several TCP segments
    datas = [p for key in sorted(streams) if key[1] for p in frames_of(key, DATA)]
    ck.eq("send: DATA frames of 65535, 65535 and 18930 bytes",
          [len(p) for p in datas], [65535, 65535, len(blob) - 2 * 65535])
    ck.true("send: the DATA payloads are the file", b"".join(datas) == blob)
    ck.true("send: frames reassembled from several segments (%s)" % segments.get("data"),
            max(segments.get("data", [1])) >= 2)

    # TLS: nothing of NET-001 on the TLS server's streams, and TLS found
    tls_rows = [r for r in rows.values()
                if str(tls_port) in (r.get("tcp.srcport"), r.get("tcp.dstport"))
                and "tcp" in r.get("frame.protocols", "")]
    claimed = [r["frame.number"] for r in tls_rows if "net001" in r.get("frame.protocols", "")]
    ck.eq("TLS: no packet dissected as NET-001", claimed, [])
    ck.true("TLS: found by Wireshark's TLS dissector",
            any("tls" in r.get("frame.protocols", "").split(":") for r in tls_rows))

    if bench is None:
        return
    # bench: each connection's replies are its requests, in order
    bench_keys = [k for k in streams if k[1] and any(t == ECHO and len(p) == 100
                                                     for t, p in streams[k])]
    ck.eq("bench: 2 connections of ECHOs", len(bench_keys), 2)
    replies_total = 0
    for k in bench_keys:
        reqs = frames_of(k, ECHO)
        reps = frames_of((k[0], False), ECHO_REPLY)
        replies_total += len(reps)
        ck.true("bench stream %d: %d replies equal the first requests" % (k[0], len(reps)),
                reps and reps == reqs[:len(reps)])
    ck.true("bench: the capture holds at least the %d replies it counted (%d)" % (
        bench["messages"], replies_total), replies_total >= bench["messages"] > 0)
    ck.true("several frames in one segment seen live (up to %d)" % most_in_one,
            most_in_one >= 2)


if __name__ == "__main__":
    try:
        main()
    except Failure as exc:
        print("FAIL %s" % exc)
        if KEPT:
            print("logs and capture kept in " + KEPT[0])
        sys.exit(1)
