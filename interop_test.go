//go:build unix

package loopauth

// The interop suite (make interop): whole sign-ins against panva's
// oidc-provider, an OpenID Certified provider that we did not write, run by
// Node.js from testdata/interop (see provider.mjs there for its clients and
// its test-only endpoints). A small user agent written here plays the
// browser: it follows redirects with a cookie jar and fills in the
// provider's own login and consent pages.
//
// Without Node.js, or without testdata/interop/node_modules (make interop
// runs npm ci there), the suite skips and names what is missing; with CI
// set in the environment it fails instead.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// interopDir holds the provider script and its pinned packages.
const interopDir = "testdata/interop"

// interopProvider is a running oidc-provider.
type interopProvider struct {
	Issuer  string            `json:"issuer"`
	Secrets map[string]string `json:"secrets"` // client ID to client secret
	cfg     *OpenIDConfiguration
	hc      *http.Client // trusts the provider's certificate; nil for http
}

// interopMissing skips t naming what is missing, or fails it under CI.
func interopMissing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(what + "; CI is set, so the interop suite must run")
	}
	t.Skip(what)
}

// startInteropProvider starts the provider in its own process group and
// waits for its discovery document. It is stopped by t.Cleanup on every
// exit path; should the test binary die first, the provider sees its
// standard input close and exits.
func startInteropProvider(t *testing.T, hc *http.Client, env ...string) *interopProvider {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		interopMissing(t, "node is missing: install Node.js 20 or later with npm (Debian: apt-get install nodejs npm), then run make interop")
	}
	out, err := exec.Command(node, "--version").Output()
	major, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(strings.TrimSpace(string(out)), ".", 2)[0], "v"))
	if err != nil || major < 20 {
		interopMissing(t, fmt.Sprintf("node %q is too old: oidc-provider needs Node.js 20 or later", strings.TrimSpace(string(out))))
	}
	if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "oidc-provider", "package.json")); err != nil {
		hint := "run make interop (npm ci in " + interopDir + ")"
		if _, err := exec.LookPath("npm"); err != nil {
			hint = "npm is missing too: install it (Debian: apt-get install npm), then " + hint
		}
		interopMissing(t, interopDir+"/node_modules has no oidc-provider: "+hint)
	}

	cmd := exec.Command(node, "provider.mjs")
	cmd.Dir = interopDir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the provider: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("provider output:\n%s", logs.String())
		}
	})

	// The first JSON line names the issuer; oidc-provider's warnings come
	// before it, and everything after it is kept for the log.
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if line := sc.Text(); !sent && strings.HasPrefix(line, "{") {
				first <- line
				sent = true
			} else {
				logs.Write([]byte(line + "\n"))
			}
		}
		if !sent {
			close(first)
		}
	}()
	p := interopProvider{hc: hc}
	select {
	case line, ok := <-first:
		if !ok {
			t.Fatalf("the provider exited before it was ready:\n%s", logs.String())
		}
		if err := json.Unmarshal([]byte(line), &p); err != nil || !strings.HasPrefix(p.Issuer, "http://127.0.0.1:") && !strings.HasPrefix(p.Issuer, "https://127.0.0.1:") {
			t.Fatalf("provider announced %q: %v", line, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the provider did not start within 30 s:\n%s", logs.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		p.cfg, err = FetchOpenIDConfigurationWithClient(ctx, hc, p.Issuer)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("discovery: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &p
}

// admin calls one of the provider script's test-only endpoints.
func (p *interopProvider) admin(t *testing.T, method, path string) map[string]int {
	t.Helper()
	req, _ := http.NewRequest(method, p.Issuer+path, nil)
	hc := http.DefaultClient
	if p.hc != nil {
		hc = p.hc
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]int
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s %s: HTTP %d, %v", method, path, resp.StatusCode, err)
	}
	return out
}

// interopFlow is one sign-in's settings.
type interopFlow struct {
	clientID   string
	authMethod string // ClientAuthMethod; "" keeps the choice from discovery
	offline    bool   // ask for a refresh token
	agent      userAgent
}

// client builds a client for f from the provider's discovery document,
// verifying ID tokens with the provider's keys.
func (p *interopProvider) client(t *testing.T, f *interopFlow) *CLITokenClient {
	t.Helper()
	b := FromOpenIDConfiguration(p.cfg).ClientID(f.clientID).ClientSecret(p.Secrets[f.clientID]).
		ClientAuthMethod(f.authMethod).WithOpenIDConfigurationJWKSValidator(p.cfg).AddScopes(ScopeEmail).
		BrowserOpener(f.agent.open).Timeout(time.Minute).Stderr(io.Discard).HTTPClient(p.hc)
	if f.offline {
		// OpenID Connect Core §11: offline_access is ignored without
		// prompt=consent, and oidc-provider drops it.
		b.AddScopes(ScopeOfflineAccess).OnAuthURL(func(p *ExtraAuthParams) { p.Append("prompt", "consent") })
	}
	c, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signIn runs one authorization flow of c with f's user agent. A user
// agent that fails cancels the flow at once, rather than leaving it to
// wait for a callback that will not come.
func (f *interopFlow) signIn(t *testing.T, c *CLITokenClient) (*TokenSet, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f.agent.cancel = cancel
	ts, err := c.RunAuthorizationFlow(ctx)
	if f.agent.err != nil {
		t.Fatalf("user agent: %v", f.agent.err)
	}
	return ts, err
}

// idTokenHeader decodes the JOSE header of an ID token.
func idTokenHeader(t *testing.T, raw string) (alg, kid string) {
	t.Helper()
	seg, _, _ := strings.Cut(raw, ".")
	data, err := base64.RawURLEncoding.DecodeString(seg)
	var h struct{ Alg, Kid string }
	if err != nil || json.Unmarshal(data, &h) != nil {
		t.Fatalf("ID token header %q", seg)
	}
	return h.Alg, h.Kid
}

func TestInterop(t *testing.T) {
	start := time.Now()
	p := startInteropProvider(t, nil)
	t.Logf("oidc-provider ready in %v at %s", time.Since(start).Round(time.Millisecond), p.Issuer)
	if !p.cfg.AuthorizationResponseISSParameterSupported {
		t.Error("the provider does not announce RFC 9207 iss; the iss cases prove nothing")
	}

	for _, tt := range []struct{ clientID, alg string }{{"native", "RS256"}, {"native-es256", "ES256"}} {
		t.Run("flow "+tt.alg, func(t *testing.T) {
			f := &interopFlow{clientID: tt.clientID, agent: userAgent{login: "ada"}}
			ts, err := f.signIn(t, p.client(t, f))
			if err != nil {
				t.Fatal(err)
			}
			if alg, _ := idTokenHeader(t, ts.IDTokenRaw()); alg != tt.alg {
				t.Errorf("ID token signed with %s, want %s", alg, tt.alg)
			}
			c := ts.IDToken().Claims()
			if c.Subject != "ada" || c.Email != "ada@example.com" || !c.EmailVerified || c.Issuer != p.Issuer || c.Nonce == "" {
				t.Errorf("claims = %+v", c)
			}
			if ts.AccessToken() == "" || ts.ExpiresAt().IsZero() || ts.RefreshToken() != "" {
				t.Errorf("token set = %v (no refresh token without offline_access)", ts)
			}
			if got := f.agent.callback.Query().Get("iss"); got != p.Issuer {
				t.Errorf("callback iss = %q, want %q", got, p.Issuer)
			}
		})
	}

	t.Run("refresh with rotation", func(t *testing.T) {
		f := &interopFlow{clientID: "native", offline: true, agent: userAgent{login: "bob"}}
		c := p.client(t, f)
		ts, err := f.signIn(t, c)
		if err != nil {
			t.Fatal(err)
		}
		if ts.RefreshToken() == "" || !strings.Contains(joinScopes(ts.Scopes()), "offline_access") {
			t.Fatalf("no refresh token: %v", ts)
		}
		next, err := c.Refresh(context.Background(), ts.RefreshToken())
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken() == "" || next.RefreshToken() == ts.RefreshToken() {
			t.Errorf("the refresh token was not rotated")
		}
		if next.IDToken() == nil || next.IDToken().Claims().Subject != "bob" || next.AccessToken() == ts.AccessToken() {
			t.Errorf("refreshed set = %v", next)
		}
		_, err = c.Refresh(context.Background(), ts.RefreshToken())
		var pe *ProviderError
		if !errors.As(err, &pe) || pe.ErrorCode != "invalid_grant" || pe.StatusCode != http.StatusBadRequest {
			t.Fatalf("replayed refresh token: err = %v, want invalid_grant", err)
		}
		// What the user reads: the provider's own description is generic.
		msg := err.Error()
		t.Logf("replayed refresh token: %s", msg)
		if !strings.Contains(msg, "refresh token") || !strings.Contains(msg, "sign in again") {
			t.Errorf("the error does not tell the user to sign in again: %s", msg)
		}
		assertNoSecret(t, msg)
		for _, s := range []string{ts.RefreshToken(), next.RefreshToken(), ts.AccessToken()} {
			if strings.Contains(msg, s) {
				t.Errorf("the error quotes a token: %s", msg)
			}
		}
	})

	t.Run("consent denied", func(t *testing.T) {
		f := &interopFlow{clientID: "native", agent: userAgent{login: "eve", deny: true}}
		_, err := f.signIn(t, p.client(t, f))
		var pe *ProviderError
		if !errors.As(err, &pe) || pe.ErrorCode != "access_denied" || pe.StatusCode != 0 {
			t.Fatalf("err = %v, want a callback access_denied", err)
		}
	})

	// Each confidential client accepts its secret by its registered method
	// only, for the code and the refresh grant: the method chosen from
	// discovery (basic, as both are offered) or forced works, the other is
	// refused.
	for _, tt := range []struct{ clientID, method, other string }{
		{"basic", "", ClientSecretPost},
		{"post", ClientSecretPost, ClientSecretBasic},
	} {
		t.Run("client "+tt.clientID, func(t *testing.T) {
			f := &interopFlow{clientID: tt.clientID, authMethod: tt.method, offline: true, agent: userAgent{login: "carol"}}
			c := p.client(t, f)
			ts, err := f.signIn(t, c)
			if err != nil {
				t.Fatal(err)
			}
			if ts.IDToken().Claims().Audience[0] != tt.clientID || ts.RefreshToken() == "" {
				t.Errorf("token set = %v", ts)
			}
			if _, err := c.Refresh(context.Background(), ts.RefreshToken()); err != nil {
				t.Errorf("refresh: %v", err)
			}
			f.authMethod = tt.other
			_, err = f.signIn(t, p.client(t, f))
			var pe *ProviderError
			if !errors.As(err, &pe) || pe.ErrorCode != "invalid_client" {
				t.Errorf("%s: err = %v, want invalid_client", tt.other, err)
			}
		})
	}

	for _, tt := range []struct {
		name string
		iss  func(string) string
	}{
		{"iss changed", func(iss string) string { return iss + "/other" }},
		{"iss removed", func(string) string { return "" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &interopFlow{clientID: "native", agent: userAgent{login: "mallory", rewrite: func(u *url.URL) {
				q := u.Query()
				if v := tt.iss(q.Get("iss")); v != "" {
					q.Set("iss", v)
				} else {
					q.Del("iss")
				}
				u.RawQuery = q.Encode()
			}}}
			if _, err := f.signIn(t, p.client(t, f)); !errors.Is(err, ErrInvalidIssuer) {
				t.Errorf("err = %v, want ErrInvalidIssuer", err)
			}
		})
	}

	// Last: it rotates the provider's keys. One client, so one key set
	// cache: the second sign-in uses the cached keys, the third, signed
	// with a key the cache has never seen, fetches the set once more.
	t.Run("key rotation", func(t *testing.T) {
		f := &interopFlow{clientID: "native", agent: userAgent{login: "dave"}}
		c := p.client(t, f)
		fetches := func() int { return p.admin(t, http.MethodGet, "/-/stats")["jwks"] }
		base := fetches()
		var kids []string
		for i := range 3 {
			if i == 2 {
				p.admin(t, http.MethodPost, "/-/rotate")
			}
			ts, err := f.signIn(t, c)
			if err != nil {
				t.Fatalf("sign-in %d: %v", i+1, err)
			}
			_, kid := idTokenHeader(t, ts.IDTokenRaw())
			kids = append(kids, kid)
			if got, want := fetches()-base, []int{1, 1, 2}[i]; got != want {
				t.Errorf("after sign-in %d: %d key set fetches, want %d", i+1, got, want)
			}
		}
		if kids[0] != kids[1] || kids[1] == kids[2] {
			t.Errorf("kids %q: want the same key twice, then a new one", kids)
		}
	})
}

// TestInteropPrivateCA: a provider whose certificate comes from a private
// CA, reached through a client that trusts only that CA, for discovery,
// keys, sign-in, refresh and revocation, from its document and from the
// issuer alone. Without the client, the CA is not trusted.
func TestInteropPrivateCA(t *testing.T) {
	roots, env := interopCA(t)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	p := startInteropProvider(t, hc, env...)
	if !strings.HasPrefix(p.Issuer, "https://") {
		t.Fatalf("issuer %s is not https", p.Issuer)
	}
	ctx := context.Background()
	var unknownCA x509.UnknownAuthorityError
	if _, err := FetchOpenIDConfiguration(ctx, p.Issuer); !errors.As(err, &unknownCA) {
		t.Errorf("without the client: err = %v, want an unknown authority", err)
	}
	for _, from := range []string{"document", "issuer"} {
		t.Run(from, func(t *testing.T) {
			f := &interopFlow{clientID: "native", offline: true, agent: userAgent{login: "ada", roots: roots}}
			c := p.client(t, f)
			if from == "issuer" {
				var err error
				c, err = FromIssuer(p.Issuer).ClientID("native").AddScopes(ScopeOfflineAccess).HTTPClient(hc).
					OnAuthURL(func(p *ExtraAuthParams) { p.Append("prompt", "consent") }).
					BrowserOpener(f.agent.open).Timeout(time.Minute).Stderr(io.Discard).Build()
				if err != nil {
					t.Fatal(err)
				}
			}
			ts, err := f.signIn(t, c)
			if err != nil {
				t.Fatal(err)
			}
			if ts.IDToken().Claims().Issuer != p.Issuer || ts.RefreshToken() == "" {
				t.Fatalf("token set %v", ts)
			}
			out, err := c.RefreshIfExpiring(ctx, ts, 24*time.Hour)
			if err != nil || out.TokenSet().RefreshToken() == ts.RefreshToken() {
				t.Fatalf("refresh: %v", err)
			}
			if err := c.Revoke(ctx, out.TokenSet().RefreshToken()); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Refresh(ctx, out.TokenSet().RefreshToken()); providerCode(err) != "invalid_grant" {
				t.Errorf("refresh after revocation: %v, want invalid_grant", err)
			}
		})
	}
}

// interopCA makes a private CA and a certificate for 127.0.0.1 signed by
// it; it returns a pool holding only the CA, and the provider's
// environment naming the certificate and key files.
func interopCA(t *testing.T) (*x509.CertPool, []string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loopauth interop CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600) != nil ||
		os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600) != nil {
		t.Fatal("writing the certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return roots, []string{"INTEROP_TLS_CERT=" + certFile, "INTEROP_TLS_KEY=" + keyFile}
}

// userAgent is the browser of the interop suite: a cookie jar, redirects
// followed by hand (so that the one to the loopback callback can be
// rewritten), and the provider's login and consent forms filled in.
type userAgent struct {
	login   string         // the account to sign in as; any password works
	deny    bool           // cancel at the consent page
	rewrite func(*url.URL) // applied to the callback URL before it is visited
	roots   *x509.CertPool // the provider's private CA; nil: the system's

	callback *url.URL // the callback URL visited
	err      error    // why the user agent gave up
	cancel   context.CancelFunc
}

var (
	formRe   = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRe  = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRe   = regexp.MustCompile(`(?s)([a-zA-Z_-]+)="([^"]*)"`)
	cancelRe = regexp.MustCompile(`<a href="([^"]*)">\[ Cancel \]</a>`)
)

// attrs reads the double-quoted attributes of a tag.
func attrs(s string) map[string]string {
	out := map[string]string{}
	for _, m := range attrRe.FindAllStringSubmatch(s, -1) {
		out[strings.ToLower(m[1])] = html.UnescapeString(m[2])
	}
	return out
}

// open is the BrowserOpener. A failure is kept for the test, and cancels
// the flow.
func (a *userAgent) open(ctx context.Context, authURL string) error {
	a.err = a.browse(ctx, authURL)
	if a.err != nil && a.cancel != nil {
		a.cancel()
	}
	return nil
}

// browse walks from the authorization URL to the callback: at most 20
// pages or redirects.
func (a *userAgent) browse(ctx context.Context, authURL string) error {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start, err := url.Parse(authURL)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	for range 20 {
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		atCallback := req.URL.Host != start.Host
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next, err := req.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return err
			}
			if next.Host != start.Host && !atCallback {
				if next.Hostname() != "127.0.0.1" || next.Path != "/callback" {
					return fmt.Errorf("the provider redirected to %s, not to the loopback callback", next)
				}
				if a.rewrite != nil {
					a.rewrite(next)
				}
				a.callback = next
			}
			req, _ = http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil)
		case atCallback:
			return nil // the library's page: the callback was delivered
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("%s answered HTTP %d: %.300s", req.URL, resp.StatusCode, body)
		default:
			if req, err = a.answer(ctx, req.URL, string(body)); err != nil {
				return err
			}
		}
	}
	return errors.New("more than 20 pages or redirects")
}

