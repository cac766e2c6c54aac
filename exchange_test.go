package loopauth

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// Sentinel secrets: no error string may ever contain one of them (T-16, L-02).
const (
	secretCode     = "SECRET-CODE-1f2e3d"
	secretVerifier = "SECRET-VERIFIER-4c5b6a"
	secretClient   = "SECRET-CLIENT-9a8b7c"
	secretAccess   = "SECRET-ACCESS-0d1e2f"
	secretRefresh  = "SECRET-REFRESH-3a4b5c"
)

var allSecrets = []string{secretCode, secretVerifier, secretClient, secretAccess, secretRefresh}

func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, secret := range allSecrets {
		if strings.Contains(s, secret) {
			t.Errorf("%q leaks %s", s, secret)
		}
	}
}

// testClient builds a client whose token endpoint is h.
func testClient(t *testing.T, h http.Handler) *CLITokenClient {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := NewBuilder().ClientID("cli").ClientSecret(secretClient).
		AuthURL(srv.URL+"/authorize").TokenURL(srv.URL+"/token").
		AddScopes(ScopeEmail, "read").Build()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func jsonHandler(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// TestExchangeRequest checks the form and headers of the code exchange and
// C-30 (the redirect URI is sent byte-identical).
func TestExchangeRequest(t *testing.T) {
	var gotBody string
	var gotHeader http.Header
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotHeader = string(b), r.Header
		jsonHandler(200, `{"access_token":"`+secretAccess+`","token_type":"Bearer","expires_in":60}`)(w, r)
	}))
	redirect := "http://127.0.0.1:43123/callback"
	ts, err := c.exchangeCode(context.Background(), secretCode, flowSecrets{verifier: secretVerifier}, redirect)
	if err != nil {
		t.Fatal(err)
	}
	want := "grant_type=authorization_code&code=" + secretCode + "&redirect_uri=" + url.QueryEscape(redirect) +
		"&client_id=cli&code_verifier=" + secretVerifier + "&client_secret=" + secretClient
	if gotBody != want {
		t.Errorf("body =\n%s\nwant\n%s", gotBody, want)
	}
	if gotHeader.Get("Accept") != "application/json" || gotHeader.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("headers = %v", gotHeader)
	}
	if ts.AccessToken() != secretAccess || ts.TokenType() != "Bearer" {
		t.Errorf("token set = %v", ts)
	}
	if got := ts.Scopes(); len(got) != 2 || got[0] != ScopeEmail || got[1] != "read" {
		t.Errorf("scopes fallback = %v, want the requested [email read]", got)
	}
	if d := time.Until(ts.ExpiresAt()); d < 50*time.Second || d > 61*time.Second {
		t.Errorf("expiry in %v, want about 60s", d)
	}
}

