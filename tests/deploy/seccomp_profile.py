#!/usr/bin/python3
"""deploy/seccomp/net001.json is a deny-by-default profile that allows
io_uring_setup, io_uring_enter and io_uring_register in one rule of its own,
and is otherwise what deploy/seccomp/generate makes from it (so it is its
base profile plus exactly that rule).

    seccomp_profile.py PROFILE GENERATE
"""
import importlib.machinery
import importlib.util
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from pysupport import check, finish  # noqa: E402

IO_URING = {"io_uring_setup", "io_uring_enter", "io_uring_register"}
# Calls the runtime's default profile never allows outright (some only with
# a capability the container lacks): still refused here.
NEVER = {"kexec_load", "kexec_file_load", "init_module", "finit_module",
         "delete_module", "bpf", "open_by_handle_at", "acct", "swapon",
         "settimeofday", "clock_settime", "iopl", "ioperm", "userfaultfd",
         "perf_event_open", "fanotify_init", "quotactl"}

def unconditional(rule):
    return not rule.get("args") and not rule.get("includes") and \
        not rule.get("excludes")


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        text = f.read()
    profile = json.loads(text)
    check(profile.get("defaultAction") == "SCMP_ACT_ERRNO",
          "default action %s (deny)" % profile.get("defaultAction"))
    rules = profile.get("syscalls", [])
    ours = [r for r in rules if set(r.get("names", [])) & IO_URING]
    check(len(ours) == 1, "one rule names io_uring calls (%d)" % len(ours))
    if ours:
        r = ours[0]
        check(set(r["names"]) == IO_URING, "it names exactly %s: %s"
              % (", ".join(sorted(IO_URING)), ", ".join(r["names"])))
        check(r.get("action") == "SCMP_ACT_ALLOW" and unconditional(r),
              "it allows them without conditions")
    allowed = set()
    for r in rules:
        if r.get("action") == "SCMP_ACT_ALLOW" and unconditional(r):
            allowed |= set(r.get("names", []))
    bad = sorted(allowed & NEVER)
    check(not bad, "no unconditional allow for %s" % (", ".join(bad) or
                                                     "kexec_load, bpf, init_module, ..."))
    check(len(allowed) > 250, "the base profile's allow list is there "
          "(%d calls allowed)" % len(allowed))

    # Remove our rule and regenerate: the generator must give this file.
    loader = importlib.machinery.SourceFileLoader("generate", argv[2])
    spec = importlib.util.spec_from_loader("generate", loader)
    gen = importlib.util.module_from_spec(spec)
    loader.exec_module(gen)
    base = dict(profile)
    base["syscalls"] = [r for r in rules if r not in ours]
    again = json.dumps(gen.derive(base), indent="\t") + "\n"
    check(again == text, "deploy/seccomp/generate on its base gives the file "
          "byte for byte (base profile + the io_uring rule, nothing else)")
    try:
        gen.derive(profile)
        check(False, "the generator refuses a profile that has io_uring rules")
    except ValueError:
        check(True, "the generator refuses a profile that has io_uring rules")

    return finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
