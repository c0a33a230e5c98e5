#!/usr/bin/python3
"""deploy/prometheus: promtool check rules on alerts.yml, promtool test rules
on alerts_test.yml, and every alert has a test case where it fires and one
where it stays quiet (promtool alone passes a test of an alert that does not
exist, or an alert with no test).

    alerts.py ALERTS.yml ALERTS_TEST.yml
"""
import shutil
import subprocess
import sys

import yaml

failures = []


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)
    return ok


def run(args):
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    out = (r.stdout + r.stderr).strip()
    return r.returncode, out


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    rules_path, tests_path = argv[1], argv[2]
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

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
