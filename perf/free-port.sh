# free_port [TAKEN...]: a loopback port in port_lo..port_hi (default
# 10000..31999) that no listener holds now and that is not one of TAKEN.
# Sourced by the perf scripts; exits the script when none is found.
free_port() {
	local lo=${port_lo:-10000} hi=${port_hi:-31999} p
	for _ in $(seq 200); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		case " $* " in *" $p "*) continue ;; esac
		if ! ss -Htln "sport = :$p" | grep -q .; then
			echo "$p"
			return
		fi
	done
	echo "$(basename "$0"): no free port in $lo-$hi" >&2
	exit 1
}
