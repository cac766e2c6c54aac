package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
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

// offline is a config whose endpoints must never be reached.
var offline = config{
	authURL:      "https://auth.example/authorize",
	tokenURL:     "https://auth.example/oauth/token",
	resourcesURL: "https://api.example/oauth/token/accessible-resources",
}

func TestJiraMissingEnv(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := envMap(map[string]string{"LOOPAUTH_CLIENT_SECRET": "s", "LOOPAUTH_PORT": "8080"})
	if code := offline.run(context.Background(), nil, env, nil, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{"missing required environment variable(s): LOOPAUTH_CLIENT_ID\n", "usage:"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q", stdout.String())
	}
}

func TestJiraBadSettings(t *testing.T) {
	for _, tc := range []struct{ name, key, value, want string }{
		{"openid", "LOOPAUTH_SCOPES", "read:jira-work,openid", `"openid"`},
		{"bad scope", "LOOPAUTH_SCOPES", `read:jira-work,"x"`, "scope"},
		{"port range", "LOOPAUTH_PORT", "65536", "LOOPAUTH_PORT"},
		{"port zero", "LOOPAUTH_PORT", "0", "LOOPAUTH_PORT"},
		{"port text", "LOOPAUTH_PORT", "eighty", "LOOPAUTH_PORT"},
		{"client id", "LOOPAUTH_CLIENT_ID", "two words", "ClientID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{
				"LOOPAUTH_CLIENT_ID":     "cli",
				"LOOPAUTH_CLIENT_SECRET": "s3cr3t",
				"LOOPAUTH_PORT":          "8080",
				tc.key:                   tc.value,
			}
			opener := func(context.Context, string) error {
				t.Error("a browser was opened")
				return nil
			}
			var stdout, stderr bytes.Buffer
			if code := offline.run(context.Background(), nil, envMap(m), opener, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
			if strings.Contains(stderr.String(), "s3cr3t") {
				t.Error("stderr shows the client secret")
			}
		})
	}
}

func TestJiraArgs(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"x"}, envMap(nil), nil, &stdout, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if code := run(context.Background(), []string{"-h"}, envMap(nil), nil, &stdout, &stderr); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// resourcesServer serves an accessible-resources answer to requests that
// carry the right Bearer token, which token returns once it is known.
func resourcesServer(t *testing.T, token func() string, status int, contentType, body string) (*httptest.Server, func() int) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != "/oauth/token/accessible-resources" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+token() || token() == "" {
			t.Error("accessible-resources was called without the issued access token")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, func() int {
		mu.Lock()
		defer mu.Unlock()
		return calls
	}
}

const sitesJSON = `[
 {"id":"1324a887-45db-1bf4-1e99-ef0ff456d421","url":"https://your-domain.atlassian.net","name":"your-domain","scopes":["read:jira-work"],"avatarUrl":"https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/flag.png"},
 {"id":"../../evil","url":"https://other.atlassian.net\u001b[2J","name":"Other \u202esite\u0007"}
]`

// jiraProvider is a loopauthtest provider that records the tokens it
// issues.
func jiraProvider(t *testing.T, secret string) (*loopauthtest.Provider, func() []string) {
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
	return p, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), issued...)
	}
}

