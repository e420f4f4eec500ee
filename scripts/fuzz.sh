#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each (default 10s).
#
# Go 1.26's fuzz coordinator can report "context deadline exceeded" as a
# failure when -fuzztime runs out while a worker is mid-call on a loaded
# machine (go.dev/issue/75804, fixed in Go 1.27). A real failure always
# writes a reproducer ("Failing input written to ..."), so a run that ends
# with the bare deadline error and no reproducer is retried once; any other
# failure fails at once.
set -uo pipefail

fuzztime="${FUZZTIME:-10s}"
go="${GO:-go}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

deadline_race() {
	grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"
}

run_target() { # pkg target
	"$go" test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1" 2>&1 | tee "$log"
}

for pkg in $("$go" list ./...); do
	for f in $("$go" test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz'); do
		echo "fuzz $pkg $f"
		run_target "$pkg" "$f" && continue
		if deadline_race; then
			echo "fuzz $pkg $f: the -fuzztime deadline race of go.dev/issue/75804 (no failing input); running it again"
			run_target "$pkg" "$f" && continue
		fi
		echo "fuzz $pkg $f: FAILED" >&2
		exit 1
	done
done
