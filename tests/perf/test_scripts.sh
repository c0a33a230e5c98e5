#!/usr/bin/env bash
# perf/run-scenarios, perf/run-flood and perf/run-cluster: --help, and every bad argument
# refused with exit 2 and one line, before anything is installed, built or
# started. (The runs themselves need a quiet machine: not run here.)
set -uo pipefail
root=${NET001_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
fails=0 passes=0

check() { # name want-status want-stderr-substring command...
	local name=$1 want=$2 needle=$3
	shift 3
	local err st
	err=$("$@" 2>&1 >/dev/null)
	st=$?
	if [ "$st" -ne "$want" ]; then
		echo "FAIL $name: exit $st, wanted $want: $err"
		fails=$((fails + 1))
	elif [ -n "$needle" ] && ! grep -qF -- "$needle" <<<"$err"; then
		echo "FAIL $name: stderr lacks '$needle': $err"
		fails=$((fails + 1))
	elif [ "$want" -eq 2 ] && [ "$(wc -l <<<"$err")" -ne 1 ]; then
		echo "FAIL $name: not one line: $err"
		fails=$((fails + 1))
	else
		passes=$((passes + 1))
	fi
}

rs=$root/perf/run-scenarios
rf=$root/perf/run-flood
check "scenarios --ports reversed" 2 "--ports takes LO-HI" "$rs" --ports 5000-4000
check "scenarios --ports junk" 2 "--ports takes LO-HI" "$rs" --ports 10000
check "scenarios --ports too high" 2 "--ports takes LO-HI" "$rs" --ports 1000-70000
check "scenarios --ports missing" 2 "--ports takes LO-HI" "$rs" --ports
check "scenarios --runs 0" 2 "--runs needs a count" "$rs" --runs 0
check "scenarios --only" 2 "--only takes" "$rs" --only nothing
check "scenarios unknown" 2 "unknown argument '--bogus'" "$rs" --bogus
check "flood --receivers 0" 2 "--receivers needs a number" "$rf" --receivers 0
check "flood --payload" 2 "--payload takes 0..65535" "$rf" --payload 70000
check "flood --only" 2 "--only takes net001, redis or nats" "$rf" --only kafka
check "flood --rate 0" 2 "--rate needs a number" "$rf" --rate 0
check "flood --rate junk" 2 "--rate needs a number" "$rf" --rate 5k
check "flood --ports" 2 "--ports takes LO-HI" "$rf" --ports 9-9
check "flood unknown" 2 "unknown argument 'x'" "$rf" x
rc=$root/perf/run-cluster
check "cluster --receivers 1" 2 "--receivers takes 2..100000" "$rc" --receivers 1
check "cluster --payload" 2 "--payload takes 8..65535" "$rc" --payload 4
check "cluster --rate" 2 "--rate takes" "$rc" --rate x
check "cluster --ports" 2 "--ports takes LO-HI" "$rc" --ports 9-9
check "cluster --only" 2 "--only takes flood, rate or idle" "$rc" --only all
check "cluster unknown" 2 "unknown argument 'x'" "$rc" x

for s in "$rs" "$rf" "$rc"; do
	out=$("$s" --help)
	st=$?
	if [ $st -ne 0 ] || ! grep -q -- '--ports LO-HI' <<<"$out" || grep -q '^set ' <<<"$out"; then
		echo "FAIL $(basename "$s") --help: exit $st: $out"
		fails=$((fails + 1))
	else
		passes=$((passes + 1))
	fi
done
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
