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

// testPKI is a CA made for one test and a leaf it signed for 127.0.0.1,
// ::1 and localhost, valid for 30 days, written as PEM files.
type testPKI struct {
	roots              *x509.CertPool
	caroot             string // a directory holding the CA as rootCA.pem, like mkcert's
	certFile, keyFile  string
	otherKey           string // a key that does not match the certificate
	garbage, emptyFile string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "auth_https test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
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
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{
		roots:     x509.NewCertPool(),
		caroot:    filepath.Join(dir, "caroot"),
		certFile:  filepath.Join(dir, "cert.pem"),
		keyFile:   filepath.Join(dir, "key.pem"),
		otherKey:  filepath.Join(dir, "other-key.pem"),
		garbage:   filepath.Join(dir, "garbage.pem"),
		emptyFile: filepath.Join(dir, "empty.pem"),
	}
	p.roots.AddCert(ca)
	if err := os.Mkdir(p.caroot, 0o700); err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(p.caroot, "rootCA.pem"), "CERTIFICATE", caDER)
	writePEM(t, p.certFile, "CERTIFICATE", leafDER)
	writePEM(t, p.keyFile, "PRIVATE KEY", marshalKey(t, leafKey))
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.otherKey, "PRIVATE KEY", marshalKey(t, other))
	if err := os.WriteFile(p.garbage, []byte("not a PEM file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func marshalKey(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// trustingBrowser is a user agent that trusts only roots: it GETs the
// authorization URL and follows the provider's redirect to the HTTPS
// callback, verifying the callback's certificate as a browser would.
func trustingBrowser(roots *x509.CertPool) loopauth.BrowserOpener {
	return func(ctx context.Context, authURL string) error {
		tr := &http.Transport{
			Proxy:             nil, // loopback traffic must not go to a proxy
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
		if resp.TLS == nil || resp.Request.URL.Scheme != "https" {
			return fmt.Errorf("the callback page was not served over HTTPS: %s", resp.Request.URL.Redacted())
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

func noBrowser(t *testing.T) loopauth.BrowserOpener {
	return func(context.Context, string) error {
		t.Error("a browser was opened")
		return nil
	}
}

func TestHTTPSMissingEnv(t *testing.T) {
	for _, tc := range []struct {
		name          string
		env           map[string]string
		want, notWant []string
	}{
		{
			name: "nothing",
			env:  nil,
			want: []string{"LOOPAUTH_CLIENT_ID", "LOOPAUTH_AUTH_URL", "LOOPAUTH_TOKEN_URL", "LOOPAUTH_TLS_DIR (or LOOPAUTH_CERT_FILE and LOOPAUTH_KEY_FILE)", "usage:"},
		},
		{
			name:    "key file",
			env:     map[string]string{"LOOPAUTH_CLIENT_ID": "cli", "LOOPAUTH_CERT_FILE": "cert.pem"},
			want:    []string{"LOOPAUTH_AUTH_URL", "LOOPAUTH_TOKEN_URL", "LOOPAUTH_KEY_FILE"},
			notWant: []string{"LOOPAUTH_CLIENT_ID", "LOOPAUTH_TLS_DIR"},
		},
		{
			name:    "cert file",
			env:     map[string]string{"LOOPAUTH_CLIENT_ID": "cli", "LOOPAUTH_AUTH_URL": "https://example.com/a", "LOOPAUTH_TOKEN_URL": "https://example.com/t", "LOOPAUTH_KEY_FILE": "key.pem"},
			want:    []string{"LOOPAUTH_CERT_FILE"},
			notWant: []string{"LOOPAUTH_CLIENT_ID", "LOOPAUTH_AUTH_URL", "LOOPAUTH_TOKEN_URL", "LOOPAUTH_TLS_DIR"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), nil, envMap(tc.env), noBrowser(t), &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
			}
			first := strings.SplitN(stderr.String(), "\n", 2)[0]
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			for _, u := range tc.notWant {
				if strings.Contains(first, u) {
					t.Errorf("%s is set but reported missing: %s", u, first)
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q", stdout.String())
			}
		})
	}
}

func TestHTTPSBadSettings(t *testing.T) {
	pki := newTestPKI(t)
	base := map[string]string{
		"LOOPAUTH_CLIENT_ID": "cli",
		"LOOPAUTH_AUTH_URL":  "https://example.com/authorize",
		"LOOPAUTH_TOKEN_URL": "https://example.com/token",
		"LOOPAUTH_CERT_FILE": pki.certFile,
		"LOOPAUTH_KEY_FILE":  pki.keyFile,
		"LOOPAUTH_SCOPES":    "email",
		"LOOPAUTH_PORT":      "8443",
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct{ name, key, value, want string }{
		{"openid", "LOOPAUTH_SCOPES", "email, openid", `"openid"`},
		{"port range", "LOOPAUTH_PORT", "80000", "LOOPAUTH_PORT"},
		{"port zero", "LOOPAUTH_PORT", "0", "LOOPAUTH_PORT"},
		{"port text", "LOOPAUTH_PORT", "https", "LOOPAUTH_PORT"},
		{"http endpoint", "LOOPAUTH_TOKEN_URL", "http://example.com/token", "TokenURL"},
		{"bad scope", "LOOPAUTH_SCOPES", `email,"x"`, "scope"},
		{"both certificate sources", "LOOPAUTH_TLS_DIR", t.TempDir(), "not both"},
		{"missing cert file", "LOOPAUTH_CERT_FILE", missing, "LOOPAUTH_CERT_FILE"},
		{"missing key file", "LOOPAUTH_KEY_FILE", missing, "LOOPAUTH_KEY_FILE"},
		{"key of another certificate", "LOOPAUTH_KEY_FILE", pki.otherKey, "LOOPAUTH_KEY_FILE"},
		{"garbage certificate", "LOOPAUTH_CERT_FILE", pki.garbage, "LOOPAUTH_CERT_FILE"},
		{"empty key", "LOOPAUTH_KEY_FILE", pki.emptyFile, "LOOPAUTH_KEY_FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range base {
				m[k] = v
			}
			m[tc.key] = tc.value
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), nil, envMap(m), noBrowser(t), &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q", stdout.String())
			}
		})
	}
}

func TestHTTPSArgs(t *testing.T) {
	for _, arg := range []string{"--setup-guide", "-setup-guide"} {
		var stdout, stderr bytes.Buffer
		// The guide needs no other settings.
		if code := run(context.Background(), []string{arg}, envMap(nil), nil, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d, stderr:\n%s", arg, code, stderr.String())
		}
		if stdout.String() != loopauth.SetupGuide {
			t.Errorf("%s: stdout is not loopauth.SetupGuide:\n%s", arg, stdout.String())
		}
		if stderr.Len() != 0 {
			t.Errorf("%s: stderr = %q", arg, stderr.String())
		}
	}
	for args, want := range map[string]int{"-h": 0, "--help": 0, "x": 2, "--setup-guide x": 2, "--nope": 2, "-setup-guide=maybe": 2} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), strings.Fields(args), envMap(nil), nil, &stdout, &stderr); code != want {
			t.Errorf("%q: exit %d, want %d; stderr:\n%s", args, code, want, stderr.String())
		}
		if !strings.Contains(stderr.String(), "usage:") {
			t.Errorf("%q: stderr lacks the usage:\n%s", args, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: stdout = %q", args, stdout.String())
		}
	}
}

