#!/usr/bin/python3
"""perf/wake-trace check on made-up traces (a lost wake-up, a starved
worker, task work never followed by a wake-up, a clean trace, bad
arguments); perf/wake-stress against a stand-in server whose worker sleeps
on unread requests (reported as a lost wake-up), and against the real
server: every reply comes and the summary line has its classes.

Environment: NET001_SERVER, NET001_SOURCE_ROOT (meson sets them).
"""
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.environ.get("NET001_SOURCE_ROOT",
                      os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SERVER = os.environ.get("NET001_SERVER", os.path.join(ROOT, "build", "net001-server"))
TRACE = os.path.join(ROOT, "perf", "wake-trace")
STRESS = os.path.join(ROOT, "perf", "wake-stress")
RING, TID = "ffff88815cf98000", 4242
FAILS = []


def check(name, cond, detail=""):
    print("%s %s%s" % ("ok  " if cond else "FAIL", name, (": " + detail) if not cond else ""))
    if not cond:
        FAILS.append(name)


def ev(ts, name, text, comm="python3", pid=99, cpu=0):
    return "%16s-%-5d [%03d] d..2. %12.6f: %s: %s\n" % (comm, pid, cpu, ts, name, text)


def sleep_at(ts):
    return ev(ts, "sched_switch", "prev_comm=net001-core0 prev_pid=%d prev_prio=120 "
              "prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120" % TID,
              "net001-core0", TID)


def add_at(ts):
    return ev(ts, "io_uring_task_add", "ring %s, req ffff8881bf7e3400, user_data 0x2000001, "
              "opcode RECV, mask c3" % RING)


def wake_at(ts):
    return (ev(ts, "sched_waking", "comm=net001-core0 pid=%d prio=120 target_cpu=000" % TID) +
            ev(ts + 0.000002, "sched_wakeup", "comm=net001-core0 pid=%d prio=120 "
               "target_cpu=000" % TID))


def run_in(ts):
    return ev(ts, "sched_switch", "prev_comm=other prev_pid=7 prev_prio=120 prev_state=R "
              "==> next_comm=net001-core0 next_pid=%d next_prio=120" % TID, "other", 7)


def trace_check(wd, name, text, *extra):
    path = os.path.join(wd, name)
    with open(path, "w") as f:
        f.write("# tracer: nop\n#\n" + text)
    args = list(extra) if extra else ["%s=%d" % (RING, TID)]
    r = subprocess.run([TRACE, "check", path] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


def checker_cases(wd):
    # woken 10 us after the task work, run at once: clean
    rc, out = trace_check(wd, "clean", sleep_at(1.0) + add_at(1.0001) + wake_at(1.00011) +
                          run_in(1.00012) + sleep_at(1.0002))
    check("clean trace: exit 0", rc == 0, out)
    check("clean trace: no lost wake-up", "lost (wake-up over 1 ms later, or none): 0" in out, out)

    # the wake-up comes 30 ms after the task work: lost
    rc, out = trace_check(wd, "lost", sleep_at(1.0) + add_at(1.001) + wake_at(1.031) +
                          run_in(1.0311))
    check("late wake-up: exit 1", rc == 1, out)
    check("late wake-up: reported", "lost (wake-up over 1 ms later, or none): 1" in out, out)

    # task work and no wake-up at all before the trace ends 2 s later
    rc, out = trace_check(wd, "never", sleep_at(1.0) + add_at(1.001) +
                          ev(3.0, "io_uring_cqring_wait", "ring %s, min_events 1" % RING))
    check("no wake-up at all: exit 1", rc == 1, out)

    # woken in time, run 120 ms later: starved, not lost
    rc, out = trace_check(wd, "starved", sleep_at(1.0) + add_at(1.001) + wake_at(1.00101) +
                          run_in(1.121))
    check("starved worker: exit 0", rc == 0, out)
    check("starved worker: counted over 50 ms", "over 50 ms 1" in out, out)

    # task work on another ring is not this worker's
    rc, out = trace_check(wd, "other-ring", sleep_at(1.0) +
                          add_at(1.001).replace(RING, "ffff888307193000") + run_in(1.5))
    check("another ring's task work: exit 0", rc == 0, out)

    rc, out = trace_check(wd, "bad-args", "", "not-a-pair")
    check("bad RING=TID: exit 2 and one line", rc == 2 and len(out.strip().splitlines()) == 1, out)
    r = subprocess.run([TRACE, "bogus"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check("unknown command: exit 2", r.returncode == 2, r.stderr.decode())


def free_port():
    for _ in range(200):
        port = random.randrange(20000, 31000)
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise SystemExit("no free port")


def live(wd):
    for _ in range(5):
        port = free_port()
        log = open(os.path.join(wd, "server.log"), "w")
        srv = subprocess.Popen([SERVER, "--host", "127.0.0.1", "--port", str(port),
                                "--metrics-port", "0", "--threads", "2", "--rate-limit", "0",
                                "--global-rate-limit", "0"], stdout=log, stderr=subprocess.STDOUT)
        end = time.time() + 10
        up = False
        while time.time() < end and srv.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                up = True
                break
            except OSError:
                time.sleep(0.05)
        if up:
            break
        srv.kill()
        srv.wait()
    else:
        raise SystemExit("server did not start")
    try:
        r = subprocess.run([STRESS, "--port", str(port), "--pid", str(srv.pid), "--runs", "300",
                            "--type", "mixed", "--frames", "4", "--slow-ms", "50"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        out = r.stdout.decode()
        summary = [ln for ln in out.splitlines() if ln.startswith("runs 300 ")]
        # exit 1 would be a missing reply or a worker asleep while one was
        # owed; a busy machine only makes runs slow ("starved")
        check("wake-stress: every reply came, no worker asleep (exit 0)", r.returncode == 0,
              out[-2000:] + r.stderr.decode())
        check("wake-stress: summary with the classes", len(summary) == 1 and
              "(starved " in summary[0], out[-2000:])
        r = subprocess.run([STRESS, "--port", str(port), "--runs", "50", "--reuse", "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        check("wake-stress --reuse: exit 0", r.returncode == 0,
              r.stdout.decode() + r.stderr.decode())
    finally:
        srv.terminate()
        srv.wait(timeout=15)


# A stand-in for a server that misses its wake-ups: its one worker thread
# (named like a net001 worker) sleeps 150 ms before reading what arrived.
SLEEPY = r"""
import os, socket, sys, threading, time
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(16)
def worker():
    with open("/proc/self/task/%d/comm" % threading.get_native_id(), "w") as f:
        f.write("net001-core0")
    while True:
        c, _ = ls.accept()
        time.sleep(0.15)
        c.setblocking(False)
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
        except BlockingIOError:
            pass
        c.close()
threading.Thread(target=worker, daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""


def sleepy(wd):
    port = free_port()
    srv = subprocess.Popen([sys.executable, "-c", SLEEPY, str(port)], stdout=subprocess.PIPE)
    try:
        check("sleepy stand-in started", srv.stdout.readline().strip() == b"ready")
        r = subprocess.run([STRESS, "--port", str(port), "--pid", str(srv.pid), "--runs", "2",
                            "--conns", "1", "--frames", "1", "--gap-ms", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        out = r.stdout.decode()
        check("wake-stress: a worker asleep on unread requests is a lost wake-up (exit 1)",
              r.returncode == 1 and "asleep 2," in out, out + r.stderr.decode())
    finally:
        srv.kill()
        srv.wait()


def main():
    with tempfile.TemporaryDirectory(prefix="net001-wake-") as wd:
        checker_cases(wd)
        sleepy(wd)
        live(wd)
    if FAILS:
        print("%d failed: %s" % (len(FAILS), ", ".join(FAILS)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
