package loopauth

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// leakGrace is how long a goroutine may take to return after it has done
// its last work (closed its done channel, released its port): the
// invariant is "ended before the call returned", and the only slack is the
// scheduler's.
const leakGrace = time.Second

// noLeaks records the goroutines running now and returns a check that
// fails t if any goroutine started since is still running: call it right
// after the public call under test returns. Tests that use it must not
// call t.Parallel (another test's goroutines would count).
//
// Every goroutine started by the call counts, including net/http's
// connection goroutines of the callback server and of the library's own
// HTTP clients; goroutines of the test framework do not.
func noLeaks(t testing.TB) (check func()) {
	t.Helper()
	before := goroutineStacks()
	return func() {
		t.Helper()
		var left map[uint64]string
		for deadline := time.Now().Add(leakGrace); ; time.Sleep(5 * time.Millisecond) {
			left = newGoroutines(before, goroutineStacks())
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(left) > 0 {
			var b strings.Builder
			for _, stack := range left {
				b.WriteString(stack)
				b.WriteString("\n\n")
			}
			t.Errorf("%d goroutine(s) outlived the call:\n%s", len(left), b.String())
		}
	}
}

// checkNoLeaks is noLeaks checked when the test ends.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	check := noLeaks(t)
	t.Cleanup(check)
}

// newGoroutines returns the goroutines of now that are not in before,
// leaving out the test framework's own.
func newGoroutines(before, now map[uint64]string) map[uint64]string {
	out := map[uint64]string{}
	for id, stack := range now {
		if _, ok := before[id]; ok || isFrameworkGoroutine(stack) {
			continue
		}
		out[id] = stack
	}
	return out
}

func isFrameworkGoroutine(stack string) bool {
	for _, s := range []string{"testing.tRunner", "testing.(*T).Run", "testing.runFuzzing", "testing.(*F).Fuzz", "runtime.ensureSigM", "os/signal.signal_recv"} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}

// goroutineStacks returns every goroutine's stack by goroutine ID.
func goroutineStacks() map[uint64]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[uint64]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		// "goroutine 42 [chan receive]:"
		rest, ok := bytes.CutPrefix(g, []byte("goroutine "))
		if !ok {
			continue
		}
		end := bytes.IndexByte(rest, ' ')
		if end < 0 {
			continue
		}
		id, err := strconv.ParseUint(string(rest[:end]), 10, 64)
		if err != nil {
			continue
		}
		out[id] = string(g)
	}
	return out
}

// TestNoLeaksDetects proves the helper fails when a goroutine outlives a
// call, and passes once it has ended.
func TestNoLeaksDetects(t *testing.T) {
	rec := &recordingTB{TB: t}
	check := noLeaks(rec)
	stop := make(chan struct{})
	go func() { <-stop }()
	check()
	if !rec.failed {
		t.Fatal("a goroutine left running was not reported")
	}
	close(stop)

	rec = &recordingTB{TB: t}
	check = noLeaks(rec)
	done := make(chan struct{})
	go func() { close(done) }()
	<-done
	check()
	if rec.failed {
		t.Fatalf("a goroutine that ended was reported: %s", rec.msg)
	}
}

// recordingTB records failures instead of failing the test.
type recordingTB struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.failed = true
	r.msg = format
}

// TestNoLeaksAfterCalls: the public calls that talk to a provider
// (refresh, discovery, key-set validation) leave no goroutine behind on
// any way out: success, a provider error, a slow provider whose caller
// gives up, an unreachable one. Flows, Token, Transport, the stores and
// mkcert have theirs in their own tests.
func TestNoLeaksAfterCalls(t *testing.T) {
	ok := loopauthtest.NewProvider(t)
	failing := loopauthtest.NewProvider(t, loopauthtest.WithRefreshError(500, "server_error", "down"))
	slow := loopauthtest.NewProvider(t, loopauthtest.WithTokenDelay(5*time.Second))
	down := "http://127.0.0.1:1" // nothing listens on port 1

	refreshToken := func(p *loopauthtest.Provider) string {
		ts, err := openIDClient(t, p).RunAuthorizationFlow(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return ts.RefreshToken()
	}
	okRT, failingRT := refreshToken(ok), refreshToken(failing)
	idToken := ok.SignIDToken(map[string]any{"iss": ok.Issuer(), "sub": "u", "aud": "test-cli", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	for _, tc := range []struct {
		name    string
		call    func() error
		wantErr bool
	}{
		{"refresh", func() error { _, err := openIDClient(t, ok).Refresh(context.Background(), okRT); return err }, false},
		{"refresh refused", func() error { _, err := openIDClient(t, failing).Refresh(context.Background(), failingRT); return err }, true},
		{"refresh given up", func() error { _, err := openIDClient(t, slow).Refresh(short(), "rt"); return err }, true},
		{"refresh cancelled", func() error { _, err := openIDClient(t, ok).Refresh(cancelled, okRT); return err }, true},
		{"discovery", func() error { _, err := FetchOpenIDConfiguration(context.Background(), ok.Issuer()); return err }, false},
		{"discovery unreachable", func() error { _, err := FetchOpenIDConfiguration(context.Background(), down); return err }, true},
		{"validate", func() error {
			return NewRemoteJWKSValidator(ok.JWKSURL(), "test-cli").Validate(context.Background(), idToken)
		}, false},
		{"validate unreachable", func() error {
			return NewRemoteJWKSValidator(down+"/jwks", "test-cli").Validate(context.Background(), idToken)
		}, true},
		{"validate cancelled", func() error {
			return NewRemoteJWKSValidator(ok.JWKSURL(), "test-cli").Validate(cancelled, idToken)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := noLeaks(t)
			err := tc.call()
			check()
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want an error: %v", err, tc.wantErr)
			}
		})
	}
}
