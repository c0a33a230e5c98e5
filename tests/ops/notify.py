#!/usr/bin/python3
"""sd_notify (README.md, "Operations"; deploy/systemd/net001.service).

    notify.py SERVER

Plays systemd's part for Type=notify: a datagram socket in NOTIFY_SOCKET,
read as systemd reads it. The server must send READY=1 (with a STATUS=)
only when it serves: a PING is answered and /healthz says 200 when the
datagram arrives; RELOADING=1 with MONOTONIC_USEC= (the monotonic clock
now) then READY=1 around SIGHUP; STOPPING=1 on SIGTERM, then exit 0, and
nothing else. The same through an abstract socket ("@name"). A
NOTIFY_SOCKET that cannot be used (a relative name, nobody listening)
gives one warning line and the server serves anyway; without the
variable nothing is sent.
"""
import os
import signal
import socket
import sys
import tempfile
import time
import urllib.request

from oplib import PING, Server, check, finish, frame, read_frame


def receive(sock, timeout):
    sock.settimeout(timeout)
    try:
        return sock.recv(4096).decode()
    except socket.timeout:
        return None


def serving(srv):
    try:
        with srv.connect() as c:
            c.sendall(frame(PING, b"12345678"))
            pong = read_frame(c, 2) == (0x02, b"12345678")
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % srv.mport,
                                    timeout=2) as r:
            return pong and r.status == 200
    except OSError:
        return False


def lifecycle(server, sock, env_value, what):
    srv = Server(server, ["--threads", "2"], env={"NOTIFY_SOCKET": env_value}, wait=False)
    try:
        msg = receive(sock, 15)
        ok = serving(srv)
        check(msg == "READY=1\nSTATUS=listening on 127.0.0.1:%d" % srv.port,
              "%s: READY=1 with STATUS (%r)" % (what, msg))
        check(ok, "%s: at READY=1 a PING is answered and /healthz is 200" % what)
        check(b"listening on" in srv.text(), "%s: after the listening line" % what)

        srv.signal(signal.SIGHUP)
        msg = receive(sock, 10) or ""
        now_us = time.monotonic() * 1e6
        head, _, usec = msg.partition("\nMONOTONIC_USEC=")
        check(head == "RELOADING=1" and usec.isdigit() and abs(int(usec) - now_us) < 10e6,
              "%s: SIGHUP: RELOADING=1 with MONOTONIC_USEC now (%r)" % (what, msg))
        msg = receive(sock, 10)
        check(msg == "READY=1", "%s: then READY=1 (%r)" % (what, msg))
        check(serving(srv), "%s: serving after the reload" % what)

        srv.signal(signal.SIGTERM)
        msg = receive(sock, 10)
        check(msg == "STOPPING=1", "%s: SIGTERM: STOPPING=1 (%r)" % (what, msg))
        rc = srv.stop()
        check(rc == 0, "%s: exit status 0 (%s)" % (what, rc))
        check(receive(sock, 0.3) is None, "%s: nothing after STOPPING=1" % what)
        check(b"notify" not in srv.text(), "%s: no warning in the log" % what)
    finally:
        srv.close()


def unusable(server, value, what):
    srv = Server(server, ["--threads", "1", "--log-format", "json"],
                 env={"NOTIFY_SOCKET": value})
    try:
        check(serving(srv), "%s: serves anyway" % what)
        srv.signal(signal.SIGHUP)
        srv.wait_text("auth_reload_skipped", 5)
        rc = srv.stop()
        objs = srv.objects()
        warn = [o for o in objs if o["event"] == "notify_failed"]
        check(rc == 0 and len(warn) == 1 and warn[0]["level"] == "warn" and
              warn[0].get("socket") == value and warn[0].get("error"),
              "%s: one notify_failed warning naming the socket, exit 0 (%r)" % (what, warn))
    finally:
        srv.close()


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    server = argv[1]
    with tempfile.TemporaryDirectory(prefix="net001-notify-") as d:
        path = os.path.join(d, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            lifecycle(server, sock, path, "path socket")

        name = "net001-test-notify-%d" % os.getpid()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind("\0" + name)
            lifecycle(server, sock, "@" + name, "abstract socket")

        unusable(server, "relative/name", "a relative NOTIFY_SOCKET")
        unusable(server, os.path.join(d, "nobody"), "a NOTIFY_SOCKET nobody reads")

        # Without NOTIFY_SOCKET (and with it empty) nothing is sent.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path + "2")
            srv = Server(server, ["--threads", "1"], env={"NOTIFY_SOCKET": ""})
            try:
                srv.stop()
                check(receive(sock, 0.3) is None and b"notify" not in srv.text(),
                      "an empty NOTIFY_SOCKET: nothing sent, nothing said")
            finally:
                srv.close()
    return finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
