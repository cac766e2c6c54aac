package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// envMap returns an env lookup over m.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestAuthMissingEnv(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := envMap(map[string]string{"LOOPAUTH_AUTH_URL": "https://example.com/authorize"})
	if code := run(context.Background(), nil, env, nil, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	msg := stderr.String()
	for _, want := range []string{"LOOPAUTH_CLIENT_ID", "LOOPAUTH_TOKEN_URL", "usage:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(strings.SplitN(msg, "\n", 2)[0], "LOOPAUTH_AUTH_URL") {
		t.Errorf("LOOPAUTH_AUTH_URL is set but reported missing:\n%s", msg)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q", stdout.String())
	}
}

func TestAuthBadSettings(t *testing.T) {
	base := map[string]string{
		"LOOPAUTH_CLIENT_ID": "cli",
		"LOOPAUTH_AUTH_URL":  "https://example.com/authorize",
		"LOOPAUTH_TOKEN_URL": "https://example.com/token",
		"LOOPAUTH_SCOPES":    "email",
	}
	for _, tc := range []struct{ name, key, value, want string }{
		{"openid", "LOOPAUTH_SCOPES", "email, openid", `"openid"`},
		{"port", "LOOPAUTH_PORT", "80000", "LOOPAUTH_PORT"},
		{"http endpoint", "LOOPAUTH_TOKEN_URL", "http://example.com/token", "TokenURL"},
		{"bad scope", "LOOPAUTH_SCOPES", `email,"x"`, "scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range base {
				m[k] = v
			}
			m[tc.key] = tc.value
			opener := func(context.Context, string) error {
				t.Error("a browser was opened")
				return nil
			}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), nil, envMap(m), opener, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
		})
	}
}

func TestAuthArgs(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"x"}, envMap(nil), nil, &stdout, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if code := run(context.Background(), []string{"-h"}, envMap(nil), nil, &stdout, &stderr); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
}

func TestAuthFlow(t *testing.T) {
	const secret = "confidential-client-secret-value-0123456789"
	var mu sync.Mutex
	var issued []string
	p := loopauthtest.NewProvider(t,
		loopauthtest.WithClient("cli", secret),
		loopauthtest.WithTokenResponse(func(_ string, resp map[string]any) {
			mu.Lock()
			defer mu.Unlock()
			for _, k := range []string{"access_token", "refresh_token"} {
				if s, ok := resp[k].(string); ok {
					issued = append(issued, s)
				}
			}
		}))
	env := envMap(map[string]string{
		"LOOPAUTH_CLIENT_ID":     "cli",
		"LOOPAUTH_CLIENT_SECRET": secret,
		"LOOPAUTH_AUTH_URL":      p.AuthURL(),
		"LOOPAUTH_TOKEN_URL":     p.TokenURL(),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, nil, env, p.Browser(), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	out, errOut := stdout.String(), stderr.String()
	for _, want := range []string{
		"Signed in.",
		"scopes:        email profile", // the default
		"refresh token: yes",
		"token type:    Bearer",
		"access token:  43 characters (not shown)",
		"(in 3600s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "Opening your browser at "+p.AuthURL()+" to sign in") {
		t.Errorf("stderr:\n%s", errOut)
	}

	mu.Lock()
	secrets := append([]string{secret}, issued...)
	mu.Unlock()
	if len(secrets) != 3 {
		t.Fatalf("captured %d issued tokens, want 2", len(secrets)-1)
	}
	for _, req := range p.TokenRequests() {
		secrets = append(secrets, req.Get("code"), req.Get("code_verifier"))
	}
	for _, q := range p.AuthorizeRequests() {
		secrets = append(secrets, q.Get("state"), q.Get("code_challenge"))
	}
	for _, s := range secrets {
		if s == "" {
			t.Fatal("a recorded secret is empty")
		}
		if strings.Contains(out, s) || strings.Contains(errOut, s) {
			t.Errorf("output contains a secret value")
		}
	}
}

func TestAuthCancelled(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	env := envMap(map[string]string{
		"LOOPAUTH_CLIENT_ID": "cli",
		"LOOPAUTH_AUTH_URL":  p.AuthURL(),
		"LOOPAUTH_TOKEN_URL": p.TokenURL(),
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The user presses Ctrl+C while the browser is open.
	opener := func(ctx context.Context, _ string) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	var stdout, stderr bytes.Buffer
	if code := run(ctx, nil, env, opener, &stdout, &stderr); code != 130 {
		t.Fatalf("exit %d, want 130; stderr:\n%s", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q", stdout.String())
	}
}

func TestParseScopes(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "email profile",
		" read:user ":        "read:user",
		"a,,b , c,":          "a b c",
		",":                  "",
		"offline_access,foo": "offline_access foo",
	} {
		var got []string
		for _, s := range parseScopes(in, "email,profile") {
			got = append(got, string(s))
		}
		if g := strings.Join(got, " "); g != want {
			t.Errorf("parseScopes(%q) = %q, want %q", in, g, want)
		}
	}
}
