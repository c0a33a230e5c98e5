#!/usr/bin/python3
"""The metrics dashboard in a real browser.

Starts net001-server (rate limits off) on free loopback ports, holds idle
client connections open, sends PINGs, ECHOs and BROADCASTs, provokes
BAD_CRC and UNSUPPORTED_TYPE errors, and loads http://127.0.0.1:MPORT/ in
headless Chromium. Over the DevTools protocol (a small WebSocket client
below, standard library only) it reads the numbers the page renders (the
elements' data-value) and checks that they follow the traffic: the open
connections, messages per second while traffic runs and 0 after it stops,
the provoked errors by code, broadcast deliveries, latency percentiles and
the per-core buffer rings. It also checks the page loads nothing but the
server's own URLs and logs no error (its Content-Security-Policy would
report anything else), and saves a screenshot as dashboard.png in the
log directory ($NET001_TEST_LOG_DIR, default the current one).

Environment: NET001_SERVER (the binary), NET001_CHROMIUM (default
chromium), NET001_DASHBOARD_SECONDS (traffic before the screenshot, default
8; a longer run draws fuller charts).
"""
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from pysupport import check, finish, start_server, stop  # noqa: E402

SERVER = os.environ.get("NET001_SERVER", "build/net001-server")
CHROMIUM = os.environ.get("NET001_CHROMIUM", "chromium")
LOG_DIR = os.environ.get("NET001_TEST_LOG_DIR", ".")
TRAFFIC_S = float(os.environ.get("NET001_DASHBOARD_SECONDS", "8"))

PING, ECHO, BROADCAST = 0x01, 0x03, 0x05


def frame(ftype, payload):
    head = struct.pack(">IBBH", 0xDEADBEEF, 1, ftype, len(payload)) + payload
    return head + struct.pack(">I", zlib.crc32(head) & 0xFFFFFFFF)


def read_frame(sock):
    head = recv_exact(sock, 8)
    (n,) = struct.unpack(">H", head[6:8])
    body = recv_exact(sock, n + 4)
    return head[5], body[:n]


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        b = sock.recv(n - len(buf))
        if not b:
            raise EOFError("connection closed")
        buf += b
    return buf


