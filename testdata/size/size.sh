#!/bin/sh
# Run by "make size": builds the probes of this directory as a release
# would (-trimpath -ldflags='-s -w'), each with an http and an https
# callback, prints their sizes and fails when login, the sign-in written
# with loopauth, is more than BUDGET KiB (first argument, default 384)
# over floor, the same job written by hand, built the same way.
set -eu
budget=${1:-384}
cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT INT TERM
for p in login floor; do
	go build -trimpath -ldflags='-s -w' -o "$dir/$p" "./testdata/size/$p"
	go build -trimpath -ldflags='-s -w' -tags https -o "$dir/$p-https" "./testdata/size/$p"
done
bytes() { wc -c <"$dir/$1" | tr -d ' '; }
awk -v budget="$budget" -v go="$(go env GOVERSION) $(go env GOOS)/$(go env GOARCH)" \
	-v l="$(bytes login)" -v lh="$(bytes login-https)" -v f="$(bytes floor)" -v fh="$(bytes floor-https)" '
function kib(n) { return sprintf("%+.0f KiB", n / 1024) }
BEGIN {
	printf "Binary size in bytes, %s, -trimpath -ldflags=\"-s -w\"\n\n", go
	printf "%-16s %12s %12s %14s\n", "", "http", "https", "https - http"
	printf "%-16s %12d %12d %14s\n", "login (loopauth)", l, lh, kib(lh - l)
	printf "%-16s %12d %12d %14s\n", "floor (by hand)", f, fh, kib(fh - f)
	printf "%-16s %12s %12s\n", "login - floor", kib(l - f), kib(lh - fh)
	printf "%-16s %12s %12s\n\n", "budget", "+" budget " KiB", "+" budget " KiB"
	if (l - f > budget * 1024 || lh - fh > budget * 1024) {
		print "loopauth adds more than " budget " KiB to a sign-in CLI: find what grew with"
		print "  go build -o /tmp/login ./testdata/size/login && go tool nm -size -sort size /tmp/login | head -50"
		exit 1
	}
}'
