#!/usr/bin/python3
"""The image's health check (deploy/container/healthcheck) against a real
server: it finds the metrics port on the server's command line (given as
--metrics-port N, as --metrics-port=N, or as --port + 1000), passes while
/healthz says 200, and fails with metrics off or with the server gone.

    healthcheck.py SERVER HEALTHCHECK
"""
import os
import random
import signal
import socket
import subprocess
import sys
import time

failures = []


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def two_free_ports():
    while True:
        p = random.randrange(20000, 31000)
        if free(p) and free(p + 1000):
            return p, p + 1000


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start(server, args, wait_port):
    proc = subprocess.Popen([server, "--threads", "1"] + args,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while wait_port and not listening(wait_port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server %s did not start: %s" % (
                args, proc.stderr.read().decode(errors="replace")))
        time.sleep(0.05)
    return proc


def health(script, pid, port=None):
    env = dict(os.environ, NET001_HEALTH_PID=str(pid))
    env.pop("NET001_HEALTH_PORT", None)
    env.pop("NET001_HEALTH_ADDR", None)
    if port:
        env["NET001_HEALTH_PORT"] = str(port)
    r = subprocess.run([script], env=env, capture_output=True, text=True,
                       timeout=20)
    return r.returncode, r.stderr.strip()


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    server, script = argv[1], argv[2]

    port, mport = two_free_ports()
    p = start(server, ["--port", str(port), "--host", "127.0.0.1"], mport)
    rc, err = health(script, p.pid)
    check(rc == 0, "--port %d: healthy on %d (%s)" % (port, mport, err or "200"))
    stop(p)
    rc, err = health(script, p.pid, mport)
    check(rc == 1 and "cannot connect" in err,
          "server gone, NET001_HEALTH_PORT=%d: unhealthy (%s)" % (mport, err))

    port, mport = two_free_ports()
    mport = port + 500 if free(port + 500) else mport
    p = start(server, ["--port=%d" % port, "--metrics-port", str(mport)], mport)
    rc, err = health(script, p.pid)
    check(rc == 0, "--port=%d --metrics-port %d: healthy (%s)"
          % (port, mport, err or "200"))
    stop(p)

    port, mport = two_free_ports()
    p = start(server, ["--port", str(port), "--metrics-port=%d" % mport,
                       "--host", "::1"], 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("::1", mport), timeout=0.5):
                break
        except OSError:
            time.sleep(0.05)
    rc, err = health(script, p.pid)
    check(rc == 0, "--host ::1 --metrics-port=%d: healthy (%s)"
          % (mport, err or "200"))
    stop(p)

    port, _ = two_free_ports()
    p = start(server, ["--port", str(port), "--metrics-port", "0"], port)
    rc, err = health(script, p.pid)
    check(rc == 1 and "off" in err, "--metrics-port 0: unhealthy, says why (%s)"
          % err)
    stop(p)

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
