package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRefreshDemoStates: the first command signs in, the next ones use the
// stored set while it is far from expiry.
func TestRefreshDemoStates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"-iterations", "3", "-interval", "10ms", "-lifetime", "10s", "-threshold", "3s"}
	if code := run(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	lines := regexp.MustCompile(`(?m)^\[ ?\d+/3\] previous token expires in \S+ +(.*); now expires in`).FindAllStringSubmatch(out, -1)
	if len(lines) != 3 {
		t.Fatalf("%d commands printed, want 3:\n%s", len(lines), out)
	}
	want := []string{"signed in (browser)", "stored tokens used as they are", "stored tokens used as they are"}
	for i, l := range lines {
		if l[1] != want[i] {
			t.Errorf("command %d: %q, want %q", i+1, l[1], want[i])
		}
	}
	// Tokens are 43 base64url characters; the first line names a
	// temporary directory, which is long too.
	_, rest, _ := strings.Cut(out, "\n")
	if regexp.MustCompile(`[A-Za-z0-9_-]{32,}`).MatchString(rest + stderr.String()) {
		t.Errorf("output looks like it carries a token:\n%s", out)
	}
}

// TestRefreshDemoRotation refreshes at every command: each refresh must
// use the newest saved refresh token, or the provider's reuse detection
// fails it.
func TestRefreshDemoRotation(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"-iterations", "4", "-interval", "10ms", "-lifetime", "1s", "-threshold", "5s"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if n := strings.Count(stdout.String(), "refreshed, rotated refresh token saved"); n != 3 {
		t.Errorf("%d refreshes, want 3:\n%s", n, stdout.String())
	}
}

func TestRefreshDemoCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"-interval", "1h"}, &stdout, &stderr); code != 130 {
		t.Fatalf("exit %d, want 130; stderr:\n%s", code, stderr.String())
	}
}

func TestRefreshDemoBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-iterations", "0"}, {"-interval", "0s"}, {"-lifetime", "500ms"}, {"-threshold", "-1s"}, {"-x"}, {"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
