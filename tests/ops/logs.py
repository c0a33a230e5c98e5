#!/usr/bin/python3
"""The server's logs (README.md, "Operations"; net001-server(1), LOGS).

    logs.py SERVER

1. --log-format json --debug, two threads, an auth file whose name holds a
   quote, a backslash and a byte that is not UTF-8: clients connect (one
   from 127.0.0.2), send a bad frame, fail AUTH three times, idle out;
   SIGHUP reloads the file, then a broken one; a burst of connections runs
   into the rate limit; SIGTERM. Every line of stderr must parse as JSON
   with time, level, core, event and msg first, and the events carry the
   fields they should: the version and address on "listening", the peer's
   address (as the client sees its own) on connection lines, the reason
   of each close, "suppressed" after the burst.
2. The text format over IPv6 with NET001_LOG_FORMAT unset: the version on
   the listening line, "core N: slot M ([::1]:port) open", a connection
   over --max-connections "rejected"; and NET001_LOG_FORMAT=json gives JSON.
"""
import hashlib
import json
import os
import re
import signal
import socket
import sys
import time

from oplib import AUTH, Server, check, finish, frame, read_frame, server_version

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEVELS = {"error", "warn", "info", "debug"}


def peer_of(sock):
    host, port = sock.getsockname()[:2]
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def check_shape(objs, threads):
    bad = []
    for o in objs:
        keys = list(o)
        if keys[:5] != ["time", "level", "core", "event", "msg"]:
            bad.append("keys %s" % keys[:5])
        elif not TIME.match(o["time"]) or o["level"] not in LEVELS:
            bad.append("time or level: %r %r" % (o["time"], o["level"]))
        elif not (o["core"] is None or (isinstance(o["core"], int) and
                                        0 <= o["core"] < threads)):
            bad.append("core %r" % o["core"])
        elif not (isinstance(o["event"], str) and o["event"] and
                  isinstance(o["msg"], str)):
            bad.append("event/msg %r" % o)
        if len(bad) > 3:
            break
    check(not bad, "every line: time, level, core, event, msg first (%d lines)%s" % (
        len(objs), "" if not bad else ": " + "; ".join(bad)))


def json_run(server, version):
    work = os.path.join("/tmp", "net001-logs-%d" % os.getpid())
    os.makedirs(work, exist_ok=True)
    auth = os.path.join(work.encode(), b'auth "q\\ \xff')
    with open(auth, "wb") as f:
        f.write(b"alice:" + hashlib.sha256(b"s3cret").hexdigest().encode() + b"\n")
    auth_shown = auth.decode("utf-8", errors="replace")
    threads = 2
    srv = Server(server, ["--threads", str(threads), "--log-format", "json", "--debug",
                          "--idle-timeout", "1", "--rate-limit", "0",
                          "--global-rate-limit", "0", "--auth-file", auth])
    try:
        objs = srv.objects()
        listening = [o for o in objs if o["event"] == "listening"]
        if check(len(listening) == 1, "one 'listening' line"):
            o = listening[0]
            check(o["level"] == "info" and o["core"] is None, "listening: info, main thread")
            check(o.get("version") == version, "listening: version %r (--version says %r)"
                  % (o.get("version"), version))
            check(o.get("host") == "127.0.0.1" and o.get("port") == srv.port and
                  o.get("metrics_port") == srv.mport and o.get("threads") == threads,
                  "listening: host, port, metrics_port, threads: %r" % o)
            check(o.get("auth") is True and o.get("tls") is False and
                  isinstance(o.get("max_connections"), int) and
                  isinstance(o.get("descriptors_per_core"), int),
                  "listening: auth, tls, max_connections, descriptors_per_core")
            check(o["msg"].startswith("net001 %s listening on 127.0.0.1:%d: "
                                      % (version, srv.port)),
                  "listening: the message names the version: %r" % o["msg"])

        # Connect: "open" with the peer as the client sees its own address.
        idle = srv.connect()
        other = srv.connect(source="127.0.0.2")
        for s, what in ((idle, "127.0.0.1"), (other, "127.0.0.2")):
            peer = peer_of(s)
            o = srv.wait_object(lambda o: o["event"] == "open" and o.get("peer") == peer,
                                5, "an 'open' line for %s" % peer)
            if o:
                check(peer.startswith(what + ":") and isinstance(o.get("slot"), int) and
                      isinstance(o["core"], int) and o["level"] == "debug" and
                      o["msg"] == "core %d: slot %d (%s) open" % (o["core"], o["slot"], peer),
                      "open: %s" % o["msg"])

        # A bad frame (bad magic): close with its reason and the peer.
        other.sendall(b"\x00" * 12)
        peer = peer_of(other)
        o = srv.wait_object(lambda o: o["event"] == "close" and o.get("peer") == peer,
                            5, "a 'close' line for the bad frame")
        if o:
            check(o.get("reason") == "bad_magic" and
                  o["msg"].endswith("(%s) BAD_MAGIC, closing" % peer),
                  "bad frame: reason bad_magic: %s" % o["msg"])
        other.close()

        # Three failed AUTHs: close, reason auth_failed.
        bad = srv.connect()
        peer = peer_of(bad)
        for i in range(3):
            bad.sendall(frame(AUTH, b"\x05alice" + b"wrong"))
            read_frame(bad)
        o = srv.wait_object(lambda o: o["event"] == "close" and o.get("peer") == peer,
                            5, "a 'close' line after three failed AUTHs")
        if o:
            check(o.get("reason") == "auth_failed" and o.get("attempts") == 3,
                  "auth: reason auth_failed, attempts 3: %r" % o)
        bad.close()

        # The idle one times out (1 s, on a 1 s tick).
        peer = peer_of(idle)
        o = srv.wait_object(lambda o: o["event"] == "close" and o.get("peer") == peer,
                            6, "an idle timeout line")
        if o:
            check(o.get("reason") == "idle_timeout" and o.get("seconds") == 1 and
                  o["msg"] == "core %d: slot %d (%s) idle timeout" % (o["core"], o["slot"], peer),
                  "idle timeout: %s" % o["msg"])
        idle.close()

        # SIGHUP: reloaded; then a file that does not load.
        srv.signal(signal.SIGHUP)
        o = srv.wait_object(lambda o: o["event"] == "auth_reload", 5, "an 'auth_reload' line")
        if o:
            check(o.get("users") == 1 and o.get("file") == auth_shown and o["core"] is None,
                  "auth_reload: users 1, the file's name escaped (%r)" % o.get("file"))
            check(auth_shown in o["msg"], "auth_reload: the name in msg too")
        with open(auth, "ab") as f:
            f.write(b"no colon here\n")
        srv.signal(signal.SIGHUP)
        o = srv.wait_object(lambda o: o["event"] == "auth_reload_failed", 5,
                            "an 'auth_reload_failed' line")
        if o:
            check(o["level"] == "error" and "expected 'username:sha256hex'" in o.get("error", "")
                  and o.get("file") == auth_shown, "auth_reload_failed: error and file: %r" % o)

        # A burst: more lines than the limit lets through in a second.
        burst = [srv.connect() for _ in range(100)]
        time.sleep(0.5)
        for s in burst:
            s.close()
        # Their closes are not logged (the peer hung up); a later line on
        # each core says how many were dropped: the idle closes of a second
        # round.
        later = [srv.connect() for _ in range(12)]
        o = srv.wait_object(lambda o: isinstance(o.get("suppressed"), int) and
                            o["suppressed"] > 0, 8, "a line with 'suppressed' after the burst")
        if o:
            check(o["core"] is not None, "suppressed: on a worker's line (%s)" % o["msg"])
        opens = {}
        for o in srv.objects():
            if o["event"] == "open":
                key = (o["core"], o["time"][:19])
                opens[key] = opens.get(key, 0) + 1
        # The limit counts per second of the core's own clock; a second of
        # the wall clock overlaps two of them.
        check(max(opens.values()) <= 20, "at most 10 lines a second per core: %d open "
              "lines in one wall-clock second of one core" % max(opens.values()))
        for s in later:
            s.close()

        rc = srv.stop()
        check(rc == 0, "SIGTERM: exit status 0 (%s)" % rc)
        objs = srv.objects()
        ev = [o["event"] for o in objs]
        shut = [o for o in objs if o["event"] == "shutdown"]
        check(len(shut) == 1 and shut[0].get("signal") == "SIGTERM",
              "shutdown: signal SIGTERM")
        check(ev[-1] == "stopped", "the last line is 'stopped' (%s)" % ev[-1])
        check_shape(objs, threads)
        raw = srv.text()
        check(raw.endswith(b"\n") and all(l.startswith(b"{") for l in srv.lines()),
              "no line but JSON objects on stderr (%d bytes)" % len(raw))
    finally:
        srv.close()
        try:
            os.unlink(auth)
            os.rmdir(work)
        except OSError:
            pass