// TestClientSecretBasic checks RFC 6749 §2.3.1 on the wire for the code
// exchange and the refresh alike: the ID and the secret are each
// form-encoded (space as "+", ":" and "%" escaped) before base64, and
// neither is in the body.
func TestClientSecretBasic(t *testing.T) {
	const id, secret = "app:1%", `s p:a%+/"` + secretClient
	var auth []string
	var bodies []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		auth, bodies = append(auth, r.Header.Get("Authorization")), append(bodies, r.PostForm)
		jsonHandler(200, `{"access_token":"a","refresh_token":"r"}`)(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := NewBuilder().ClientID(id).ClientSecret(secret).ClientAuthMethod(ClientSecretBasic).
		AuthURL(srv.URL + "/authorize").TokenURL(srv.URL + "/token").Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.exchangeCode(context.Background(), secretCode, flowSecrets{verifier: secretVerifier}, "http://127.0.0.1:1/callback"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(context.Background(), "r"); err != nil {
		t.Fatal(err)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("app%3A1%25:s+p%3Aa%25%2B%2F%22"+secretClient))
	for i, grant := range []string{"authorization_code", "refresh_token"} {
		if auth[i] != want {
			t.Errorf("%s: Authorization = %q, want %q", grant, auth[i], want)
		}
		if f := bodies[i]; f.Get("grant_type") != grant || f.Has("client_id") || f.Has("client_secret") {
			t.Errorf("%s: body %v, want no client_id or client_secret", grant, f)
		}
	}
	// Without a secret the client is public, whatever ClientAuthMethod says.
	c, err = NewBuilder().ClientID(id).ClientAuthMethod(ClientSecretBasic).
		AuthURL(srv.URL + "/authorize").TokenURL(srv.URL + "/token").Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(context.Background(), "r"); err != nil {
		t.Fatal(err)
	}
	if f := bodies[2]; auth[2] != "" || f.Get("client_id") != id || f.Has("client_secret") {
		t.Errorf("public client: Authorization %q, body %v; want client_id in the body only", auth[2], f)
	}
}

// TestClientAuthAgainstProvider runs flows and refreshes against a provider
// that accepts the secret by one method only: the method chosen from its
// discovery document works for both grants, and a forced other method is
// refused.
func TestClientAuthAgainstProvider(t *testing.T) {
	cases := []struct{ provider, forced string }{
		{loopauthtest.ClientSecretBasic, ""},
		{loopauthtest.ClientSecretPost, ""},
		{loopauthtest.ClientSecretBasic, ClientSecretPost},
		{loopauthtest.ClientSecretPost, ClientSecretBasic},
	}
	for _, tt := range cases {
		t.Run(tt.provider+" forced "+tt.forced, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, loopauthtest.WithClient("test-cli", secretClient), loopauthtest.WithClientAuthMethod(tt.provider))
			cfg, err := FetchOpenIDConfiguration(context.Background(), p.Issuer())
			if err != nil {
				t.Fatal(err)
			}
			c, err := FromOpenIDConfiguration(cfg).ClientID("test-cli").ClientSecret(secretClient).ClientAuthMethod(tt.forced).
				WithOpenIDConfigurationJWKSValidator(cfg).AddScopes(ScopeOfflineAccess).
				BrowserOpener(p.Browser()).Timeout(10 * time.Second).Stderr(io.Discard).Build()
			if err != nil {
				t.Fatal(err)
			}
			ts, err := c.RunAuthorizationFlow(context.Background())
			if tt.forced != "" {
				var pe *ProviderError
				if !errors.As(err, &pe) || pe.ErrorCode != "invalid_client" || pe.StatusCode != http.StatusUnauthorized {
					t.Fatalf("%s to a provider that accepts only %s: err = %v, want invalid_client", tt.forced, tt.provider, err)
				}
				assertNoSecret(t, err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Refresh(context.Background(), ts.RefreshToken()); err != nil {
				t.Errorf("refresh: %v", err)
			}
		})
	}
}

// TestExchangeHostileResponses covers rows T-01..T-13 and T-16.
func TestExchangeHostileResponses(t *testing.T) {
	var gzipBomb bytes.Buffer
	zw := gzip.NewWriter(&gzipBomb)
	zw.Write([]byte(`{"access_token":"`))
	zw.Write(bytes.Repeat([]byte("a"), 4<<20))
	zw.Write([]byte(`"}`))
	zw.Close()

	var followed atomic.Bool
	cases := []struct {
		id      string
		handler http.HandlerFunc
		check   func(t *testing.T, err error)
	}{
		{"T-01 307 not followed", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				followed.Store(true)
			}
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, wantProviderStatus(307)},
		{"T-01 308 not followed", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				followed.Store(true)
			}
			http.Redirect(w, r, "/elsewhere", http.StatusPermanentRedirect)
		}, wantProviderStatus(308)},
		{"T-02 302 not followed", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				followed.Store(true)
			}
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, wantProviderStatus(302)},
		{"T-04 5 MiB body", jsonHandler(200, `{"access_token":"`+strings.Repeat("a", 5<<20)+`"}`), wantIs(ErrResponseTooLarge)},
		{"T-04 gzip bomb", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(gzipBomb.Bytes())
		}, wantIs(ErrResponseTooLarge)},
		{"T-05 missing access_token", jsonHandler(200, `{"token_type":"Bearer"}`), wantIs(ErrInvalidTokenResponse)},
		{"T-05 empty access_token", jsonHandler(200, `{"access_token":""}`), wantIs(ErrInvalidTokenResponse)},
		{"T-05 numeric access_token", jsonHandler(200, `{"access_token":42}`), wantIs(ErrInvalidTokenResponse)},
		{"T-05 CRLF in access_token", jsonHandler(200, `{"access_token":"a\r\nX-Evil: 1"}`), wantIs(ErrInvalidTokenResponse)},
		{"T-05 non-ASCII access_token", jsonHandler(200, `{"access_token":"caf\u00e9"}`), wantIs(ErrInvalidTokenResponse)},
		{"T-06 mac token", jsonHandler(200, `{"access_token":"a","token_type":"mac"}`), wantIs(ErrUnsupportedTokenType)},
		{"T-06 DPoP token", jsonHandler(200, `{"access_token":"a","token_type":"DPoP"}`), wantIs(ErrUnsupportedTokenType)},
		{"T-06 N_A token", jsonHandler(200, `{"access_token":"a","token_type":"N_A"}`), wantIs(ErrUnsupportedTokenType)},
		{"T-07 negative expires_in", jsonHandler(200, `{"access_token":"a","expires_in":-1}`), wantIs(ErrInvalidTokenResponse)},
		{"T-07 fractional expires_in", jsonHandler(200, `{"access_token":"a","expires_in":3600.5}`), wantIs(ErrInvalidTokenResponse)},
		{"T-07 huge expires_in", jsonHandler(200, `{"access_token":"a","expires_in":1e300}`), wantIs(ErrInvalidTokenResponse)},
		{"T-07 int64 max expires_in", jsonHandler(200, `{"access_token":"a","expires_in":9223372036854775807}`), wantIs(ErrInvalidTokenResponse)},
		{"T-07 non-numeric string expires_in", jsonHandler(200, `{"access_token":"a","expires_in":"abc"}`), wantIs(ErrInvalidTokenResponse)},
		{"T-08 duplicate access_token", jsonHandler(200, `{"access_token":"a","access_token":"b"}`), wantIs(ErrInvalidTokenResponse)},
		{"T-08 case variant", jsonHandler(200, `{"Access_Token":"a"}`), wantIs(ErrInvalidTokenResponse)},
		{"T-08 duplicate id_token", jsonHandler(200, `{"access_token":"a","id_token":"x","id_token":"y"}`), wantIs(ErrInvalidTokenResponse)},
		{"T-11 400 invalid_grant", jsonHandler(400, `{"error":"invalid_grant","error_description":"<script>\u001b[2J"}`), func(t *testing.T, err error) {
			var pe *ProviderError
			if !errors.As(err, &pe) || pe.StatusCode != 400 || pe.ErrorCode != "invalid_grant" {
				t.Fatalf("err = %v", err)
			}
			if strings.Contains(pe.ErrorDescription, "\x1b") {
				t.Errorf("description not sanitized: %q", pe.ErrorDescription)
			}
		}},
		{"T-12 HTML captive portal", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>"+secretCode+"</html>")
		}, wantIs(ErrInvalidTokenResponse)},
		{"T-12 form-encoded answer", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
			io.WriteString(w, "access_token="+secretAccess)
		}, wantIs(ErrInvalidTokenResponse)},
		{"T-13 200 with error", jsonHandler(200, `{"error":"bad_verification_code"}`), wantProviderStatus(200)},
		{"T-13 204", jsonHandler(204, ``), wantIs(ErrInvalidTokenResponse)},
		{"T-13 401 invalid_client", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", "Basic")
			jsonHandler(401, `{"error":"invalid_client"}`)(w, r)
		}, wantProviderStatus(401)},
		{"T-13 429", jsonHandler(429, ``), wantProviderStatus(429)},
		{"T-13 500 with echoed body", jsonHandler(500, `<pre>`+secretCode+secretVerifier+`</pre>`), wantProviderStatus(500)},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			followed.Store(false)
			c := testClient(t, tc.handler)
			_, err := c.exchangeCode(context.Background(), secretCode, flowSecrets{verifier: secretVerifier}, "http://127.0.0.1:1/callback")
			if err == nil {
				t.Fatal("exchange succeeded")
			}
			tc.check(t, err)
			assertNoSecret(t, err.Error())
			if followed.Load() {
				t.Error("redirect was followed")
			}
		})
	}
}

