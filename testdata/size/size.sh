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

# A program that never asks for an HTTPS callback links neither the TLS
# server nor certificate generation: UseHTTPS is the only way to them.
go build -trimpath -o "$dir/login-symbols" ./testdata/size/login
go build -trimpath -tags https -o "$dir/login-https-symbols" ./testdata/size/login
https_code='crypto/tls\.\(\*Conn\)\.serverHandshake$|crypto/x509\.CreateCertificate$'
if go tool nm "$dir/login-symbols" | grep -E "$https_code" >/dev/null; then
	echo "login links the TLS server or certificate generation without calling UseHTTPS:"
	go tool nm "$dir/login-symbols" | grep -E "$https_code"
	exit 1
fi
if ! go tool nm "$dir/login-https-symbols" | grep -E "$https_code" >/dev/null; then
	echo "the check for HTTPS code finds nothing even with UseHTTPS: the symbol names changed, fix https_code in $0"
	exit 1
fi
echo "login without UseHTTPS links no TLS server and no certificate generation."
