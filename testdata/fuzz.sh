#!/bin/sh
# Runs every fuzz target of the root package for $1 (a -fuzztime) each.
# A failing input is written to testdata/fuzz/<target>/, which "go test"
# replays from then on: commit it with the fix, as a regression seed. It is
# printed here too, so that one found in CI can be committed from its log.
#
# Go 1.26 can fail a target with a bare "context deadline exceeded" just as
# a -fuzztime duration runs out (golang/go#75804, fixed in Go 1.27): its
# coordinator races its own deadline. That failure writes no input and
# names none; such a run is repeated once, and fails the second time.
set -u
fuzztime=${1:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for f in $(go test -list '^Fuzz' . | grep '^Fuzz'); do
	for try in 1 2; do
		echo "== $f"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" -fuzzminimizetime 200x . 2>&1 | tee "$log"
		status=$(tail -1 "$log")
		case $status in ok*) break ;; esac
		new=$(git ls-files --others --exclude-standard "testdata/fuzz/$f" 2>/dev/null)
		for c in $new; do echo "--- new regression seed $c:"; cat "$c"; done
		if [ -z "$new" ] && [ "$try" = 1 ] &&
			grep -q '^    context deadline exceeded$' "$log" &&
			! grep -qE 'Failing input|panic:|_test\.go:[0-9]+:' "$log"; then
			echo "== $f stopped by Go's own fuzzing deadline (golang/go#75804), no input found: once more"
			continue
		fi
		exit 1
	done
done
