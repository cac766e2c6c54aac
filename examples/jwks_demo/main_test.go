package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestJWKSDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", code, &stderr, &stdout)
	}
	out := stdout.String()
	for _, want := range []string{
		"1. Sign in, checking the ID token against the provider's own JWKS\n" +
			`   ok: signature verified; subject "ada-1815"`,
		"2. Sign in again, checking against the OTHER provider's JWKS\n   refused: ",
		`a token the provider signed: signature valid, payload sub "ada-1815"`,
		`(sub "mallory"): the signature does not verify (ErrInvalidSignature)`,
		"the set parsed in step 3 is a snapshot: it has no key with the new kid (ErrNoUsableKey)",
		"the RemoteJWKSValidator of step 1 fetched the JWKS again for the unknown kid: verified",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	// The other provider's key has another kid, so step 2 fails on the key
	// lookup; a signature failure would also be a correct refusal.
	if !strings.Contains(out, "(ErrNoUsableKey)\n\n3.") && !strings.Contains(out, "(ErrInvalidSignature)\n\n3.") {
		t.Errorf("step 2 names no sentinel:\n%s", out)
	}
	// Nothing like a token: no JWT segment, no long base64url run.
	if regexp.MustCompile(`eyJ|[A-Za-z0-9_-]{32,}`).MatchString(out + stderr.String()) {
		t.Errorf("output looks like it carries a token:\n%s\n%s", out, &stderr)
	}
	if stderr.Len() != 0 {
		t.Errorf("unexpected stderr:\n%s", &stderr)
	}
}

func TestJWKSDemoArgs(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-x"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if stdout.Len() != 0 || !strings.Contains(stderr.String(), "usage:") {
		t.Errorf("stdout %q, stderr %q", &stdout, &stderr)
	}
}

func TestJWKSDemoCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, nil, &stdout, &stderr); code != 130 {
		t.Fatalf("exit %d, want 130; stderr:\n%s", code, &stderr)
	}
	if !strings.Contains(stderr.String(), "cancelled") {
		t.Errorf("stderr = %q", &stderr)
	}
}
