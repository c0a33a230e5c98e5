"""Shared by the tests in tests/ops: a real net001-server on free loopback
ports with its stderr in a file, raw NET-001 frames, checks that count.

Runs under /usr/bin/python3 (standard library only).
"""
import json
import os
import random
import signal
import socket
import struct
import subprocess
import tempfile
import time
import zlib

failures = []


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def finish():
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


def _free(port, family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def two_free_ports(family=socket.AF_INET, host="127.0.0.1"):
    """P and P + 1000 (the server's default pair), both below 32768."""
    while True:
        p = random.randrange(20000, 31000)
        if _free(p, family, host) and _free(p + 1000, family, host):
            return p, p + 1000


def frame(ftype, payload=b""):
    head = struct.pack(">IBBH", 0xDEADBEEF, 1, ftype, len(payload))
    return head + payload + struct.pack(">I", zlib.crc32(head + payload))


PING, ECHO, AUTH = 0x01, 0x03, 0x06


def read_frame(sock, timeout=5.0):
    """(type, payload) of the next frame, or None on EOF."""
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < 8:
        b = sock.recv(8 - len(buf))
        if not b:
            return None
        buf += b
    n = struct.unpack(">H", buf[6:8])[0]
    while len(buf) < 12 + n:
        b = sock.recv(12 + n - len(buf))
        if not b:
            return None
        buf += b
    return buf[5], buf[8:8 + n]


class Server:
    """net001-server on 127.0.0.1 (or host) and free ports; stderr in a file."""

    def __init__(self, binary, args, env=None, host="127.0.0.1",
                 family=socket.AF_INET, wait=True):
        self.port, self.mport = two_free_ports(family, host)
        self.host = host
        self.dir = tempfile.TemporaryDirectory(prefix="net001-ops-")
        self.log_path = os.path.join(self.dir.name, "stderr")
        full_env = dict(os.environ)
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.pop("NET001_LOG_FORMAT", None)
        full_env.update(env or {})
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "--host", host, "--port", str(self.port),
                 "--metrics-port", str(self.mport)] + args,
                stdout=subprocess.DEVNULL, stderr=log, env=full_env)
        if wait:
            self.wait_text("listening on", 15)

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    def lines(self):
        """Whole lines so far (bytes)."""
        data = self.text()
        return data.split(b"\n")[:-1]

    def wait_text(self, needle, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle.encode() in self.text():
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("no '%s' from the server within %s s (status %s):\n%s" % (
            needle, timeout, self.proc.poll(), self.text().decode(errors="replace")))

    def objects(self):
        """Every line as JSON; a line that is not JSON raises."""
        out = []
        for raw in self.lines():
            out.append(json.loads(raw.decode("utf-8")))
        return out

    def wait_object(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            for o in self.objects():
                if pred(o):
                    return o
            if time.monotonic() > deadline:
                check(False, "%s within %s s" % (what, timeout))
                return None
            time.sleep(0.05)

    def connect(self, source=None, family=socket.AF_INET):
        s = socket.socket(family, socket.SOCK_STREAM)
        if source:
            s.bind((source, 0))
        s.connect((self.host, self.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -1

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.dir.cleanup()


def server_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                         timeout=30).stdout.split()
    return out[1] if len(out) == 2 else None