def text_run(server, version):
    # IPv6, text, --max-connections 1: the second client is rejected.
    srv = Server(server, ["--threads", "1", "--debug", "--max-connections", "1"],
                 host="::1", family=socket.AF_INET6)
    try:
        first = srv.lines()[0].decode()
        check(re.match(r"^\S+Z net001 info: net001 %s listening on ::1:%d: " %
                       (re.escape(version), srv.port), first) is not None,
              "text: the version on the listening line: %s" % first)
        a = srv.connect(family=socket.AF_INET6)
        peer_a = peer_of(a)
        srv.wait_text("(%s) open" % peer_a, 5)
        b = srv.connect(family=socket.AF_INET6)
        peer_b = peer_of(b)
        srv.wait_text("(%s) rejected (1 open)" % peer_b, 5)
        text = srv.text().decode()
        check(re.search(r"net001 debug: core 0: slot \d+ \(%s\) open\n" % re.escape(peer_a),
                        text) is not None, "text: 'core 0: slot N ([::1]:port) open'")
        check(re.search(r"net001 debug: core 0: slot \d+ \(%s\) rejected \(1 open\)\n" %
                        re.escape(peer_b), text) is not None,
              "text: the rejected connection with its peer")
        check(not any(l.startswith(b"{") for l in srv.lines()), "text: no JSON")
        a.close()
        b.close()
        check(srv.stop() == 0, "text: exit status 0")
    finally:
        srv.close()

    # NET001_LOG_FORMAT=json without the flag; the flag beats it.
    srv = Server(server, ["--threads", "1"], env={"NET001_LOG_FORMAT": "json"})
    try:
        srv.stop()
        objs = srv.objects()
        check([o["event"] for o in objs] == ["listening", "shutdown", "stopped"],
              "NET001_LOG_FORMAT=json: listening, shutdown, stopped as JSON")
    finally:
        srv.close()
    srv = Server(server, ["--threads", "1", "--log-format", "text"],
                 env={"NET001_LOG_FORMAT": "json"})
    try:
        srv.stop()
        check(b" net001 info: net001 " in srv.lines()[0], "--log-format text beats the variable")
    finally:
        srv.close()


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    server = argv[1]
    version = server_version(server)
    check(version is not None, "net001-server --version: %r" % version)
    json_run(server, version or "?")
    text_run(server, version or "?")
    return finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