class Traffic(threading.Thread):
    """PINGs (pipelined batches), an ECHO and a BROADCAST now and then,
    until stopped."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.sent = 0
        self.error = None

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            batch = b"".join(frame(PING, struct.pack(">Q", i)) for i in range(25))
            k = 0
            while not self.stop.is_set():
                s.sendall(batch)
                for _ in range(25):
                    t, _ = read_frame(s)
                    assert t == 0x02, "PONG expected, got %#x" % t
                self.sent += 25
                if k % 10 == 0:
                    s.sendall(frame(ECHO, b"dashboard" * (k % 7)))
                    assert read_frame(s)[0] == 0x04
                    s.sendall(frame(BROADCAST, b"news %d" % k))
                    self.sent += 2
                k += 1
                # About 2,000 frames a second at rest, more in waves.
                time.sleep(0.012 if (k // 100) % 2 else 0.006)
            s.close()
        except Exception as e:  # reported by the main thread
            self.error = e


# ---- a WebSocket client for the DevTools protocol (RFC 6455, client side) ----

class WebSocket:
    def __init__(self, url):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            b = self.sock.recv(4096)
            if not b:
                raise EOFError("websocket handshake")
            head += b
        head, _, self.buf = head.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError("websocket handshake refused: %r" % head[:200])

    def _read(self, n):
        while len(self.buf) < n:
            b = self.sock.recv(1 << 16)
            if not b:
                raise EOFError("websocket closed")
            self.buf += b
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = struct.pack(">BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack(">BBQ", 0x81, 0x80 | 127, n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(head + mask + body)

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            op = b0 & 0x0F
            if op == 0x9:     # ping
                self.sock.sendall(struct.pack(">BB", 0x8A, 0x80) + os.urandom(4))
                continue
            if op == 0x8:
                raise EOFError("websocket closed by the browser")
            msg += data
            if b0 & 0x80:
                return msg.decode()


class DevTools:
    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == mid:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError("page script failed: %s" % r["exceptionDetails"])
        return r["result"].get("value")


READ_PAGE = """JSON.stringify(Object.fromEntries(
  [...document.querySelectorAll('[id][data-value]')].map(e => [e.id, e.dataset.value])
  .concat([['status', document.getElementById('status').textContent]])))"""


def start_browser(profile):
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-quic",
            "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio",
            "--hide-scrollbars", "--window-size=1400,1300",
            "--user-data-dir=" + profile, "--remote-debugging-port=0", "about:blank"]
    log = open(os.path.join(profile, "chromium.log"), "w")
    proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("chromium exited with %d; see %s" % (proc.returncode, log.name))
        if os.path.exists(port_file):
            lines = open(port_file).read().split("\n")
            if len(lines) >= 2 and lines[0].isdigit():
                port = int(lines[0])
                with urlopen_json(port, "/json/list") as targets:
                    pages = [t for t in targets if t.get("type") == "page"]
                    if pages:
                        return proc, pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.2)
    raise RuntimeError("chromium did not open its DevTools port")


class urlopen_json:
    """GET a JSON document from the DevTools HTTP endpoint (http.client
    without a proxy)."""

    def __init__(self, port, path):
        import http.client
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.c.request("GET", path)
        self.doc = json.loads(self.c.getresponse().read())

    def __enter__(self):
        return self.doc

    def __exit__(self, *exc):
        self.c.close()


def num(values, key):
    v = values.get(key)
    return float(v) if v not in (None, "") else None


def wait_page(dt, pred, timeout, what):
    deadline = time.time() + timeout
    while True:
        try:
            vals = json.loads(dt.evaluate(READ_PAGE) or "{}")
        except RuntimeError as e:   # the page is still loading
            vals = {"error": str(e)}
        if pred(vals) or time.time() > deadline:
            if not pred(vals):
                print("page after %.0f s: %s" % (timeout, vals), flush=True)
            check(pred(vals), what)
            return vals
        time.sleep(0.3)


def main():
    if shutil.which(CHROMIUM) is None:
        print("FAIL %s not found (scripts/deps --test installs chromium)" % CHROMIUM)
        return 1
    os.makedirs(LOG_DIR, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="net001-dashboard-")
    logf = open(os.path.join(tmp, "server.log"), "w+")
    # The metrics (and the dashboard) on the default port + 1000.
    server, port = start_server(SERVER, ["--threads", "2", "--rate-limit", "0",
                                         "--global-rate-limit", "0"], log=logf)
    mport = port + 1000
    browser = None
    idle = []
    try:
        print("server on %d, metrics on %d" % (port, mport), flush=True)
        # Idle clients: they show up as open connections.
        for _ in range(6):
            idle.append(socket.create_connection(("127.0.0.1", port)))
        # Provoked errors: 3 frames with a broken CRC, 1 unsupported type.
        bad = socket.create_connection(("127.0.0.1", port))
        for i in range(3):
            f = bytearray(frame(PING, struct.pack(">Q", i)))
            f[-1] ^= 0x55
            bad.sendall(bytes(f))
            t, p = read_frame(bad)
            check(t == 0xFF and struct.unpack(">H", p[:2])[0] == 3, "BAD_CRC reply %d" % i)
        bad.sendall(frame(0x42, b""))
        t, p = read_frame(bad)
        check(t == 0xFF and struct.unpack(">H", p[:2])[0] == 4, "UNSUPPORTED_TYPE reply")
        idle.append(bad)

        traffic = Traffic(port)
        traffic.start()

        browser, ws_url = start_browser(tmp)
        dt = DevTools(ws_url)
        for domain in ("Page", "Runtime", "Log", "Network"):
            dt.call(domain + ".enable")
        url = "http://127.0.0.1:%d/" % mport
        dt.call("Page.navigate", url=url)

        v = wait_page(dt, lambda v: v.get("status") == "live" and (num(v, "samples") or 0) >= 4
                      and (num(v, "mps") or 0) > 0, 30, "the page is live with samples")
        print("page while traffic runs: %s" % v, flush=True)
        check((num(v, "connections") or 0) >= 8,
              "connections >= the 8 held open (%s)" % v.get("connections"))
        check((num(v, "mps") or 0) > 100, "messages/s > 100 while PINGs flow (%s)" % v.get("mps"))
        check((num(v, "mps-ping") or 0) > 100, "PING/s shown (%s)" % v.get("mps-ping"))
        check(num(v, "err-bad_crc") == 3, "errors by code: bad_crc 3 (%s)" % v.get("err-bad_crc"))
        check(num(v, "err-unsupported_type") == 1,
              "errors by code: unsupported_type 1 (%s)" % v.get("err-unsupported_type"))
        check(num(v, "err-rate_limited") == 0, "rate_limited 0 (limits off)")
        check(num(v, "errors-total") == 4, "errors total 4 (%s)" % v.get("errors-total"))
        check((num(v, "bcast-total") or 0) > 0, "broadcast deliveries counted (%s)"
              % v.get("bcast-total"))
        p50, p99 = num(v, "lat-p50"), num(v, "lat-p99")
        check(p50 is not None and 0 < p50 < 1, "latency p50 from the histogram (%s s)" % p50)
        check(p99 is not None and p50 <= p99 < 2, "latency p99 >= p50 (%s s)" % p99)
        check(num(v, "ring-0") is not None and num(v, "ring-1") is not None
              and num(v, "ring-2") is None, "one buffer ring per core (2)")
        check((num(v, "ring-min") or 0) > 0, "buffer rings have free buffers")
        check(num(v, "slow-total") == 0, "no slow-consumer closes")

        # The numbers keep moving with the traffic.
        first_total = num(v, "mps")
        time.sleep(max(0.0, TRAFFIC_S - 4))
        v2 = wait_page(dt, lambda x: (num(x, "samples") or 0) > (num(v, "samples") or 0) + 2,
                       15, "new samples keep coming")
        check((num(v2, "mps") or 0) > 100, "still > 100 messages/s (%s)" % v2.get("mps"))
        check(first_total is not None, "mps was read")

        shot = dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        png = base64.b64decode(shot["data"])
        path = os.path.join(LOG_DIR, "dashboard.png")
        with open(path, "wb") as f:
            f.write(png)
        check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000,
              "screenshot saved to %s (%d bytes)" % (path, len(png)))

        # Traffic stops and the idle clients leave: the page follows.
        traffic.stop.set()
        traffic.join(10)
        check(traffic.error is None, "traffic ran without error (%s)" % traffic.error)
        for s in idle:
            s.close()
        v3 = wait_page(dt, lambda x: num(x, "mps") == 0 and num(x, "connections") == 0, 15,
                       "after the traffic: 0 messages/s and 0 connections")
        print("page after the traffic: %s" % v3, flush=True)

        # Only the server's own URLs, no console errors (CSP reports
        # anything else as one).
        urls = [e["params"]["request"]["url"] for e in dt.events
                if e["method"] == "Network.requestWillBeSent"]
        foreign = [u for u in urls if not u.startswith("http://127.0.0.1:%d/" % mport)]
        check(urls and not foreign, "requests only to the metrics port (%d, other: %s)"
              % (len(urls), foreign[:3]))
        check(any(u.endswith("/stats.json") for u in urls), "the page polled /stats.json")
        errors = [e for e in dt.events if e["method"] == "Runtime.exceptionThrown" or
                  (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
        check(not errors, "no script errors or console errors (%s)" % errors[:2])
        try:
            dt.call("Browser.close")
        except (EOFError, OSError):
            pass
    finally:
        if browser is not None:
            try:
                browser.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(browser.pid, signal.SIGKILL)
                browser.wait()
        for s in idle:
            s.close()
        rc = stop(server, 15)
        check(rc == 0, "server exits 0 after SIGTERM (%s)" % rc)
        logf.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
