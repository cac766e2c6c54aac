package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
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
	if code := run(ctx, []string{"-auto", "-timeout", "10s"}, &stdout, &stderr); code != 0 {
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
	if stderr.Len() != 0 {
		t.Errorf("unexpected stderr:\n%s", stderr.String())
	}
}

func TestDemoCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"-auto"}, &stdout, &stderr); code != 130 {
		t.Fatalf("exit %d, want 130; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "cancelled") {
		t.Errorf("stderr = %q", stderr.String())
	}
}

func TestDemoBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-timeout", "soon"}, {"-timeout", "0s"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: stdout = %q", args, stdout.String())
		}
	}
}

// TestRunNoBrowserPrintsURL: with no browser on the machine, the demo's
// stderr tells the user which URL to open, and the flow keeps waiting
// until its timeout.
func TestRunNoBrowserPrintsURL(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no xdg-open, open or rundll32
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-timeout", "300ms"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (timeout); stderr:\n%s", code, &stderr)
	}
	for _, want := range []string{"Could not open a browser", "Open this URL in your browser", "/authorize?", "no answer from the browser within 300ms"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, &stderr)
		}
	}
}
