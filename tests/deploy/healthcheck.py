#!/usr/bin/python3
"""The image's health check (deploy/container/healthcheck) against a real
server: it finds the metrics port on the server's command line (given as
--metrics-port N, as --metrics-port=N, or as --port + 1000), passes while
/healthz says 200, and fails with metrics off or with the server gone.

    healthcheck.py SERVER HEALTHCHECK
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from pysupport import (check, finish, port_free, stop, two_free_ports,  # noqa: E402
                       wait_listening)

def start(server, args, wait_port, wait_host="127.0.0.1"):
    """The server with --threads 1 and args, once wait_port listens."""
    proc = subprocess.Popen([server, "--threads", "1"] + args,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not wait_listening(wait_port, proc, wait_host):
        proc.kill()
        raise RuntimeError("server %s did not start: %s" % (
            args, proc.stderr.read().decode(errors="replace")))
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
    mport = port + 500 if port_free(port + 500) else mport
    p = start(server, ["--port=%d" % port, "--metrics-port", str(mport)], mport)
    rc, err = health(script, p.pid)
    check(rc == 0, "--port=%d --metrics-port %d: healthy (%s)"
          % (port, mport, err or "200"))
    stop(p)

    port, mport = two_free_ports()
    p = start(server, ["--port", str(port), "--metrics-port=%d" % mport,
                       "--host", "::1"], mport, "::1")
    rc, err = health(script, p.pid)
    check(rc == 0, "--host ::1 --metrics-port=%d: healthy (%s)"
          % (mport, err or "200"))
    stop(p)

    # The exporter on ::1 only, the protocol on 127.0.0.1: the check must
    # follow --metrics-host, given before or after --host.
    for order in (0, 1):
        port, mport = two_free_ports()
        hosts = [["--host", "127.0.0.1"], ["--metrics-host=::1"]]
        if order:
            hosts.reverse()
        p = start(server, ["--port", str(port)] + hosts[0] + hosts[1], mport, "::1")
        rc, err = health(script, p.pid)
        check(rc == 0, "--metrics-host ::1 (%s): healthy (%s)"
              % ("after --host" if not order else "before --host", err or "200"))
        stop(p)

    port, _ = two_free_ports()
    p = start(server, ["--port", str(port), "--metrics-port", "0"], port)
    rc, err = health(script, p.pid)
    check(rc == 1 and "off" in err, "--metrics-port 0: unhealthy, says why (%s)"
          % err)
    stop(p)

    return finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
