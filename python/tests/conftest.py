"""Fixtures: real net001-server processes on free loopback ports.

The server binary is $NET001_SERVER (meson sets it), else build/net001-server
in the repository. Nothing is mocked: the clients talk to the real server
over real sockets.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent

# Generous: the suite also runs against an ASan+UBSan server on 2 busy cores.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def server_binary() -> str:
    path = os.environ.get("NET001_SERVER") or str(REPO / "build" / "net001-server")
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"no server binary at {path}: build it (meson setup build && ninja -C build) "
            "or set NET001_SERVER"
        )
    return path


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Server:
    """One net001-server process listening on 127.0.0.1:port."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        rng = random.Random(os.getpid() ^ time.monotonic_ns())
        for _ in range(50):
            port = rng.randrange(10000, 32000)
            if not _port_free(port):
                continue
            cmd = [server_binary(), "--host", "127.0.0.1", "--port", str(port)]
            if "--metrics-port" not in self.args:
                cmd += ["--metrics-port", "0"]
            cmd += self.args
            log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            self.port = port
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if "listening on" in self.log():
                    return self
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"server did not start in {START_TIMEOUT}s:\n{self.log()}")
            if "Address already in use" not in self.log():
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}:\n{self.log()}"
                )
        raise RuntimeError("no free port found")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def pause(self) -> None:
        """SIGSTOP, and wait until every thread is stopped."""
        self.signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        task_dir = Path(f"/proc/{self.pid}/task")
        while True:
            states = []
            for t in task_dir.iterdir():
                try:
                    states.append((t / "stat").read_text().rsplit(")", 1)[1].split()[0])
                except (FileNotFoundError, IndexError):
                    pass
            if states and all(st == "T" for st in states):
                return
            assert time.monotonic() < deadline, f"server not stopped: {states}"
            time.sleep(0.005)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> int:
        """SIGTERM (after SIGCONT, in case it was stopped); the exit status."""
        p = self.proc
        assert p is not None
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError(f"server did not stop on SIGTERM:\n{self.log()}")
        return p.returncode


StartServer = Callable[..., Server]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """start_server(*args) -> Server; each is stopped at the end of the
    test, and one stopped by SIGTERM must exit 0 (sanitizer reports fail)."""
    servers: list[Server] = []

    def start(*args: str) -> Server:
        s = Server(list(args), tmp_path / f"server{len(servers)}.log")
        servers.append(s)
        return s.start()

    yield start
    for s in servers:
        assert s.proc is not None
        if s.proc.returncode is not None:
            continue  # killed by the test
        rc = s.stop()
        assert rc == 0, f"server exit status {rc}:\n{s.log()}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server shared by a module's tests: 2 threads, rate limits off."""
    d = tmp_path_factory.mktemp("server")
    s = Server(
        ["--threads", "2", "--rate-limit", "0", "--global-rate-limit", "0"],
        d / "server.log",
    ).start()
    yield s
    rc = s.stop()
    assert rc == 0, f"server exit status {rc}:\n{s.log()}"


USERS = {"alice": "s3cret", "bob": "hunter2-but-longer"}


@pytest.fixture
def auth_file(tmp_path: Path) -> Path:
    """An auth file with USERS: lines user:sha256hex(token)."""
    p = tmp_path / "users.auth"
    lines = ["# test users", ""]
    lines += [f"{u}:{hashlib.sha256(t.encode()).hexdigest()}" for u, t in USERS.items()]
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, made with the
    openssl command: (cert.pem, key.pem)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
