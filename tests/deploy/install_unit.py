#!/usr/bin/python3
"""meson install and the systemd unit.

    install_unit.py BUILD_DIR UNIT [MAN_PAGE...]

Installs the build into a temporary --destdir and checks that the programs
and the given man pages (e.g. net001-server.1) land where meson's prefix,
bindir and mandir say. Then checks deploy/systemd/net001.service: the
directives the service depends on (Type=notify with NotifyAccess=main, the
exit statuses not worth a restart, descriptors, reload, hardening, a system
call filter that keeps io_uring), and `systemd-analyze verify` on
a copy whose ExecStart points into the destdir, with the installed man
pages on MANPATH so Documentation=man:... is checked too. With no man page
given (-Dman=disabled), verify runs with --man=no. Any warning from verify
fails the test.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

IO_URING = {"io_uring_setup", "io_uring_enter", "io_uring_register"}
# Where `meson install` puts the server with meson's default prefix; the unit
# is written for that.
DEFAULT_SERVER = "/usr/local/bin/net001-server"

failures = []


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)
    return ok


def parse_unit(path):
    """{section: [(key, value), ...]} with continuation lines joined."""
    sections, cur, pending = {}, None, ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = pending + raw.rstrip("\n")
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            m = re.fullmatch(r"\[(.+)\]", s)
            if m:
                cur = sections.setdefault(m.group(1), [])
                continue
            key, sep, value = s.partition("=")
            if not sep or cur is None:
                check(False, "unit line not key=value in a section: %r" % s)
                continue
            cur.append((key.strip(), value.strip()))
    return sections


def values(unit, section, key):
    return [v for k, v in unit.get(section, []) if k == key]


def last(unit, section, key):
    v = values(unit, section, key)
    return v[-1] if v else None


def expand_syscalls(items):
    """Names of the calls in a list of calls and @groups."""
    names = set()
    for it in items:
        if it.startswith("@"):
            out = subprocess.run(["systemd-analyze", "syscall-filter", it],
                                 capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                check(False, "systemd-analyze syscall-filter %s" % it)
            names |= {l.strip() for l in out.stdout.splitlines()
                      if re.fullmatch(r"\s+[a-z_0-9]+", l)}
            # groups inside groups are listed as @name lines
            subs = [l.strip() for l in out.stdout.splitlines()
                    if re.fullmatch(r"\s+@[a-z-]+", l)]
            names |= expand_syscalls(subs)
        else:
            names.add(it)
    return names


def check_unit(unit):
    svc = "Service"
    t = last(unit, svc, "Type")
    check(t == "notify", "Type=%s (notify: the server speaks sd_notify)" % t)
    # The server's main process sends READY/RELOADING/STOPPING; no other.
    check(last(unit, svc, "NotifyAccess") == "main", "NotifyAccess=main")
    prevent = " ".join(values(unit, svc, "RestartPreventExitStatus")).split()
    check({"2", "3"} <= set(prevent),
          "RestartPreventExitStatus has 2 (bad flag) and 3 (io_uring not "
          "allowed): %s" % " ".join(prevent))
    start = last(unit, svc, "ExecStart") or ""
    argv = shlex.split(start)
    check(bool(argv) and argv[0] == DEFAULT_SERVER,
          "ExecStart runs %s (meson install's default place)" % DEFAULT_SERVER)
    reload_ = last(unit, svc, "ExecReload") or ""
    check("-HUP" in reload_ and re.search(r"\$\{?MAINPID\b", reload_),
          "ExecReload sends SIGHUP to $MAINPID: %r" % reload_)
    check(any(v.lstrip("-") for v in values(unit, svc, "EnvironmentFile")),
          "an EnvironmentFile for flags")
    nofile = last(unit, svc, "LimitNOFILE") or "0"
    soft_hard = nofile.split(":")
    check(all(x == "infinity" or (x.isdigit() and int(x) >= 65536)
              for x in soft_hard),
          "LimitNOFILE=%s is at least 65536" % nofile)
    for key, want in (("DynamicUser", "yes"), ("NoNewPrivileges", "yes"),
                      ("ProtectSystem", "strict")):
        check(last(unit, svc, key) == want, "%s=%s" % (key, want))

    allow, deny = set(), set()
    filters = values(unit, svc, "SystemCallFilter")
    check(bool(filters), "a SystemCallFilter")
    for v in filters:
        items = v.split()
        if items and items[0].startswith("~"):
            deny |= expand_syscalls([items[0][1:]] + items[1:])
        else:
            allow |= expand_syscalls(items)
    check(IO_URING <= allow, "the filter allows %s" % ", ".join(sorted(IO_URING)))
    check(not (IO_URING & deny), "no deny list takes io_uring away")
    check(last(unit, "Install", "WantedBy") is not None, "an [Install] WantedBy")


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    build, unit_path, pages = argv[1], argv[2], argv[3:]
    unit = parse_unit(unit_path)
    check_unit(unit)

    opts = json.loads(subprocess.run(
        ["meson", "introspect", "--buildoptions", build],
        capture_output=True, text=True, check=True, timeout=60).stdout)
    opt = {o["name"]: o["value"] for o in opts}
    prefix, bindir, mandir = opt["prefix"], opt["bindir"], opt["mandir"]

    with tempfile.TemporaryDirectory(prefix="net001-install-") as dest:
        inst = subprocess.run(["meson", "install", "-C", build, "--no-rebuild",
                               "--quiet", "--destdir", dest],
                              capture_output=True, text=True, timeout=300)
        if not check(inst.returncode == 0, "meson install --destdir"):
            print(inst.stdout + inst.stderr)
            return 1
        root = lambda p: os.path.join(dest, p.lstrip("/"))
        bin_dir = root(os.path.join(prefix, bindir))
        server = os.path.join(bin_dir, "net001-server")
        for prog in ("net001-server", "net001-cli"):
            p = os.path.join(bin_dir, prog)
            check(os.access(p, os.X_OK), "installed %s" % os.path.relpath(p, dest))
        man_root = root(os.path.join(prefix, mandir))
        for page in pages:
            p = os.path.join(man_root, "man1", page)
            ok = os.path.isfile(p)
            if ok:
                with open(p, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                ok = ".TH" in text and page.rsplit(".", 1)[0] in text
            check(ok, "installed man page %s" % os.path.relpath(p, dest))

        # verify wants ExecStart to exist: point it at the installed server.
        copy = os.path.join(dest, "net001.service")
        with open(unit_path, encoding="utf-8") as f:
            text = f.read()
        with open(copy, "w", encoding="utf-8") as f:
            f.write(text.replace("ExecStart=" + DEFAULT_SERVER,
                                 "ExecStart=" + server))
        env = dict(os.environ)
        cmd = ["systemd-analyze", "verify"]
        if pages:
            env["MANPATH"] = man_root
        else:
            cmd.append("--man=no")
        cmd.append(copy)
        out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                             timeout=120)
        said = (out.stdout + out.stderr).strip()
        check(out.returncode == 0 and not said,
              "systemd-analyze verify%s: %s" % (
                  "" if pages else " --man=no",
                  "clean" if not said else "status %d\n%s" % (out.returncode, said)))

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
