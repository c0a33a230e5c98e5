#!/usr/bin/python3
"""deploy/prometheus: promtool check rules on alerts.yml, promtool test rules
on alerts_test.yml, and every alert has a test case where it fires and one
where it stays quiet (promtool alone passes a test of an alert that does not
exist, or an alert with no test). Then the rules against the real exporter:
every net001_* series and every code="..." value the rules name must be in
a scrape of SERVER's /metrics, so a renamed metric or label fails here
instead of silencing an alert.

    alerts.py ALERTS.yml ALERTS_TEST.yml SERVER
"""
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from pysupport import check, finish, start_server, stop  # noqa: E402

def run(args):
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    out = (r.stdout + r.stderr).strip()
    return r.returncode, out


def scrape(server):
    """The /metrics page of a fresh server on free loopback ports."""
    proc, port = start_server(server, ["--threads", "1"])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                url = "http://127.0.0.1:%d/metrics" % (port + 1000)
                with urllib.request.urlopen(url, timeout=2) as r:
                    return r.read().decode()
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        stop(proc)


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    rules_path, tests_path, server = argv[1], argv[2], argv[3]
    promtool = shutil.which("promtool")
    if not check(promtool is not None,
                 "promtool on PATH (scripts/deps --test puts it in .deps/bin)"):
        return 1

    rc, out = run([promtool, "check", "rules", rules_path])
    if not check(rc == 0, "promtool check rules %s" % rules_path):
        print(out)
    rc, out = run([promtool, "test", "rules", tests_path])
    if not check(rc == 0 and "SUCCESS" in out,
                 "promtool test rules %s" % tests_path):
        print(out)

    with open(rules_path, encoding="utf-8") as f:
        rules = yaml.safe_load(f)
    with open(tests_path, encoding="utf-8") as f:
        tests = yaml.safe_load(f)
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"]
              if "alert" in r]
    check(len(alerts) == len(set(alerts)), "alert names are unique")
    fires, quiet = set(), set()
    for t in tests.get("tests", []):
        for c in t.get("alert_rule_test", []) or []:
            (fires if c.get("exp_alerts") else quiet).add(c["alertname"])
    for a in alerts:
        check(a in fires, "%s: a case where it fires" % a)
        check(a in quiet, "%s: a case where it stays quiet" % a)
    for a in sorted((fires | quiet) - set(alerts)):
        check(False, "the tests name %s, which alerts.yml does not have" % a)

    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]
             if "alert" in r]
    page = scrape(server)
    series = {l.split("{")[0].split()[0] for l in page.splitlines()
              if l and not l.startswith("#")}
    named = sorted({n for e in exprs for n in re.findall(r"\bnet001_\w+", e)})
    check(len(named) >= 6, "the rules name %d net001 series" % len(named))
    for n in named:
        check(n in series, "%s is in a real scrape" % n)
    codes = set(re.findall(r'net001_errors_total\{code="([a-z_]+)"', page))
    used = set()
    for e in exprs:
        for m in re.finditer(r'code\s*(=~|!~|=|!=)\s*"([^"]*)"', e):
            used |= set(m.group(2).split("|"))
    check(len(codes) >= 10, "the scrape has %d error codes" % len(codes))
    for c in sorted(used):
        check(c in codes, 'code="%s" is an error code the server exports' % c)

    return finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