// answer fills in the provider page at page: the login form, or the
// consent form (or its Cancel link, with deny).
func (a *userAgent) answer(ctx context.Context, page *url.URL, body string) (*http.Request, error) {
	m := formRe.FindStringSubmatch(body)
	if m == nil {
		return nil, fmt.Errorf("no form on %s: %.300s", page, body)
	}
	form := url.Values{}
	for _, in := range inputRe.FindAllStringSubmatch(m[2], -1) {
		at := attrs(in[1])
		switch at["name"] {
		case "":
		case "login":
			form.Set("login", a.login)
		case "password":
			form.Set("password", "any password")
		default:
			form.Set(at["name"], at["value"])
		}
	}
	if a.deny && form.Get("prompt") == "consent" {
		c := cancelRe.FindStringSubmatch(body)
		if c == nil {
			return nil, fmt.Errorf("no Cancel link on the consent page %s", page)
		}
		to, err := page.Parse(html.UnescapeString(c[1]))
		if err != nil {
			return nil, err
		}
		return http.NewRequestWithContext(ctx, http.MethodGet, to.String(), nil)
	}
	if p := form.Get("prompt"); p != "login" && p != "consent" {
		return nil, fmt.Errorf("unexpected page %s (prompt %q): %.300s", page, p, body)
	}
	at := attrs(m[1])
	action, err := page.Parse(at["action"])
	if err != nil || !strings.EqualFold(at["method"], "post") {
		return nil, fmt.Errorf("form on %s: action %q, method %q", page, at["action"], at["method"])
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}
