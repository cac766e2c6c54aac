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

// noBrowser fails the test if the flow gets as far as opening a browser.
func noBrowser(t *testing.T) func(context.Context, string) error {
	return func(context.Context, string) error {
		t.Error("a browser was opened")
		return nil
	}
}

func TestMissingEnv(t *testing.T) {
	for _, tc := range []struct {
		env           map[string]string
		missing, sets string
	}{
		{nil, "LOOPAUTH_CLIENT_ID, LOOPAUTH_ISSUER_URL", ""},
		{map[string]string{"LOOPAUTH_ISSUER_URL": "https://accounts.google.com"}, "LOOPAUTH_CLIENT_ID\n", "LOOPAUTH_ISSUER_URL"},
		{map[string]string{"LOOPAUTH_CLIENT_ID": "cli"}, "LOOPAUTH_ISSUER_URL\n", "LOOPAUTH_CLIENT_ID"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), envMap(tc.env), noBrowser(t), &stdout, &stderr); code != 2 {
			t.Fatalf("%v: exit %d, want 2", tc.env, code)
		}
		first, _, _ := strings.Cut(stderr.String(), "usage:")
		if !strings.Contains(first, "missing required environment variable(s): "+tc.missing) {
			t.Errorf("%v: stderr:\n%s", tc.env, &stderr)
		}
		if tc.sets != "" && strings.Contains(first, tc.sets) {
			t.Errorf("%v: %s is set but reported missing:\n%s", tc.env, tc.sets, &stderr)
		}
		if stdout.Len() != 0 {
			t.Errorf("stdout = %q", &stdout)
		}
	}
}

func TestBadSettings(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	for _, tc := range []struct {
		name, key, value string
		code             int
		want             []string
	}{
		{"port", "LOOPAUTH_PORT", "80000", 2, []string{"LOOPAUTH_PORT"}},
		{"bad scope", "LOOPAUTH_SCOPES", `email,"x"`, 2, []string{"scope"}},
		{"not a URL", "LOOPAUTH_ISSUER_URL", "accounts.google.com", 1, []string{"LOOPAUTH_ISSUER_URL: ", "issuer URL", "https://accounts.google.com"}},
		{"plain http", "LOOPAUTH_ISSUER_URL", "http://op.example", 1, []string{"LOOPAUTH_ISSUER_URL: ", "issuer URL"}},
		{"query", "LOOPAUTH_ISSUER_URL", "https://op.example/?tenant=x", 1, []string{"LOOPAUTH_ISSUER_URL: ", "query"}},
		{"no provider there", "LOOPAUTH_ISSUER_URL", p.Issuer() + "/nope", 1, []string{"LOOPAUTH_ISSUER_URL: ", "HTTP 404", "check the issuer URL"}},
		{"trailing slash on a path", "LOOPAUTH_ISSUER_URL", p.Issuer() + "/nope/", 1, []string{"HTTP 404"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{"LOOPAUTH_CLIENT_ID": "cli", "LOOPAUTH_ISSUER_URL": p.Issuer(), tc.key: tc.value}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), envMap(m), noBrowser(t), &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, &stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, &stderr)
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q", &stdout)
			}
		})
	}
}