func TestJiraFlow(t *testing.T) {
	const secret = "atlassian-client-secret-0123456789abcdef"
	p, issued := jiraProvider(t, secret)
	accessToken := func() string {
		if toks := issued(); len(toks) > 0 {
			return toks[0]
		}
		return ""
	}
	srv, calls := resourcesServer(t, accessToken, http.StatusOK, "application/json; charset=UTF-8", sitesJSON)
	cfg := config{authURL: p.AuthURL(), tokenURL: p.TokenURL(), resourcesURL: srv.URL + "/oauth/token/accessible-resources"}
	port := freePort(t)
	env := envMap(map[string]string{
		"LOOPAUTH_CLIENT_ID":     "cli",
		"LOOPAUTH_CLIENT_SECRET": secret,
		"LOOPAUTH_PORT":          strconv.Itoa(port),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := cfg.run(ctx, nil, env, p.Browser(), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	out, errOut := stdout.String(), stderr.String()
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	for _, want := range []string{
		"Signed in to Atlassian.",
		"scopes:        offline_access read:jira-user read:jira-work", // the default
		"refresh token: yes",
		"access token:  43 characters (not shown)",
		"(in 3600s)",
		"Sites this token can reach (2):",
		"  your-domain\n    url:  https://your-domain.atlassian.net\n" +
			"    api:  https://api.atlassian.com/ex/jira/1324a887-45db-1bf4-1e99-ef0ff456d421/rest/api/3\n",
		"  Other \uFFFDsite\uFFFD\n    url:  https://other.atlassian.net\uFFFD[2J\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "evil") {
		t.Errorf("a site ID that is not a UUID made an API URL:\n%s", out)
	}
	if strings.Contains(errOut, "LOOPAUTH_PORT is not set") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if n := calls(); n != 1 {
		t.Errorf("accessible-resources called %d times, want 1", n)
	}

	reqs := p.AuthorizeRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d authorize requests, want 1", len(reqs))
	}
	q := reqs[0]
	for k, want := range map[string]string{
		"audience":     "api.atlassian.com",
		"prompt":       "consent",
		"redirect_uri": "http://127.0.0.1:" + strconv.Itoa(port) + "/callback",
		"scope":        "offline_access read:jira-user read:jira-work",
	} {
		if got := q[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if n := len(p.TokenRequests()); n != 1 {
		t.Errorf("%d token requests, want 1 (the stored token is reused)", n)
	}

	secrets := append([]string{secret}, issued()...)
	if len(secrets) != 3 {
		t.Fatalf("captured %d issued tokens, want 2", len(secrets)-1)
	}
	for _, req := range p.TokenRequests() {
		secrets = append(secrets, req.Get("code"), req.Get("code_verifier"))
	}
	secrets = append(secrets, q.Get("state"), q.Get("code_challenge"))
	for _, s := range secrets {
		if s == "" {
			t.Fatal("a recorded secret is empty")
		}
		if strings.Contains(out, s) || strings.Contains(errOut, s) {
			t.Errorf("output contains a secret value")
		}
	}
}

func TestJiraNoPortNote(t *testing.T) {
	p, issued := jiraProvider(t, "")
	srv, _ := resourcesServer(t, func() string {
		if toks := issued(); len(toks) > 0 {
			return toks[0]
		}
		return ""
	}, http.StatusOK, "application/json", `[]`)
	cfg := config{authURL: p.AuthURL(), tokenURL: p.TokenURL(), resourcesURL: srv.URL + "/oauth/token/accessible-resources"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := cfg.run(ctx, nil, envMap(map[string]string{"LOOPAUTH_CLIENT_ID": "cli"}), p.Browser(), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "LOOPAUTH_PORT is not set") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "No sites") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	if _, ok := p.TokenRequests()[0]["client_secret"]; ok {
		t.Error("a client secret was sent without LOOPAUTH_CLIENT_SECRET")
	}
}

func TestJiraResourcesFailures(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		want                    string
	}{
		{"server error", "application/json", `{"message":"down"}`, http.StatusInternalServerError, "500 Internal Server Error"},
		{"html", "text/html", `<html>sign in</html>`, http.StatusOK, "not application/json"},
		{"object", "application/json", `{"sites":[]}`, http.StatusOK, "not a JSON array"},
		{"null", "application/json", `null`, http.StatusOK, "not a JSON array"},
		{"truncated", "application/json", sitesJSON[:40], http.StatusOK, "not a JSON array"},
		{"trailing", "application/json", `[] []`, http.StatusOK, "data follows"},
		{"nameless", "application/json", `[{"id":"1","url":"https://x.atlassian.net"}]`, http.StatusOK, "site 1 has no name"},
		{"too large", "application/json", `[` + strings.Repeat(" ", maxResourcesBytes) + `]`, http.StatusOK, "larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, issued := jiraProvider(t, "")
			srv, _ := resourcesServer(t, func() string {
				if toks := issued(); len(toks) > 0 {
					return toks[0]
				}
				return ""
			}, tc.status, tc.contentType, tc.body)
			cfg := config{authURL: p.AuthURL(), tokenURL: p.TokenURL(), resourcesURL: srv.URL + "/oauth/token/accessible-resources"}
			env := envMap(map[string]string{"LOOPAUTH_CLIENT_ID": "cli", "LOOPAUTH_PORT": strconv.Itoa(freePort(t))})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			if code := cfg.run(ctx, nil, env, p.Browser(), &stdout, &stderr); code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
			if strings.Contains(stderr.String(), "sign in</html>") || strings.Contains(stderr.String(), "down") {
				t.Errorf("stderr quotes the answer:\n%s", stderr.String())
			}
			for _, s := range issued() {
				if strings.Contains(stdout.String(), s) || strings.Contains(stderr.String(), s) {
					t.Error("output contains a token")
				}
			}
		})
	}
}

func TestJiraCancelled(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	cfg := config{authURL: p.AuthURL(), tokenURL: p.TokenURL(), resourcesURL: "http://127.0.0.1:1/never"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opener := func(ctx context.Context, _ string) error {
		cancel() // the user presses Ctrl+C while the browser is open
		<-ctx.Done()
		return ctx.Err()
	}
	var stdout, stderr bytes.Buffer
	if code := cfg.run(ctx, nil, envMap(map[string]string{"LOOPAUTH_CLIENT_ID": "cli"}), opener, &stdout, &stderr); code != 130 {
		t.Fatalf("exit %d, want 130; stderr:\n%s", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q", stdout.String())
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain site":              "plain site",
		"a\x1b[31mb":              "a\uFFFD[31mb",
		"rtl\u202eoverride\u200b": "rtl\uFFFDoverride\uFFFD",
		"bad\xffutf8":             "bad\uFFFDutf8",
		strings.Repeat("x", 300):  strings.Repeat("x", 200) + "...",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}
