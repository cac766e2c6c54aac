# Developer tasks. The module has no dependencies: tools run through
# "go run pkg@version" and never enter go.mod.

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 10s
PKG         := ./...
# What loopauth may add to a sign-in CLI, in KiB (see make size).
SIZE_BUDGET_KIB ?= 400

.PHONY: test check fmt-check vet cross-vet staticcheck deps-check deps-budget compat bench size cover fuzz demo screenshots interop loc

## test: vet, then every test with the race detector
test: vet
	go test -race -count=1 $(PKG)

## check: formatting, vet (also for Windows and macOS), staticcheck, and the no-dependency rule
check: fmt-check vet cross-vet staticcheck deps-check deps-budget

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	go vet $(PKG)

cross-vet:
	GOOS=windows go vet $(PKG)
	GOOS=darwin go vet $(PKG)

staticcheck:
	go run $(STATICCHECK) $(PKG)

## deps-check: fail if go.mod grew a requirement
deps-check:
	@if grep -qE '^[[:space:]]*require([[:space:]]|\()' go.mod; then echo "go.mod has a require line: the library is standard library only"; exit 1; fi
	@test "$$(go list -m all)" = "github.com/loopauth/loopauth" || { echo "unexpected modules:"; go list -m all; exit 1; }

## deps-budget: fail if the root package links a standard package that
## testdata/deps.txt does not list (html/template, text/template and
## regexp are never listed)
deps-budget:
	@new=$$(go list -deps . | grep -v '^github.com/loopauth' | grep -v '^internal/\|/internal\(/\|$$\)\|^vendor/' | grep -vxF -f testdata/deps.txt || true); \
	if [ -n "$$new" ]; then \
		echo "the root package now links packages that testdata/deps.txt does not list:"; echo "$$new" | sed 's/^/  /'; \
		echo "Every package costs every CLI that imports loopauth (binary size, init time, audit surface)."; \
		echo "Use a smaller package, or add it to testdata/deps.txt with the reason in the commit message."; \
		exit 1; \
	fi
	@! grep -xE 'html/template|text/template|regexp' testdata/deps.txt || { echo "testdata/deps.txt lists a package the root package may never link"; exit 1; }

## compat: build and test with the oldest Go that go.mod allows (the go
## command fetches that toolchain from the module proxy)
compat:
	GOTOOLCHAIN=go1.23.12 go vet $(PKG)
	GOTOOLCHAIN=go1.23.12 go test -count=1 $(PKG)

## bench: the benchmarks, each beside its floor
bench:
	go test -run '^$$' -bench . -benchmem -count 6 $(PKG)

## size: build testdata/size/login (a sign-in CLI written with loopauth)
## and testdata/size/floor (the same job by hand, standard library only)
## as a release would, with an http and an https callback; print the sizes
## and fail when login is more than SIZE_BUDGET_KIB over the floor
size:
	@sh testdata/size/size.sh $(SIZE_BUDGET_KIB)

## loc: code lines of the root package (not blank, not comment-only;
## tests, examples and the test kit not counted); fails at LOC_BUDGET
LOC_BUDGET ?= 6000
loc:
	@n=$$(ls *.go | grep -v '_test.go$$' | xargs cat | grep -cvE '^[[:space:]]*$$|^[[:space:]]*//'); \
	echo "root package: $$n code lines (budget: under $(LOC_BUDGET))"; \
	test $$n -lt $(LOC_BUDGET)

## cover: coverage profile and summary
cover:
	go test -count=1 -coverprofile=cover.out $(PKG)
	go tool cover -func=cover.out | tail -1

## fuzz: run every fuzz target for FUZZTIME each; a failing input is
## written to testdata/fuzz/<target>/ and printed (see testdata/fuzz.sh)
fuzz:
	@sh testdata/fuzz.sh $(FUZZTIME)

## screenshots: the default pages as headless Chromium shows them, in the
## light and the dark scheme, as PNGs in SCREENSHOTS (git-ignored); the
## same test checks them (needs Debian's chromium, or LOOPAUTH_CHROMIUM)
SCREENSHOTS ?= screenshots
screenshots:
	@rm -rf $(SCREENSHOTS)
	LOOPAUTH_SCREENSHOTS=$(abspath $(SCREENSHOTS)) go test -count=1 -run '^TestChromiumScreenshots$$' -v .
	@test -n "$$(ls $(SCREENSHOTS)/*.png 2>/dev/null)" || { echo "no screenshots written: is chromium installed?"; exit 1; }
	@ls $(SCREENSHOTS)

## interop: whole sign-ins against panva's oidc-provider, an OpenID
## Certified provider, run by Node.js (20 or later, with npm) from
## testdata/interop; its pinned packages are installed there first (npm ci),
## and again whenever package-lock.json changes
INTEROP_LOCK := testdata/interop/node_modules/.package-lock.json
interop: $(INTEROP_LOCK)
	go test -count=1 -run '^TestInterop' .

$(INTEROP_LOCK): testdata/interop/package-lock.json testdata/interop/package.json
	cd testdata/interop && npm ci --no-audit --no-fund

## demo: the main job, unattended, against the embedded test provider
demo:
	go run ./examples/demo -auto