func TestFlow(t *testing.T) {
	const secret = "confidential-client-secret-value-0123456789"
	var mu sync.Mutex
	var issued []string
	p := loopauthtest.NewProvider(t,
		loopauthtest.WithClient("cli", secret),
		loopauthtest.WithIssParameter(),
		loopauthtest.WithUser(loopauthtest.User{Subject: "grace-1906", Email: "grace@example.com", Name: "Grace Hopper"}),
		loopauthtest.WithTokenResponse(func(_ string, resp map[string]any) {
			mu.Lock()
			defer mu.Unlock()
			for _, k := range []string{"access_token", "refresh_token", "id_token"} {
				if s, ok := resp[k].(string); ok {
					issued = append(issued, s)
				}
			}
		}))
	env := envMap(map[string]string{
		"LOOPAUTH_CLIENT_ID":     "cli",
		"LOOPAUTH_CLIENT_SECRET": secret,
		"LOOPAUTH_ISSUER_URL":    p.Issuer(),
		"LOOPAUTH_SCOPES":        "openid, email,offline_access,openid",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, env, p.Browser(), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, &stderr)
	}
	out, errOut := stdout.String(), stderr.String()
	for _, want := range []string{
		"Signed in; the ID token's signature was verified against the provider's JWKS.",
		"subject:       grace-1906\n",
		"email:         grace@example.com (verified: yes)\n",
		"name:          Grace Hopper\n",
		"issuer:        " + p.Issuer() + "\n",
		"scopes:        openid email offline_access\n",
		"refresh token: yes",
		"token type:    Bearer",
		"access token:  43 characters (not shown)",
		"(in 3600s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{`note: "openid" is always requested`, "Opening your browser at " + p.AuthURL() + " to sign in"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	reqs := p.AuthorizeRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d authorize requests", len(reqs))
	}
	if scope := reqs[0].Get("scope"); scope != "openid email offline_access" || strings.Count(scope, "openid") != 1 {
		t.Errorf("scope sent = %q, want openid once", scope)
	}

	mu.Lock()
	secrets := append([]string{secret}, issued...)
	mu.Unlock()
	if len(secrets) != 4 {
		t.Fatalf("captured %d issued tokens, want 3 (access, refresh, ID)", len(secrets)-1)
	}
	for _, req := range p.TokenRequests() {
		secrets = append(secrets, req.Get("code"), req.Get("code_verifier"))
	}
	secrets = append(secrets, reqs[0].Get("state"), reqs[0].Get("code_challenge"), reqs[0].Get("nonce"))
	for _, s := range secrets {
		if s == "" {
			t.Fatal("a recorded secret is empty")
		}
		if strings.Contains(out, s) || strings.Contains(errOut, s) {
			t.Errorf("output contains a secret value")
		}
	}
	// No part of the ID token either (JWT segments start with eyJ).
	if strings.Contains(out+errOut, "eyJ") {
		t.Errorf("output contains something like a JWT:\n%s\n%s", out, errOut)
	}
}

// TestWrongIssuer: a provider whose discovery document names another
// issuer is refused before any browser is opened.
func TestWrongIssuer(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithDiscoveryIssuer("https://evil.example"))
	env := envMap(map[string]string{"LOOPAUTH_CLIENT_ID": "cli", "LOOPAUTH_ISSUER_URL": p.Issuer()})
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), env, noBrowser(t), &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, &stderr)
	}
	if !strings.Contains(stderr.String(), "https://evil.example") {
		t.Errorf("stderr:\n%s", &stderr)
	}
}

func TestCancelled(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	env := envMap(map[string]string{"LOOPAUTH_CLIENT_ID": "cli", "LOOPAUTH_ISSUER_URL": p.Issuer()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The user presses Ctrl+C while the browser is open.
	opener := func(ctx context.Context, _ string) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	var stdout, stderr bytes.Buffer
	if code := run(ctx, env, opener, &stdout, &stderr); code != 130 {
		t.Fatalf("exit %d, want 130; stderr:\n%s", code, &stderr)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q", &stdout)
	}
	// Cancelled before discovery, too.
	stderr.Reset()
	if code := run(ctx, env, noBrowser(t), &stdout, &stderr); code != 130 {
		t.Fatalf("cancelled before discovery: exit %d, want 130; stderr:\n%s", code, &stderr)
	}
}

func TestParseScopes(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "email profile",
		"openid":                "",
		" openid , email,,":     "email",
		"OpenID,offline_access": "OpenID offline_access", // scopes are case-sensitive
	} {
		scopes, hadOpenID := parseScopes(in)
		var got []string
		for _, s := range scopes {
			got = append(got, string(s))
		}
		if g := strings.Join(got, " "); g != want || hadOpenID != strings.Contains(in, "openid") {
			t.Errorf("parseScopes(%q) = %q, %v; want %q", in, g, hadOpenID, want)
		}
	}
}