func wantIs(target error) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Errorf("err = %v, want %v", err, target)
		}
	}
}

func wantProviderStatus(status int) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var pe *ProviderError
		if !errors.As(err, &pe) || pe.StatusCode != status {
			t.Errorf("err = %v, want *ProviderError with status %d", err, status)
		}
	}
}

// TestExchangeTolerated covers what real providers send (T-06, T-07, T-10).
func TestExchangeTolerated(t *testing.T) {
	cases := []struct {
		name, body string
		check      func(t *testing.T, ts *TokenSet)
	}{
		{"lower-case bearer (GitHub)", `{"access_token":"a","token_type":"bearer"}`, func(t *testing.T, ts *TokenSet) {
			if ts.TokenType() != "Bearer" {
				t.Errorf("type = %q", ts.TokenType())
			}
		}},
		{"upper-case BEARER", `{"access_token":"a","token_type":"BEARER"}`, nil},
		{"missing token_type", `{"access_token":"a"}`, nil},
		{"expires_in as string", `{"access_token":"a","expires_in":"3600"}`, func(t *testing.T, ts *TokenSet) {
			if d := time.Until(ts.ExpiresAt()); d < 3590*time.Second || d > 3601*time.Second {
				t.Errorf("expires in %v", d)
			}
		}},
		{"no expires_in", `{"access_token":"a"}`, func(t *testing.T, ts *TokenSet) {
			if !ts.ExpiresAt().IsZero() || ts.IsExpired() || ts.ExpiresWithin(time.Hour) {
				t.Error("unknown expiry treated as known")
			}
		}},
		{"null members", `{"access_token":"a","refresh_token":null,"scope":null,"expires_in":null}`, nil},
		{"unknown members", `{"access_token":"a","foo":{"bar":[1,2]},"ext_expires_in":1}`, nil},
		{"narrower scope", `{"access_token":"a","scope":"read"}`, func(t *testing.T, ts *TokenSet) {
			if s := ts.Scopes(); len(s) != 1 || s[0] != "read" {
				t.Errorf("scopes = %v, want granted [read]", s)
			}
		}},
		{"refresh token", `{"access_token":"a","refresh_token":"r"}`, func(t *testing.T, ts *TokenSet) {
			if ts.RefreshToken() != "r" {
				t.Errorf("refresh = %q", ts.RefreshToken())
			}
		}},
		{"json with charset", `{"access_token":"a"}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testClient(t, jsonHandler(200, tc.body))
			ts, err := c.exchangeCode(context.Background(), "c", flowSecrets{verifier: "v"}, "http://127.0.0.1:1/callback")
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, ts)
			}
		})
	}
}

// TestExchangeNetworkFailures covers T-14 (no retry) and T-15 (deadline).
func TestExchangeNetworkFailures(t *testing.T) {
	var calls atomic.Int32
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close() // drop the connection after the request was sent
	}))
	if _, err := c.exchangeCode(context.Background(), secretCode, flowSecrets{verifier: secretVerifier}, "http://127.0.0.1:1/callback"); err == nil {
		t.Fatal("exchange succeeded on a dropped connection")
	} else {
		assertNoSecret(t, err.Error())
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("token endpoint called %d times, want exactly 1 (no retry of a single-use code)", n)
	}

	block := make(chan struct{})
	defer close(block)
	slow := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		io.WriteString(w, `{"access_token":`)
		w.(http.Flusher).Flush()
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := slow.exchangeCode(ctx, secretCode, flowSecrets{verifier: secretVerifier}, "http://127.0.0.1:1/callback")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("trickling server: err = %v, want a deadline error", err)
	}
}

// TestRefreshRequest checks the refresh grant: no scope is sent (R-fix of
// the Rust crate), the old refresh token is kept when none comes back
// a new one replaces it, and bad stored tokens are refused before
// sending.
func TestRefreshRequest(t *testing.T) {
	var form url.Values
	body := `{"access_token":"new","expires_in":60}`
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		form = r.PostForm
		jsonHandler(200, body)(w, r)
	}))
	ts, err := c.Refresh(context.Background(), "rt-1")
	if err != nil {
		t.Fatal(err)
	}
	if form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != "rt-1" || form.Get("client_id") != "cli" || form.Get("client_secret") != secretClient {
		t.Errorf("form = %v", form)
	}
	if form.Has("scope") {
		t.Error("refresh sent scope; an omitted scope keeps the original grant")
	}
	if ts.RefreshToken() != "rt-1" {
		t.Errorf("R-01: refresh token = %q, want the old one kept", ts.RefreshToken())
	}
	body = `{"access_token":"new","refresh_token":"rt-2"}`
	if ts, _ = c.Refresh(context.Background(), "rt-1"); ts.RefreshToken() != "rt-2" {
		t.Errorf("rotated refresh token = %q, want rt-2", ts.RefreshToken())
	}
	if _, err := c.Refresh(context.Background(), ""); !errors.Is(err, ErrNoRefreshToken) {
		t.Errorf("empty refresh token: err = %v", err)
	}
	form = nil
	if _, err := c.Refresh(context.Background(), "rt\r\nX: y"); err == nil || form != nil {
		t.Errorf("R-07: CR/LF refresh token was sent (err %v)", err)
	}
}

// TestRefreshIfExpiring covers the threshold rules and scope preservation.
func TestRefreshIfExpiring(t *testing.T) {
	var calls atomic.Int32
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		jsonHandler(200, `{"access_token":"new","expires_in":3600}`)(w, r)
	}))
	ctx := context.Background()
	soon := &TokenSet{accessToken: newSecret("a"), tokenType: "Bearer", refreshToken: newSecret("r"), expiresAt: time.Now().Add(30 * time.Second), scopes: []Scope{"granted"}}
	later := &TokenSet{accessToken: newSecret("a"), tokenType: "Bearer", refreshToken: newSecret("r"), expiresAt: time.Now().Add(time.Hour)}
	never := &TokenSet{accessToken: newSecret("a"), tokenType: "Bearer", refreshToken: newSecret("r")}
	noRT := &TokenSet{accessToken: newSecret("a"), tokenType: "Bearer", expiresAt: time.Now().Add(-time.Second)}

	out, err := c.RefreshIfExpiring(ctx, later, time.Minute)
	if err != nil || out.Refreshed() || out.TokenSet() != later {
		t.Errorf("far expiry: %v %v", out, err)
	}
	out, err = c.RefreshIfExpiring(ctx, never, time.Hour)
	if err != nil || out.Refreshed() {
		t.Errorf("no expiry: %v %v", out, err)
	}
	if calls.Load() != 0 {
		t.Fatal("refreshed when not needed")
	}
	out, err = c.RefreshIfExpiring(ctx, soon, time.Minute)
	if err != nil || !out.Refreshed() || out.TokenSet().AccessToken() != "new" {
		t.Fatalf("expiring: %v %v", out, err)
	}
	if s := out.TokenSet().Scopes(); len(s) != 1 || s[0] != "granted" {
		t.Errorf("scopes = %v, want the previously granted ones kept", s)
	}
	if out.TokenSet().RefreshToken() != "r" {
		t.Error("refresh token not kept")
	}
	if _, err := c.RefreshIfExpiring(ctx, noRT, time.Minute); !errors.Is(err, ErrNoRefreshToken) {
		t.Errorf("no refresh token: err = %v", err)
	}
	if _, err := c.RefreshIfExpiring(ctx, nil, time.Minute); err == nil {
		t.Error("nil token set accepted")
	}
}

// TestHTTPClientNotMutated covers L-04: a caller's client is copied, and
// the copy still refuses redirects.
func TestHTTPClientNotMutated(t *testing.T) {
	mine := &http.Client{}
	c, err := NewBuilder().ClientID("x").AuthURL("https://a.example/a").TokenURL("https://a.example/t").HTTPClient(mine).Build()
	if err != nil {
		t.Fatal(err)
	}
	if mine.CheckRedirect != nil {
		t.Error("caller's client was modified")
	}
	if c.httpClient == mine || c.httpClient.CheckRedirect == nil {
		t.Error("client not copied with a redirect policy")
	}
	if http.DefaultClient.CheckRedirect != nil || http.DefaultClient.Timeout != 0 {
		t.Error("http.DefaultClient was modified")
	}
	// The default client has timeouts and keeps no idle connection.
	d, _ := validBuilder().Build()
	tr, ok := d.httpClient.Transport.(*http.Transport)
	if d.httpClient.Timeout != tokenRequestTimeout || !ok || tr.TLSHandshakeTimeout != tlsHandshakeTimeout ||
		tr.ResponseHeaderTimeout != responseHeaderTimeout || !tr.DisableKeepAlives || tr == http.DefaultTransport {
		t.Errorf("default client = %+v", d.httpClient)
	}
}

// TestNoInsecureTLS covers T-03: no library file turns off certificate
// verification or weakens TLS.
func TestNoInsecureTLS(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Also: no signal handler, no shared default client or mux, no
		// package-level state set at init (ARCHITECTURE invariants).
		for _, bad := range []string{"InsecureSkipVerify", "VersionTLS10", "VersionTLS11", "VersionSSL30",
			`"os/signal"`, "http.DefaultClient", "http.DefaultServeMux", "http.HandleFunc", "func init()"} {
			if strings.Contains(string(data), bad) {
				t.Errorf("%s mentions %s", f, bad)
			}
		}
	}
}

// TestRefreshHostile covers: a refreshed grant cannot widen
// the scopes of the set it replaces, and refresh answers obey the rules of
// code exchanges (no redirect, size cap, strict JSON).
func TestRefreshHostile(t *testing.T) {
	prev := &TokenSet{accessToken: newSecret("a"), tokenType: "Bearer", refreshToken: newSecret(secretRefresh), expiresAt: time.Now(), scopes: []Scope{"read", "email"}}
	cases := []struct {
		id      string
		handler http.HandlerFunc
		check   func(*testing.T, error)
	}{
		{"R-05 wider scope", jsonHandler(200, `{"access_token":"b","scope":"read admin"}`), wantIs(ErrInvalidTokenResponse)},
		{"R-08 307", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, wantProviderStatus(307)},
		{"R-08 HTML", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>"+secretRefresh)
		}, wantIs(ErrInvalidTokenResponse)},
		{"R-08 oversized", jsonHandler(200, `{"access_token":"`+strings.Repeat("a", 2<<20)+`"}`), wantIs(ErrResponseTooLarge)},
		{"R-04 invalid_grant", jsonHandler(400, `{"error":"invalid_grant"}`), func(t *testing.T, err error) {
			var pe *ProviderError
			if !errors.As(err, &pe) || pe.ErrorCode != "invalid_grant" || !strings.Contains(err.Error(), "sign in again") {
				t.Errorf("err = %v", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			c := testClient(t, tc.handler)
			_, err := c.RefreshIfExpiring(context.Background(), prev, time.Hour)
			if err == nil {
				t.Fatal("refresh succeeded")
			}
			tc.check(t, err)
			assertNoSecret(t, err.Error())
		})
	}
	// Narrower and equal grants are fine, and Refresh without a previous
	// set cannot judge width (Google answers URLs for "email").
	for _, body := range []string{`{"access_token":"b","scope":"read"}`, `{"access_token":"b","scope":"email read"}`} {
		if _, err := testClient(t, jsonHandler(200, body)).RefreshIfExpiring(context.Background(), prev, time.Hour); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
	wide := `{"access_token":"b","scope":"openid https://www.googleapis.com/auth/userinfo.email"}`
	if ts, err := testClient(t, jsonHandler(200, wide)).Refresh(context.Background(), "rt"); err != nil || len(ts.Scopes()) != 2 {
		t.Errorf("Refresh with a provider's own scope names: %v", err)
	}
}

// slackParser reads Slack's OAuth v2 answer: the user's tokens are nested
// under authed_user and scopes are comma-separated.
func slackParser(body []byte) (TokenResponseFields, error) {
	var in struct {
		OK         bool   `json:"ok"`
		Error      string `json:"error"`
		AuthedUser struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			ExpiresIn    *int64 `json:"expires_in"`
			Scope        string `json:"scope"`
		} `json:"authed_user"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return TokenResponseFields{}, errors.New("not Slack's JSON")
	}
	if !in.OK {
		return TokenResponseFields{}, fmt.Errorf("slack error %q", in.Error)
	}
	u := in.AuthedUser
	return TokenResponseFields{AccessToken: u.AccessToken, RefreshToken: u.RefreshToken, ExpiresIn: u.ExpiresIn,
		Scope: strings.ReplaceAll(u.Scope, ",", " ")}, nil
}

// parserRefusal is a custom parser's error that quotes the body, as a
// careless parser's error might.
type parserRefusal struct{ body string }

func (e *parserRefusal) Error() string { return "cannot parse " + e.body }

// TestTokenResponseParserError: the error of a custom parser fails the
// exchange with ErrInvalidTokenResponse and a message saying the parser
// refused the answer, without the parser's text (which here quotes the
// body and its token), and stays reachable with errors.As and errors.Is.
func TestTokenResponseParserError(t *testing.T) {
	sentinel := errors.New("sentinel of the parser")
	for _, tc := range []struct {
		name   string
		parser TokenResponseParser
		check  func(*testing.T, error)
	}{
		{"typed error", func(body []byte) (TokenResponseFields, error) {
			return TokenResponseFields{}, &parserRefusal{string(body)}
		}, func(t *testing.T, err error) {
			var pr *parserRefusal
			if !errors.As(err, &pr) || !strings.Contains(pr.body, secretAccess) {
				t.Errorf("errors.As did not reach the parser's error: %v", err)
			}
		}},
		{"wrapped sentinel", func(body []byte) (TokenResponseFields, error) {
			return TokenResponseFields{}, fmt.Errorf("%w in %s", sentinel, body)
		}, func(t *testing.T, err error) {
			if !errors.Is(err, sentinel) {
				t.Errorf("errors.Is did not reach the parser's sentinel: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testClient(t, jsonHandler(200, `{"ok":false,"error":"invalid_code","token":"`+secretAccess+`"}`))
			c.parser = tc.parser
			_, err := c.exchangeCode(context.Background(), "code", flowSecrets{verifier: "v"}, "x")
			if !errors.Is(err, ErrInvalidTokenResponse) {
				t.Fatalf("err = %v, want ErrInvalidTokenResponse", err)
			}
			msg := err.Error()
			assertNoSecret(t, msg)
			if strings.Contains(msg, "invalid_code") || strings.Contains(msg, "cannot parse") || strings.Contains(msg, sentinel.Error()) {
				t.Errorf("the parser's text reached the message: %s", msg)
			}
			if !strings.Contains(msg, "TokenResponseParser refused the answer") || !strings.HasPrefix(msg, "loopauth: ") || strings.Count(msg, "loopauth: ") != 1 {
				t.Errorf("message = %q", msg)
			}
			tc.check(t, err)
			// Wrapped again by a caller, the message still holds no secret.
			assertNoSecret(t, fmt.Errorf("refresh: %w", err).Error())
		})
	}
}

// TestTokenResponseParser ports the Rust custom_token_response tests.
func TestTokenResponseParser(t *testing.T) {
	nested := `{"ok":true,"access_token":"xoxb-bot","token_type":"bot","authed_user":{"access_token":"xoxp-user","refresh_token":"xoxe-r","expires_in":43200,"scope":"channels:read,groups:read"}}`
	srv := jsonHandler(200, nested)
	c := testClient(t, srv)
	c.parser = slackParser
	ts, err := c.exchangeCode(context.Background(), "code", flowSecrets{verifier: "v"}, "https://127.0.0.1:1/callback")
	if err != nil {
		t.Fatal(err)
	}
	if ts.AccessToken() != "xoxp-user" || ts.RefreshToken() != "xoxe-r" || joinScopes(ts.Scopes()) != "channels:read groups:read" || ts.ExpiresAt().IsZero() {
		t.Errorf("token set = %v", ts)
	}
	if _, err := c.Refresh(context.Background(), "xoxe-r"); err != nil {
		t.Errorf("refresh through the parser: %v", err)
	}
	// The default parser takes the bot token's "bot" type for what it is.
	if _, err := testClient(t, srv).exchangeCode(context.Background(), "code", flowSecrets{verifier: "v"}, "x"); !errors.Is(err, ErrUnsupportedTokenType) {
		t.Errorf("default parser on Slack's answer: %v", err)
	}
	// A parser's result is still checked.
	ctrl := testClient(t, jsonHandler(200, `{"ok":true,"authed_user":{"access_token":"a\r\nb"}}`))
	ctrl.parser = slackParser
	if _, err := ctrl.exchangeCode(context.Background(), "code", flowSecrets{verifier: "v"}, "x"); !errors.Is(err, ErrInvalidTokenResponse) {
		t.Errorf("parser result with CR/LF: %v", err)
	}
}

// TestExpiresInZero: expires_in 0 means the access token has already
// expired (RFC 6749 §5.1), from a standard answer or a custom parser, so
// it is refreshed before use; only an absent expires_in leaves the expiry
// unknown.
func TestExpiresInZero(t *testing.T) {
	ctx := context.Background()
	var refreshes atomic.Int32
	handler := func(first string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			if r.PostForm.Get("grant_type") == "refresh_token" {
				refreshes.Add(1)
				jsonHandler(200, `{"access_token":"second","expires_in":3600}`)(w, r)
				return
			}
			jsonHandler(200, first)(w, r)
		}
	}
	zero, absent := int64(0), (*int64)(nil)
	for _, tc := range []struct {
		name    string
		body    string
		parsed  **int64 // set: a custom parser answers with this ExpiresIn
		expired bool
	}{
		{"expires_in 0", `{"access_token":"first","refresh_token":"r","expires_in":0}`, nil, true},
		{`expires_in "0"`, `{"access_token":"first","refresh_token":"r","expires_in":"0"}`, nil, true},
		{"expires_in absent", `{"access_token":"first","refresh_token":"r"}`, nil, false},
		{"expires_in null", `{"access_token":"first","refresh_token":"r","expires_in":null}`, nil, false},
		{"parser: ExpiresIn 0", `{}`, func() **int64 { p := &zero; return &p }(), true},
		{"parser: ExpiresIn nil", `{}`, &absent, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refreshes.Store(0)
			c := testClient(t, handler(tc.body))
			if tc.parsed != nil {
				in := *tc.parsed
				c.parser = func(body []byte) (TokenResponseFields, error) {
					if strings.Contains(string(body), "second") {
						n := int64(3600)
						return TokenResponseFields{AccessToken: "second", ExpiresIn: &n}, nil
					}
					return TokenResponseFields{AccessToken: "first", RefreshToken: "r", ExpiresIn: in}, nil
				}
			}
			before := time.Now()
			ts, err := c.exchangeCode(ctx, "code", flowSecrets{verifier: "v"}, "http://127.0.0.1:1/callback")
			if err != nil {
				t.Fatal(err)
			}
			if !tc.expired {
				if !ts.ExpiresAt().IsZero() || ts.IsExpired() || ts.ExpiresWithin(time.Hour) {
					t.Fatalf("unknown expiry taken as known: expires %v", ts.ExpiresAt())
				}
				if out, err := c.RefreshIfExpiring(ctx, ts, time.Hour); err != nil || out.Refreshed() {
					t.Errorf("a set of unknown expiry was refreshed: %v", err)
				}
				return
			}
			// The expiry is the time the request was sent.
			if at := ts.ExpiresAt(); at.IsZero() || at.Before(before) || at.After(time.Now()) {
				t.Fatalf("expires at %v, want the time of the request (after %v)", at, before)
			}
			if !ts.IsExpired() || !ts.ExpiresWithin(0) {
				t.Errorf("IsExpired = %v, ExpiresWithin(0) = %v; want both true", ts.IsExpired(), ts.ExpiresWithin(0))
			}
			out, err := c.RefreshIfExpiring(ctx, ts, 0)
			if err != nil || !out.Refreshed() || out.TokenSet().AccessToken() != "second" {
				t.Fatalf("RefreshIfExpiring(0) did not refresh an expired set: %v", err)
			}
			// Token does not hand out the expired set either.
			store := NewMemoryStore()
			if err := store.Save(ctx, ts); err != nil {
				t.Fatal(err)
			}
			got, err := c.Token(ctx, store)
			if err != nil || got.AccessToken() != "second" {
				t.Fatalf("Token returned the expired set (err %v)", err)
			}
			if n := refreshes.Load(); n != 2 {
				t.Errorf("%d refreshes, want 2", n)
			}
		})
	}
}
