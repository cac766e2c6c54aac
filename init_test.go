package loopauth

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Budget of the package's own initialization: every program that imports
// loopauth pays it on every run, including the runs that only read a
// stored token.
const (
	maxInitAllocs = 4
	maxInitBytes  = 1024
)

// TestInitCost builds a program that only imports the package, runs it
// with GODEBUG=inittrace=1 and checks the package's init line: nothing may
// be parsed, built or allocated at start-up beyond a few words.
func TestInitCost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program; skipped with -short")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module initprobe\n\ngo 1.23\n\nrequire github.com/loopauth/loopauth v0.0.0\n\nreplace github.com/loopauth/loopauth => " + root + "\n",
		"main.go": "package main\n\nimport _ \"github.com/loopauth/loopauth\"\n\nfunc main() {}\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command(goTool, "build", "-o", "probe", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the probe: %v\n%s", err, out)
	}
	run := exec.Command(filepath.Join(dir, "probe"))
	run.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("running the probe: %v\n%s", err, out)
	}
	allocs, bytes, found := initCost(string(out), "github.com/loopauth/loopauth")
	if !strings.Contains(string(out), "init net/http @") {
		t.Fatalf("no init trace in the probe's output:\n%s", out)
	}
	if found && (allocs > maxInitAllocs || bytes > maxInitBytes) {
		t.Errorf("the package's init costs %d allocations and %d bytes (budget %d and %d): move the work out of init, to first use",
			allocs, bytes, maxInitAllocs, maxInitBytes)
	}
	t.Logf("init: %d allocations, %d bytes (line found: %v)", allocs, bytes, found)
}

// initCost reads "init PKG @0.5 ms, 0.001 ms clock, 48 bytes, 2 allocs"
// from a GODEBUG=inittrace=1 trace.
func initCost(trace, pkg string) (allocs, bytes int, found bool) {
	for _, line := range strings.Split(trace, "\n") {
		rest, ok := strings.CutPrefix(line, "init "+pkg+" @")
		if !ok {
			continue
		}
		f := strings.Fields(strings.ReplaceAll(rest, ",", ""))
		// f: 0.5 ms 0.001 ms clock 48 bytes 2 allocs
		for i := 1; i < len(f); i++ {
			n, err := strconv.Atoi(f[i-1])
			switch {
			case err != nil:
			case f[i] == "bytes":
				bytes = n
			case f[i] == "allocs":
				allocs = n
			}
		}
		return allocs, bytes, true
	}
	return 0, 0, false
}
