package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRefreshDemoFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"-iterations", "3", "-interval", "200ms", "-lifetime", "2s", "-threshold", "1500ms"}
	if code := run(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	checks := regexp.MustCompile(`(?m)^\[ ?\d+/3\] expires in \S+ +(refreshed|not needed)`).FindAllStringSubmatch(out, -1)
	if len(checks) != 3 {
		t.Fatalf("%d checks printed, want 3:\n%s", len(checks), out)
	}
	// Checks come 200ms apart on a 2s token with a 1.5s threshold: the
	// first is not due, the third (at least 600ms in) is.
	if checks[0][1] != "not needed" || checks[2][1] != "refreshed" {
		t.Errorf("unexpected refresh pattern:\n%s", out)
	}
	if !strings.Contains(out, "refreshed, now expires in 2s") {
		t.Errorf("no fresh token after the refresh:\n%s", out)
	}
	if regexp.MustCompile(`[A-Za-z0-9_-]{32,}`).MatchString(out + stderr.String()) {
		t.Errorf("output looks like it carries a token:\n%s", out)
	}
}

// TestRefreshDemoRotation refreshes at every check: each refresh must use
// the newest refresh token, or the provider's reuse detection fails it.
func TestRefreshDemoRotation(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"-iterations", "3", "-interval", "10ms", "-lifetime", "1s", "-threshold", "5s"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if n := strings.Count(stdout.String(), "refreshed"); n != 3 {
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
