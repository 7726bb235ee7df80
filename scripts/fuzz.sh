#!/usr/bin/env bash
# Runs each fuzz target (package:Target) for FUZZTIME. Go 1.26's fuzz coordinator can report a bare
# "context deadline exceeded" when -fuzztime expires while a worker is mid-input (golang/go#75804,
# fixed in Go 1.27): no input is written and nothing failed. Such a run is retried once; any other
# failure (a failing input written, a panic, a test error) fails at once.
set -uo pipefail
: "${FUZZTIME:=10s}" "${FUZZMINIMIZE:=100x}" "${GO:=go}"
for t in "$@"; do
	pkg=${t%%:*} name=${t##*:}
	for try in 1 2; do
		echo "fuzz $pkg $name ($FUZZTIME)"
		out=$("$GO" test -run='^$' -fuzz="^$name\$" -fuzztime="$FUZZTIME" -fuzzminimizetime="$FUZZMINIMIZE" "$pkg" 2>&1)
		rc=$?
		printf '%s\n' "$out"
		[ "$rc" = 0 ] && break
		if [ "$try" = 1 ] && grep -q 'context deadline exceeded' <<<"$out" &&
			! grep -Eq 'Failing input written|panic:|_test\.go:[0-9]+:' <<<"$out"; then
			echo "fuzz $name: the Go 1.26 fuzztime race (golang/go#75804), no failing input: once more"
			continue
		fi
		exit "$rc"
	done
done
