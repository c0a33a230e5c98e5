"""The locustfile, headless, against a real server with rate limits off:
no failures, and a request count the server's own metrics confirm."""

from __future__ import annotations

import csv
import random
import re
import subprocess
import urllib.request
from pathlib import Path

from .conftest import PYTHON_DIR, StartServer, _port_free

USERS = 20
RUN_TIME = "10s"
# A plain build does about 3,000 requests here; the threshold leaves room
# for the ASan+UBSan server and a busy machine.
MIN_REQUESTS = 1000


def metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r'(net001_frames_received_total\{type="(\w+)"\}) (\S+)$', line)
        if m:
            out[m.group(2)] = float(m.group(3))
    return out


def free_port() -> int:
    for _ in range(100):
        p = random.randrange(10000, 32000)
        if _port_free(p):
            return p
    raise RuntimeError("no free port")


def test_locust_headless(start_server: StartServer, tmp_path: Path) -> None:
    mport = free_port()
    srv = start_server(
        "--rate-limit", "0", "--global-rate-limit", "0", "--metrics-port", str(mport)
    )
    prefix = tmp_path / "run"
    # The README's command (Debian's locust, the locustfile from the
    # checkout, run from the repository's root), shorter and on our port.
    cmd = [
        "/usr/bin/locust",
        "-f", "python/locustfile.py",
        "--host", f"tcp://localhost:{srv.port}",
        "--headless", "-u", str(USERS), "-r", "10", "-t", RUN_TIME,
        "--csv", str(prefix), "--loglevel", "WARNING",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=PYTHON_DIR.parent)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "Aggregated" in out and "Response time percentiles" in out, out

    with open(f"{prefix}_stats.csv", newline="") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    for name in ("PING", "ECHO", "BROADCAST", "CONNECT", "Aggregated"):
        assert name in rows, rows.keys()
        assert int(rows[name]["Failure Count"]) == 0, rows[name]
    assert int(rows["CONNECT"]["Request Count"]) == USERS
    total = int(rows["Aggregated"]["Request Count"])
    assert total > MIN_REQUESTS, f"only {total} requests"
    for name in ("PING", "ECHO", "BROADCAST"):
        assert int(rows[name]["Request Count"]) > MIN_REQUESTS / 10, rows[name]

    # The server saw at least what locust counted as answered.
    seen = metrics(mport)
    assert seen["ping"] >= int(rows["PING"]["Request Count"])
    assert seen["echo"] >= int(rows["ECHO"]["Request Count"])
    assert seen["broadcast"] >= int(rows["BROADCAST"]["Request Count"])
    print(f"locust: {total} requests, 0 failures; server: {seen}")
