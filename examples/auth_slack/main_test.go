package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loopauth/loopauth"
	"github.com/loopauth/loopauth/loopauthtest"
)

// envMap returns an env lookup over m.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// testCertificate makes a CA and a leaf it signed for 127.0.0.1, ::1 and
// localhost, valid for 30 days, and returns the leaf and its key in PEM and
// a pool holding the CA, for the test's user agent.
func testCertificate(t *testing.T) (certPEM, keyPEM []byte, roots *x509.CertPool) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "auth_slack test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(ca)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), roots
}

// trustingBrowser is a user agent that trusts only roots: it GETs the
// authorization URL and follows the provider's redirect to the HTTPS
// callback, verifying its certificate as a browser would.
func trustingBrowser(roots *x509.CertPool) loopauth.BrowserOpener {
	return func(ctx context.Context, authURL string) error {
		tr := &http.Transport{
			Proxy:             nil,
			TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
		}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		if resp.TLS == nil {
			return fmt.Errorf("the callback page was not served over HTTPS")
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("callback page: %s", resp.Status)
		}
		return nil
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

// offline is a config that must never get as far as a certificate.
func offline(t *testing.T) config {
	return config{
		authURL:  "https://slack.example/authorize",
		tokenURL: "https://slack.example/token",
		certificate: func(string) (*loopauth.TLSCertificate, error) {
			t.Error("a certificate was asked for")
			return nil, errors.New("no")
		},
	}
}

func TestSlackMissingEnv(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := envMap(map[string]string{"LOOPAUTH_CLIENT_SECRET": "s"})
	if code := offline(t).run(context.Background(), nil, env, nil, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	first := strings.SplitN(stderr.String(), "\n", 2)[0]
	for _, want := range []string{"LOOPAUTH_CLIENT_ID", "LOOPAUTH_TLS_DIR"} {
		if !strings.Contains(first, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(first, "LOOPAUTH_CLIENT_SECRET") {
		t.Errorf("LOOPAUTH_CLIENT_SECRET is set but reported missing:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "usage:") || stdout.Len() != 0 {
		t.Errorf("stdout %q, stderr:\n%s", stdout.String(), stderr.String())
	}
}

func TestSlackBadSettings(t *testing.T) {
	for _, tc := range []struct{ name, key, value, want string }{
		{"quote in scope", "LOOPAUTH_SCOPES", `channels:read,"x"`, "LOOPAUTH_SCOPES"},
		{"space in scope", "LOOPAUTH_SCOPES", "channels:read users read", "LOOPAUTH_SCOPES"},
		{"no scope", "LOOPAUTH_SCOPES", " , ", "LOOPAUTH_SCOPES"},
		{"port range", "LOOPAUTH_PORT", "70000", "LOOPAUTH_PORT"},
		{"port zero", "LOOPAUTH_PORT", "0", "LOOPAUTH_PORT"},
		{"port text", "LOOPAUTH_PORT", "8443/tcp", "LOOPAUTH_PORT"},
		{"client id", "LOOPAUTH_CLIENT_ID", " ", "ClientID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{
				"LOOPAUTH_CLIENT_ID":     "123.456",
				"LOOPAUTH_CLIENT_SECRET": "s3cr3t",
				"LOOPAUTH_TLS_DIR":       t.TempDir(),
				tc.key:                   tc.value,
			}
			opener := func(context.Context, string) error {
				t.Error("a browser was opened")
				return nil
			}
			var stdout, stderr bytes.Buffer
			if code := offline(t).run(context.Background(), nil, envMap(m), opener, &stdout, &stderr); code != 2 {
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

func TestSlackArgs(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"x"}, envMap(nil), nil, &stdout, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if code := run(context.Background(), []string{"--help"}, envMap(nil), nil, &stdout, &stderr); code != 0 {
		t.Errorf("--help: exit %d, want 0", code)
	}
}

func TestUserScopes(t *testing.T) {
	for in, want := range map[string]string{
		"":                            defaultScopes,
		" users:read ":                "users:read",
		"a,,b , c,":                   "a,b,c",
		"chat:write,users:read.email": "chat:write,users:read.email",
	} {
		got, err := userScopes(in)
		if err != nil || got != want {
			t.Errorf("userScopes(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{",", "a b", "a,é", `a\b`, "a,\x00"} {
		if got, err := userScopes(in); err == nil {
			t.Errorf("userScopes(%q) = %q, want an error", in, got)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// sameFields compares token response fields, ExpiresIn by value.
func sameFields(a, b loopauth.TokenResponseFields) bool {
	if (a.ExpiresIn == nil) != (b.ExpiresIn == nil) || a.ExpiresIn != nil && *a.ExpiresIn != *b.ExpiresIn {
		return false
	}
	a.ExpiresIn, b.ExpiresIn = nil, nil
	return a == b
}

// dump shows every field: the fields' own String redacts the tokens.
func dump(f loopauth.TokenResponseFields) string {
	exp := "nil"
	if f.ExpiresIn != nil {
		exp = strconv.FormatInt(*f.ExpiresIn, 10)
	}
	return fmt.Sprintf("{%q %q %q %s %q %q}", f.AccessToken, f.TokenType, f.RefreshToken, exp, f.IDToken, f.Scope)
}

func TestParseSlackToken(t *testing.T) {
	const tok = "xoxp-not-a-real-token-0123456789"
	for _, tc := range []struct {
		name string
		body string
		want loopauth.TokenResponseFields
		err  string // a part of the error; "" means success
	}{
		{
			name: "valid",
			body: `{"ok":true,"app_id":"A1","authed_user":{"id":"U1","scope":"channels:read,groups:read","access_token":"` + tok + `","token_type":"user","refresh_token":"xoxe-1-r","expires_in":43200},"team":{"id":"T1"}}`,
			want: loopauth.TokenResponseFields{AccessToken: tok, TokenType: "Bearer", RefreshToken: "xoxe-1-r", ExpiresIn: ptr(int64(43200)), Scope: "channels:read groups:read"},
		},
		{
			name: "without rotation",
			body: `{"ok":true,"authed_user":{"id":"U1","scope":"channels:read","access_token":"` + tok + `","token_type":"user"}}`,
			want: loopauth.TokenResponseFields{AccessToken: tok, TokenType: "Bearer", Scope: "channels:read"},
		},
		{
			name: "expires_in as a string",
			body: `{"ok":true,"authed_user":{"access_token":"` + tok + `","expires_in":"3600"}}`,
			want: loopauth.TokenResponseFields{AccessToken: tok, TokenType: "Bearer", ExpiresIn: ptr(int64(3600))},
		},
		{name: "ok false", body: `{"ok":false,"error":"invalid_code"}`, err: `"invalid_code"`},
		{name: "ok false without a code", body: `{"ok":false}`, err: "(none given)"},
		{name: "ok false, hostile code", body: `{"ok":false,"error":"bad\u001b[2J\u202ecode"}`, err: `"bad??2J?code"`},
		{name: "ok false, long code", body: `{"ok":false,"error":"` + strings.Repeat("a", 100) + `"}`, err: `"` + strings.Repeat("a", 64) + `..."`},
		{name: "no ok", body: `{"authed_user":{"access_token":"` + tok + `"}}`, err: `"ok"`},
		{name: "ok not a boolean", body: `{"ok":"true","authed_user":{"access_token":"` + tok + `"}}`, err: "not the JSON object"},
		{name: "bot token only", body: `{"ok":true,"access_token":"` + tok + `","token_type":"bot","authed_user":{"id":"U1"}}`, err: "no authed_user.access_token"},
		{name: "no authed_user", body: `{"ok":true,"access_token":"` + tok + `"}`, err: "no authed_user.access_token"},
		{name: "authed_user null", body: `{"ok":true,"authed_user":null}`, err: "no authed_user.access_token"},
		{name: "garbage", body: `<html>` + tok + `</html>`, err: "not the JSON object"},
		{name: "empty", body: ``, err: "not the JSON object"},
		{name: "array", body: `[{"ok":true}]`, err: "not the JSON object"},
		{name: "trailing data", body: `{"ok":true,"authed_user":{"access_token":"` + tok + `"}} {"ok":true}`, err: "data follows"},
		{name: "truncated", body: `{"ok":true,"authed_user":{"access_token":"` + tok, err: "not the JSON object"},
		{name: "huge expires_in", body: `{"ok":true,"authed_user":{"access_token":"` + tok + `","expires_in":99999999999999999999}}`, err: "expires_in"},
		{name: "huge exponent", body: `{"ok":true,"authed_user":{"access_token":"` + tok + `","expires_in":1e400}}`, err: "expires_in"},
		{name: "negative expires_in", body: `{"ok":true,"authed_user":{"access_token":"` + tok + `","expires_in":-1}}`, err: "expires_in"},
		{name: "fractional expires_in", body: `{"ok":true,"authed_user":{"access_token":"` + tok + `","expires_in":3600.5}}`, err: "expires_in"},
		{name: "expires_in not a number", body: `{"ok":true,"authed_user":{"access_token":"` + tok + `","expires_in":"` + tok + `"}}`, err: "not the JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSlackToken([]byte(tc.body))
			if tc.err == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if !sameFields(got, tc.want) {
					t.Errorf("got %s\nwant %s", dump(got), dump(tc.want))
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; got %s", dump(got))
			}
			if !sameFields(got, loopauth.TokenResponseFields{}) {
				t.Errorf("fields returned with the error: %s", dump(got))
			}
			if !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %q lacks %q", err, tc.err)
			}
			var se *slackError
			if errors.As(err, &se) != strings.HasPrefix(tc.name, "ok false") {
				t.Errorf("error %T: a *slackError if and only if ok is false", err)
			}
			if strings.Contains(err.Error(), tok) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

// slackProvider is a loopauthtest provider that answers like Slack's
// oauth.v2.access; rewrite turns its RFC 6749 answer into Slack's.
func slackProvider(t *testing.T, secret string, rewrite func(resp map[string]any)) (*loopauthtest.Provider, func() []string) {
	var mu sync.Mutex
	var issued []string
	p := loopauthtest.NewProvider(t,
		loopauthtest.WithClient("123.456", secret),
		loopauthtest.WithTokenResponse(func(_ string, resp map[string]any) {
			mu.Lock()
			for _, k := range []string{"access_token", "refresh_token"} {
				if s, ok := resp[k].(string); ok {
					issued = append(issued, s)
				}
			}
			mu.Unlock()
			rewrite(resp)
		}))
	return p, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), issued...)
	}
}

// nestLikeSlack moves the user's token under authed_user, with Slack's
// comma-separated scope and token_type "user".
func nestLikeSlack(resp map[string]any) {
	user := map[string]any{"id": "U0123", "token_type": "user", "scope": defaultScopes}
	for _, k := range []string{"access_token", "refresh_token", "expires_in"} {
		if v, ok := resp[k]; ok {
			user[k] = v
		}
	}
	for k := range resp {
		delete(resp, k)
	}
	resp["ok"] = true
	resp["app_id"] = "A0123"
	resp["authed_user"] = user
	resp["team"] = map[string]any{"id": "T0123", "name": "Test"}
	resp["is_enterprise_install"] = false
}

// TestSlackFlow signs in with the managed certificate that EnsureLocalhost
// finds in LOOPAUTH_TLS_DIR, as a second run after mkcert made it would.
func TestSlackFlow(t *testing.T) {
	const secret = "slack-client-secret-0123456789abcdef"
	certPEM, keyPEM, roots := testCertificate(t)
	tlsDir := filepath.Join(t.TempDir(), "tls")
	if err := os.Mkdir(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"localhost-cert.pem": certPEM, "localhost-key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(tlsDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", t.TempDir()) // the certificate is reused: mkcert is not needed
	p, issued := slackProvider(t, secret, nestLikeSlack)
	cfg := slack
	cfg.authURL, cfg.tokenURL = p.AuthURL(), p.TokenURL()
	port := freePort(t)
	env := envMap(map[string]string{
		"LOOPAUTH_CLIENT_ID":     "123.456",
		"LOOPAUTH_CLIENT_SECRET": secret,
		"LOOPAUTH_TLS_DIR":       tlsDir,
		"LOOPAUTH_PORT":          strconv.Itoa(port),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := cfg.run(ctx, nil, env, trustingBrowser(roots), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	out, errOut := stdout.String(), stderr.String()
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	for _, want := range []string{
		"Signed in to Slack.",
		"user scopes:   channels:history channels:read groups:history groups:read",
		"expires:       in 3600 seconds",
		"refresh token: yes",
		"access token:  43 characters (not shown)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "Opening your browser at "+p.AuthURL()) {
		t.Errorf("stderr:\n%s", errOut)
	}

	reqs := p.AuthorizeRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d authorize requests, want 1", len(reqs))
	}
	q := reqs[0]
	if got := q["user_scope"]; len(got) != 1 || got[0] != defaultScopes {
		t.Errorf("user_scope = %q, want %q", got, defaultScopes)
	}
	if _, ok := q["scope"]; ok {
		t.Errorf("a scope parameter was sent: %q", q["scope"])
	}
	if got, want := q.Get("redirect_uri"), fmt.Sprintf("https://127.0.0.1:%d/callback", port); got != want {
		t.Errorf("redirect_uri = %q, want %q", got, want)
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

func TestSlackRefused(t *testing.T) {
	const secret = "slack-client-secret-0123456789abcdef"
	certPEM, keyPEM, roots := testCertificate(t)
	cert, err := loopauth.TLSCertificateFromPEM(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	p, issued := slackProvider(t, secret, func(resp map[string]any) {
		for k := range resp {
			delete(resp, k)
		}
		resp["ok"] = false
		resp["error"] = "invalid_code"
	})
	cfg := config{
		authURL:     p.AuthURL(),
		tokenURL:    p.TokenURL(),
		certificate: func(string) (*loopauth.TLSCertificate, error) { return cert, nil },
	}
	env := envMap(map[string]string{
		"LOOPAUTH_CLIENT_ID":     "123.456",
		"LOOPAUTH_CLIENT_SECRET": secret,
		"LOOPAUTH_TLS_DIR":       t.TempDir(),
		"LOOPAUTH_PORT":          strconv.Itoa(freePort(t)),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := cfg.run(ctx, nil, env, trustingBrowser(roots), &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `error "invalid_code"`) {
		t.Errorf("stderr does not name Slack's error:\n%s", stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q", stdout.String())
	}
	for _, s := range append([]string{secret}, issued()...) {
		if strings.Contains(stderr.String(), s) {
			t.Error("stderr contains a secret value")
		}
	}
}

// tlsEnv is a valid configuration whose certificate goes to a fresh
// directory.
func tlsEnv(t *testing.T) func(string) string {
	return envMap(map[string]string{
		"LOOPAUTH_CLIENT_ID":     "123.456",
		"LOOPAUTH_CLIENT_SECRET": "s",
		"LOOPAUTH_TLS_DIR":       filepath.Join(t.TempDir(), "tls"),
	})
}

func TestSlackMkcertNotFound(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no mkcert there
	opener := func(context.Context, string) error {
		t.Error("a browser was opened")
		return nil
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), nil, tlsEnv(t), opener, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"mkcert was not found", loopauth.SetupGuideManaged} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q", stdout.String())
	}
}

func TestSlackMkcertFails(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake mkcert is a shell script")
	}
	bin := t.TempDir()
	script := "#!/bin/sh\necho 'ERROR: failed to read the CA key: no such file' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "mkcert"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), nil, tlsEnv(t), nil, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"failed to read the CA key", loopauth.SetupGuideManaged} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestSlackUnsafeTLSDir checks that a certificate directory other users may
// read is a setting to fix (exit 2), refused before mkcert is looked for.
func TestSlackUnsafeTLSDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits do not apply")
	}
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{"LOOPAUTH_CLIENT_ID": "123.456", "LOOPAUTH_CLIENT_SECRET": "s"}
	m["LOOPAUTH_TLS_DIR"] = dir
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), nil, envMap(m), nil, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"LOOPAUTH_TLS_DIR", "chmod 700"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}
