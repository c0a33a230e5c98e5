#!/usr/bin/python3
"""io_uring refused (README.md, "Operations"; net001-server(1), EXIT STATUS).

    uring_refused.py SERVER NO_URING

Runs the server under a seccomp filter that makes io_uring_setup fail
(NO_URING, built from no_uring.c), as a container runtime's default
profile does (ENOSYS) and as systemd's SystemCallFilter= does (EPERM):
the server must exit with status 3, say once (not once per thread) that
io_uring is not allowed, name the likely cause (the sysctl
kernel.io_uring_disabled when it is set, else a seccomp profile), and
leave nothing listening. In JSON every line parses, with the events
io_uring_refused and start_failed.
"""
import json
import subprocess
import sys

from oplib import check, finish, two_free_ports, _free


def sysctl():
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def run(no_uring, server, err, fmt):
    port, mport = two_free_ports()
    out = subprocess.run([no_uring, err, server, "--host", "127.0.0.1", "--port", str(port),
                          "--metrics-port", str(mport), "--threads", "2",
                          "--log-format", fmt],
                         capture_output=True, timeout=30)
    return out.returncode, out.stderr.decode("utf-8", errors="replace"), port


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    server, no_uring = argv[1], argv[2]
    cause = "sysctl" if sysctl() > 0 else "seccomp"
    want = "kernel.io_uring_disabled = " if cause == "sysctl" else "seccomp"
    names = {"ENOSYS": "Function not implemented", "EPERM": "Operation not permitted"}

    for err in ("ENOSYS", "EPERM"):
        rc, text, port = run(no_uring, server, err, "text")
        lines = text.splitlines()
        check(rc == 3, "%s, text: exit status 3 (got %d)" % (err, rc))
        said = [l for l in lines if "io_uring is" in l]
        check(len(said) == 1, "%s, text: said once for 2 threads (%d lines)" % (err, len(said)))
        check(any("io_uring setup: %s" % names[err] in l and want in l for l in said),
              "%s, text: names io_uring_setup's error and '%s': %s" % (err, want, said))
        check(bool(lines) and lines[-1] ==
              "net001-server: io_uring setup failed on 2 of 2 cores (see above)",
              "%s, text: the last line: %s" % (err, lines[-1] if lines else None))
        check(_free(port), "%s: nothing left listening" % err)

        rc, text, port = run(no_uring, server, err, "json")
        check(rc == 3, "%s, json: exit status 3 (got %d)" % (err, rc))
        try:
            objs = [json.loads(l) for l in text.splitlines()]
        except ValueError as e:
            check(False, "%s, json: every line JSON (%s): %s" % (err, e, text))
            continue
        ref = [o for o in objs if o.get("event") == "io_uring_refused"]
        if check(len(ref) == 1, "%s, json: one io_uring_refused line" % err):
            o = ref[0]
            check(o["level"] == "error" and o.get("cause") == cause and
                  o.get("error") == names[err] and isinstance(o["core"], int) and
                  want in o["msg"], "%s, json: io_uring_refused %r" % (err, o))
        fail = [o for o in objs if o.get("event") == "start_failed"]
        check(len(fail) == 1 and fail[0]["core"] is None and
              fail[0]["msg"] == "io_uring setup failed on 2 of 2 cores (see above)",
              "%s, json: start_failed from the main thread" % err)
    return finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