// managedEnv is a valid configuration with a managed certificate in a
// fresh directory.
func managedEnv(t *testing.T) map[string]string {
	return map[string]string{
		"LOOPAUTH_CLIENT_ID": "cli",
		"LOOPAUTH_AUTH_URL":  "https://example.com/authorize",
		"LOOPAUTH_TOKEN_URL": "https://example.com/token",
		"LOOPAUTH_TLS_DIR":   filepath.Join(t.TempDir(), "tls"),
	}
}

func TestHTTPSMkcertNotFound(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no mkcert there
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), nil, envMap(managedEnv(t)), noBrowser(t), &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), loopauth.SetupGuideManaged) {
		t.Errorf("stderr lacks loopauth.SetupGuideManaged:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "mkcert was not found") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q", stdout.String())
	}
}

func TestHTTPSMkcertFails(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake mkcert is a shell script")
	}
	pki := newTestPKI(t)
	for _, tc := range []struct{ name, script, want string }{
		{
			name:   "exit status",
			script: "echo 'ERROR: failed to read the CA key: no such file' >&2\nexit 1\n",
			want:   "failed to read the CA key",
		},
		{
			// mkcert exits 0 without "mkcert -install": its certificate
			// chains to a CA that the system does not trust.
			name: "CA not installed",
			script: `if [ "$1" = -CAROOT ]; then echo "` + pki.caroot + `"; exit 0; fi
while [ $# -gt 0 ]; do
  case "$1" in
  -cert-file) cp "` + pki.certFile + `" "$2"; shift ;;
  -key-file) cp "` + pki.keyFile + `" "$2"; shift ;;
  esac
  shift
done
`,
			want: "is not in the trust store",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			if err := os.WriteFile(filepath.Join(bin, "mkcert"), []byte("#!/bin/sh\n"+tc.script), 0o700); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), nil, envMap(managedEnv(t)), noBrowser(t), &stdout, &stderr); code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
			}
			for _, want := range []string{tc.want, loopauth.SetupGuideManaged} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q", stdout.String())
			}
		})
	}
}

