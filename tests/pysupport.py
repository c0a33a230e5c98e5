"""Shared by the Python test scripts under tests/ (deploy, ops, metrics,
perf, wireshark): checks that count, free loopback ports, waiting for a
server to listen, starting and stopping a net001-server.

Standard library only: the scripts run under /usr/bin/python3. A script in
tests/FOLDER/ imports it with

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    import pysupport
"""
import random
import signal
import socket
import subprocess
import time

failures = []


def check(ok, what):
    """Print the check with ok or FAIL; a failed one is kept for finish().
    Returns ok."""
    print(("ok:   " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def finish():
    """The script's exit status: 1 (and how many failed) when a check
    failed, else 0."""
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


def port_free(port, family=socket.AF_INET, host="127.0.0.1"):
    """Whether host:port can be bound, with SO_REUSEADDR as the server binds
    (so a port with nothing listening is free even while connections of an
    earlier test linger in TIME_WAIT)."""
    s = socket.socket(family)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(rng=random, low=20000, high=31000):
    """A free loopback port in low..high-1 (tests stay below 32768, under
    the kernel's ephemeral range)."""
    for _ in range(200):
        port = rng.randrange(low, high)
        if port_free(port):
            return port
    raise RuntimeError("no free loopback port in %d..%d" % (low, high - 1))


def two_free_ports(family=socket.AF_INET, host="127.0.0.1", rng=random):
    """P and P + 1000 (the server's port and its default metrics port), both
    free, both below 32768."""
    for _ in range(200):
        p = rng.randrange(20000, 31000)
        if port_free(p, family, host) and port_free(p + 1000, family, host):
            return p, p + 1000
    raise RuntimeError("no free pair of loopback ports P, P + 1000")


def listening(port, host="127.0.0.1"):
    """Whether host:port accepts a TCP connection now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_listening(port, proc=None, host="127.0.0.1", timeout=10.0):
    """Wait until host:port accepts a connection: True; False when proc
    (if given) exits first or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if listening(port, host):
            return True
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def stop(proc, timeout=10):
    """SIGTERM (if it still runs), then SIGKILL when it has not exited
    within timeout seconds. Returns its exit status (negative: the signal
    that ended it)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def start_server(binary, args=(), log=None, host="127.0.0.1", tries=5, timeout=10.0):
    """BINARY (net001-server) with --host HOST --port P and ARGS, where P
    and P + 1000 (the default metrics port) were free: (process, P) once P
    accepts connections. Its stdout and stderr go to the file LOG, or
    nowhere. A try whose server exits or does not listen in time is killed
    and the next one takes other ports."""
    out = subprocess.DEVNULL if log is None else log
    for _ in range(tries):
        port, _ = two_free_ports(host=host)
        proc = subprocess.Popen([binary, "--host", host, "--port", str(port)] + list(args),
                                stdout=out, stderr=out)
        if wait_listening(port, proc, host, timeout):
            return proc, port
        proc.kill()
        proc.wait()
    raise RuntimeError("%s did not listen after %d tries" % (binary, tries))
