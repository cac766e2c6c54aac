package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// tokenLike matches a run of base64url long enough to be a token:
// loopauthtest issues 43-character tokens.
var tokenLike = regexp.MustCompile(`[A-Za-z0-9_-]{32,}`)

// assertNoTokens fails if any output line looks like it carries a token.
func assertNoTokens(t *testing.T, name, out string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if tokenLike.MatchString(line) {
			t.Errorf("%s line looks like it prints a secret: %q", name, line)
		}
	}
}

func TestDemoAuto(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"-auto", "-timeout", "10s"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"Starting a local test provider at http://127.0.0.1:",
		"signing keys at http://127.0.0.1:",
		"Signed in.",
		"subject:       ada-1815\n",
		"email:         ada@example.com (verified: yes)\n",
		"name:          Ada Lovelace\n",
		"issuer:        http://127.0.0.1:",
		"ID token:      signature verified against the provider's JWKS",
		"Refreshing once...",
		"scopes:        openid email offline_access",
		"refresh token: yes",
		"token type:    Bearer",
		"access token:  43 characters (not shown)",
		"rotated:       yes",
		"new ID token:  yes, verified; same subject: yes",
		"Logging out...\n  revoked at the provider; access token still accepted: no",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "refresh token: yes"); n != 2 {
		t.Errorf("%d token sets described, want 2 (sign-in and refresh):\n%s", n, out)
	}
	if !regexp.MustCompile(`expires: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ \(in 3[56]\d\ds\)`).MatchString(out) {
		t.Errorf("no expiry about an hour ahead:\n%s", out)
	}
	assertNoTokens(t, "stdout", out)
	assertNoTokens(t, "stderr", stderr.String())
	// The status lines, plain since stderr is not a terminal.
	if want := "The browser is back. Exchanging the code for tokens...\nVerifying the ID token...\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

func TestDemoCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"-auto"}, strings.NewReader(""), &stdout, &stderr); code != 130 {
		t.Fatalf("exit %d, want 130; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "cancelled") {
		t.Errorf("stderr = %q", stderr.String())
	}
}

func TestDemoBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-timeout", "soon"}, {"-timeout", "0s"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: stdout = %q", args, stdout.String())
		}
	}
}

// desktop makes the test run as on a desktop session, where the demo opens
// a browser.
func desktop(t *testing.T) {
	for _, v := range []string{"SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "BROWSER"} {
		t.Setenv(v, "")
	}
	t.Setenv("DISPLAY", ":0")
}

// TestRunNoBrowserPrintsURL: with no browser on the machine, the demo's
// stderr tells the user which URL to open, and the flow keeps waiting
// until its timeout.
func TestRunNoBrowserPrintsURL(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no xdg-open, open or rundll32
	var stdout, stderr bytes.Buffer
	desktop(t)
	code := run(context.Background(), []string{"-timeout", "300ms"}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (timeout); stderr:\n%s", code, &stderr)
	}
	for _, want := range []string{"Could not open a browser", "To sign in, open this address in a browser", "/authorize?",
		"waiting… (times out in 0s)", "no answer from the browser within 300ms"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, &stderr)
		}
	}
}

// TestDemoOverSSH runs the demo as in an SSH session without a display:
// it opens no browser, prints the short URL and the ssh -L command with its
// real port, and a sign-in completes either by pasting the address the
// browser ended on into its standard input, or, with nothing to read on
// standard input, through the tunnel.
func TestDemoOverSSH(t *testing.T) {
	for _, paste := range []bool{true, false} {
		t.Run(map[bool]string{true: "paste", false: "tunnel"}[paste], func(t *testing.T) {
			t.Setenv("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22")
			for _, v := range []string{"DISPLAY", "WAYLAND_DISPLAY", "BROWSER"} {
				t.Setenv(v, "")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stdinR, stdinW := io.Pipe()
			defer stdinW.Close()
			if !paste {
				stdinW.Close() // no standard input: Ctrl-D at once
			}
			var stdout bytes.Buffer
			var stderr lockedBuffer
			code := make(chan int, 1)
			go func() { code <- run(ctx, []string{"-timeout", "20s"}, stdinR, &stdout, &stderr) }()

			text := waitFor(t, &stderr, "Waiting for the sign-in")
			m := regexp.MustCompile(`(?m)^    (http://127\.0\.0\.1:(\d+)/)\n`).FindStringSubmatch(text)
			full := regexp.MustCompile(`(?m)^    (http://127\.0\.0\.1:\d+/authorize\?\S+)$`).FindStringSubmatch(text)
			if m == nil || full == nil || !strings.Contains(text, "ssh -L "+m[2]+":127.0.0.1:"+m[2]+" HOST") || !strings.Contains(text, "SSH_CONNECTION") {
				t.Fatalf("stderr:\n%s", text)
			}
			if !strings.Contains(text, "Paste that whole address here") {
				t.Errorf("paste-back not offered:\n%s", text)
			}
			landing, err := loopauthtest.LandingAddress(ctx, full[1])
			if err != nil {
				t.Fatal(err)
			}
			if paste {
				_, err = io.WriteString(stdinW, landing+"\n")
			} else {
				var resp *http.Response
				if resp, err = http.Get(landing); err == nil { // the browser at the tunnel's end
					resp.Body.Close()
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if c := <-code; c != 0 || !strings.Contains(stdout.String(), "Signed in.") {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", c, &stdout, &stderr)
			}
			want := map[bool]string{true: "Got the pasted address.", false: "The browser is back."}[paste]
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, &stderr)
			}
		})
	}
}

// waitFor polls b until it contains s, and returns what it holds then.
func waitFor(t *testing.T, b *lockedBuffer, s string) string {
	t.Helper()
	for i := 0; i < 500; i++ {
		if out := b.String(); strings.Contains(out, s) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q within 5s:\n%s", s, b)
	return ""
}

// lockedBuffer is a bytes.Buffer safe for the demo's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