func TestHTTPSFlow(t *testing.T) {
	pki := newTestPKI(t)
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
	port := freePort(t)
	env := envMap(map[string]string{
		"LOOPAUTH_CLIENT_ID":     "cli",
		"LOOPAUTH_CLIENT_SECRET": secret,
		"LOOPAUTH_AUTH_URL":      p.AuthURL(),
		"LOOPAUTH_TOKEN_URL":     p.TokenURL(),
		"LOOPAUTH_CERT_FILE":     pki.certFile,
		"LOOPAUTH_KEY_FILE":      pki.keyFile,
		"LOOPAUTH_PORT":          strconv.Itoa(port),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, nil, env, trustingBrowser(pki.roots), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	out, errOut := stdout.String(), stderr.String()
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	for _, want := range []string{
		"Signed in over an HTTPS callback.",
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
	callback := fmt.Sprintf("https://127.0.0.1:%d/callback", port)
	for _, want := range []string{"Opening your browser at " + p.AuthURL() + " to sign in", callback} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	reqs := p.AuthorizeRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d authorize requests, want 1", len(reqs))
	}
	if ru := reqs[0].Get("redirect_uri"); !strings.HasPrefix(ru, "https://127.0.0.1:") || ru != callback {
		t.Errorf("redirect_uri = %q, want %q (pinned by LOOPAUTH_PORT)", ru, callback)
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
	for _, q := range reqs {
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

// TestHTTPSManaged signs in with the managed certificate that
// EnsureLocalhost finds in LOOPAUTH_TLS_DIR, as a second run after mkcert
// made it would.
func TestHTTPSManaged(t *testing.T) {
	pki := newTestPKI(t)
	tlsDir := filepath.Join(t.TempDir(), "tls")
	if err := os.Mkdir(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{pki.certFile: "localhost-cert.pem", pki.keyFile: "localhost-key.pem"} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tlsDir, to), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", t.TempDir()) // the certificate is reused: mkcert is not needed
	p := loopauthtest.NewProvider(t)
	env := envMap(map[string]string{
		"LOOPAUTH_CLIENT_ID": "cli",
		"LOOPAUTH_AUTH_URL":  p.AuthURL(),
		"LOOPAUTH_TOKEN_URL": p.TokenURL(),
		"LOOPAUTH_TLS_DIR":   tlsDir,
		"LOOPAUTH_SCOPES":    "read:user, repo",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, nil, env, trustingBrowser(pki.roots), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "scopes:        read:user repo") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	if ru := p.AuthorizeRequests()[0].Get("redirect_uri"); !strings.HasPrefix(ru, "https://127.0.0.1:") {
		t.Errorf("redirect_uri = %q", ru)
	}
}

// TestHTTPSPortPinned checks that LOOPAUTH_PORT pins the port: a busy one
// fails the flow instead of moving to another port, which an https
// redirect URI registered with the provider would not match.
func TestHTTPSPortPinned(t *testing.T) {
	pki := newTestPKI(t)
	p := loopauthtest.NewProvider(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	env := envMap(map[string]string{
		"LOOPAUTH_CLIENT_ID": "cli",
		"LOOPAUTH_AUTH_URL":  p.AuthURL(),
		"LOOPAUTH_TOKEN_URL": p.TokenURL(),
		"LOOPAUTH_CERT_FILE": pki.certFile,
		"LOOPAUTH_KEY_FILE":  pki.keyFile,
		"LOOPAUTH_PORT":      strconv.Itoa(busy.Addr().(*net.TCPAddr).Port),
	})
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), nil, env, noBrowser(t), &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "port") {
		t.Errorf("stderr does not mention the port:\n%s", stderr.String())
	}
	if len(p.AuthorizeRequests()) != 0 {
		t.Error("the provider was visited")
	}
}

func TestHTTPSCancelled(t *testing.T) {
	pki := newTestPKI(t)
	p := loopauthtest.NewProvider(t)
	env := envMap(map[string]string{
		"LOOPAUTH_CLIENT_ID": "cli",
		"LOOPAUTH_AUTH_URL":  p.AuthURL(),
		"LOOPAUTH_TOKEN_URL": p.TokenURL(),
		"LOOPAUTH_CERT_FILE": pki.certFile,
		"LOOPAUTH_KEY_FILE":  pki.keyFile,
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

// TestHTTPSUnsafeTLSDir checks that a certificate directory other users may
// read is a setting to fix (exit 2), refused before mkcert is looked for.
func TestHTTPSUnsafeTLSDir(t *testing.T) {
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
	m := map[string]string{"LOOPAUTH_CLIENT_ID": "cli", "LOOPAUTH_AUTH_URL": "https://example.com/a", "LOOPAUTH_TOKEN_URL": "https://example.com/t"}
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
