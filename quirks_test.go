package loopauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopauth/loopauth"
	"github.com/loopauth/loopauth/loopauthtest"
)

// The provider quirks of the README's Providers table, each imitated by
// loopauthtest and checked for what a user of that provider needs. The
// standards path itself is proven against a certified provider by
// `make interop`.
func TestProviderQuirks(t *testing.T) {
	for _, tt := range []struct {
		provider string
		run      func(t *testing.T)
	}{
		{"Google", testGoogleQuirks},
		{"GitHub", testGitHubQuirks},
		{"Okta", func(t *testing.T) {
			// A custom authorization server: a path, no trailing slash.
			testExactIssuer(t, "/oauth2/default", func(iss string) string { return iss + "/" }, false)
		}},
		{"Auth0", func(t *testing.T) {
			// An origin with a trailing slash, which discovery may drop.
			testExactIssuer(t, "/", func(iss string) string { return strings.TrimSuffix(iss, "/") }, true)
		}},
		{"Keycloak", testKeycloakQuirks},
	} {
		t.Run(tt.provider, tt.run)
	}
}

// quirkBuild finishes a builder the way every quirk test does: the
// provider's user agent as the browser, nothing printed, and a bound.
func quirkBuild(t *testing.T, b *loopauth.CLITokenClientBuilder, opener loopauth.BrowserOpener) *loopauth.CLITokenClient {
	t.Helper()
	c, err := b.BrowserOpener(opener).Stderr(io.Discard).Timeout(10 * time.Second).Build()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func discover(t *testing.T, issuer string) *loopauth.OpenIDConfiguration {
	t.Helper()
	cfg, err := loopauth.FetchOpenIDConfiguration(context.Background(), issuer)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// countingOpener wraps the provider's user agent and counts the sign-ins.
func countingOpener(p *loopauthtest.Provider, n *atomic.Int32) loopauth.BrowserOpener {
	return func(ctx context.Context, u string) error {
		n.Add(1)
		return p.Browser()(ctx, u)
	}
}

// Google: a client secret even for a desktop app; a refresh token only
// with access_type=offline (and prompt=consent after the first consent);
// refresh answers without a refresh token, and the old one stays good.
func testGoogleQuirks(t *testing.T) {
	const id, secret = "1234-abc.apps.googleusercontent.com", "GOCSPX-test-only"
	p := loopauthtest.NewProvider(t,
		loopauthtest.WithClient(id, secret),
		loopauthtest.WithSigningAlg(loopauthtest.AlgRS256),
		loopauthtest.WithRefreshTokenOnlyWhen(func(q url.Values) bool {
			return q.Get("access_type") == "offline" && q.Get("prompt") == "consent"
		}),
		loopauthtest.WithoutRefreshTokenOnRefresh())
	cfg := discover(t, p.Issuer())
	google := func(secret string, offline bool) *loopauth.CLITokenClient {
		b := loopauth.FromOpenIDConfiguration(cfg).ClientID(id).ClientSecret(secret).
			WithOpenIDConfigurationJWKSValidator(cfg).AddScopes(loopauth.ScopeEmail)
		if offline {
			b.OnAuthURL(func(e *loopauth.ExtraAuthParams) {
				e.Append("access_type", "offline").Append("prompt", "consent")
			})
		}
		return quirkBuild(t, b, p.Browser())
	}
	ctx := context.Background()

	t.Run("the client secret is required", func(t *testing.T) {
		_, err := google("", true).RunAuthorizationFlow(ctx)
		var pe *loopauth.ProviderError
		if !errors.As(err, &pe) || pe.ErrorCode != "invalid_client" {
			t.Fatalf("without the secret: err = %v, want a ProviderError invalid_client", err)
		}
	})

	t.Run("no refresh token without access_type=offline", func(t *testing.T) {
		ts, err := google(secret, false).RunAuthorizationFlow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ts.RefreshToken() != "" {
			t.Error("a refresh token without access_type=offline: the imitation is wrong")
		}
	})

	t.Run("offline access and a refresh that keeps the refresh token", func(t *testing.T) {
		c := google(secret, true)
		ts, err := c.RunAuthorizationFlow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		reqs := p.AuthorizeRequests()
		if q := reqs[len(reqs)-1]; q.Get("access_type") != "offline" || q.Get("prompt") != "consent" {
			t.Errorf("authorization request = %v, want access_type=offline and prompt=consent", q)
		}
		rt := ts.RefreshToken()
		if rt == "" {
			t.Fatal("no refresh token with access_type=offline and prompt=consent")
		}
		// Twice: the second refresh proves the kept token is the one the
		// provider still honours.
		for i := 0; i < 2; i++ {
			out, err := c.RefreshIfExpiring(ctx, ts, 2*time.Hour) // longer than the 1 h lifetime
			if err != nil {
				t.Fatalf("refresh %d: %v", i+1, err)
			}
			next := out.TokenSet()
			if !out.Refreshed() || next.AccessToken() == ts.AccessToken() {
				t.Fatalf("refresh %d did not happen", i+1)
			}
			if next.RefreshToken() != rt {
				t.Fatalf("refresh %d: the refresh token was not kept", i+1)
			}
			if next.IDToken() == nil || next.IDToken().Claims().Subject != ts.IDToken().Claims().Subject {
				t.Errorf("refresh %d: ID token %v", i+1, next.IDToken())
			}
			ts = next
		}
		treqs := p.TokenRequests()
		if last := treqs[len(treqs)-1]; last.Get("grant_type") != "refresh_token" || last.Get("refresh_token") != rt {
			t.Error("the last refresh did not send the original refresh token")
		}
	})
}

// acceptRecorder records the Accept header of the token requests: GitHub
// answers in form encoding unless asked for JSON.
type acceptRecorder struct {
	base   http.RoundTripper
	mu     sync.Mutex
	accept []string
}

func (r *acceptRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost {
		r.mu.Lock()
		r.accept = append(r.accept, req.Header.Get("Accept"))
		r.mu.Unlock()
	}
	return r.base.RoundTrip(req)
}

// GitHub: plain OAuth 2.0 (no discovery, no ID token); errors as HTTP 200
// with an error member; no expires_in (nor refresh token) unless token
// expiration is enabled for the app.
func testGitHubQuirks(t *testing.T) {
	const id, secret = "Iv1.0123456789abcdef", "github-test-only"
	github := func(t *testing.T, p *loopauthtest.Provider, opener loopauth.BrowserOpener, rt http.RoundTripper) *loopauth.CLITokenClient {
		b := loopauth.NewBuilder().ClientID(id).ClientSecret(secret).AuthURL(p.AuthURL()).TokenURL(p.TokenURL()).
			AddScopes("read:user")
		if rt != nil {
			b.HTTPClient(&http.Client{Transport: rt})
		}
		if opener == nil {
			opener = p.Browser()
		}
		return quirkBuild(t, b, opener)
	}
	// Token expiration off: no expires_in, no refresh token, scope with
	// GitHub's spelling, token_type in lower case.
	nonExpiring := []loopauthtest.Option{
		loopauthtest.WithClient(id, secret),
		loopauthtest.WithoutRefreshToken(),
		loopauthtest.WithTokenResponse(func(_ string, resp map[string]any) {
			delete(resp, "expires_in")
			resp["token_type"] = "bearer"
		}),
	}
	ctx := context.Background()

	t.Run("a plain OAuth token set without expiry", func(t *testing.T) {
		p := loopauthtest.NewProvider(t, nonExpiring...)
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		rec := &acceptRecorder{base: tr}
		var opens atomic.Int32
		c := github(t, p, countingOpener(p, &opens), rec)
		ts, err := c.RunAuthorizationFlow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		q := p.AuthorizeRequests()[0]
		if q.Get("scope") != "read:user" || q.Has("nonce") {
			t.Errorf("authorization request = %v, want scope read:user and no nonce", q)
		}
		if rec.accept[0] != "application/json" {
			t.Errorf("token request Accept = %q, want application/json", rec.accept[0])
		}
		if ts.IDToken() != nil || ts.IDTokenRaw() != "" || ts.TokenType() != "Bearer" || ts.RefreshToken() != "" {
			t.Errorf("token set = %v", ts)
		}
		if !ts.ExpiresAt().IsZero() || ts.IsExpired() || ts.ExpiresWithin(365*24*time.Hour) {
			t.Errorf("expiry = %v, want unknown, never expired", ts.ExpiresAt())
		}
		// A set without expiry is never refreshed ahead of time, and Token
		// uses it as it is: no token request, no browser.
		out, err := c.RefreshIfExpiring(ctx, ts, 24*time.Hour)
		if err != nil || out.Refreshed() || out.TokenSet() != ts {
			t.Errorf("RefreshIfExpiring = %v, %v", out.Refreshed(), err)
		}
		store := loopauth.NewMemoryStore()
		if err := store.Save(ctx, ts); err != nil {
			t.Fatal(err)
		}
		got, err := c.Token(ctx, store)
		if err != nil || got.AccessToken() != ts.AccessToken() {
			t.Errorf("Token = %v, %v; want the stored set", got, err)
		}
		if n := len(p.TokenRequests()); n != 1 || opens.Load() != 1 {
			t.Errorf("%d token requests and %d sign-ins, want 1 and 1", n, opens.Load())
		}
	})

	t.Run("used until rejected, then a new sign-in", func(t *testing.T) {
		p := loopauthtest.NewProvider(t, nonExpiring...)
		var opens atomic.Int32
		c := github(t, p, countingOpener(p, &opens), nil)
		// The API rejects the first token from its second use on, as
		// GitHub does once the user revokes the app's access.
		var mu sync.Mutex
		var first string
		uses := 0
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			mu.Lock()
			defer mu.Unlock()
			if first == "" {
				first = tok
			}
			if tok == first {
				uses++
			}
			if _, ok := p.CheckAccessToken(tok); !ok || tok == first && uses > 1 {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, "ok")
		}))
		t.Cleanup(api.Close)
		hc := c.AuthorizedHTTPClient(loopauth.NewMemoryStore())
		for i := 0; i < 2; i++ {
			resp, err := hc.Get(api.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("API call %d: %s", i+1, resp.Status)
			}
		}
		if opens.Load() != 2 {
			t.Errorf("%d sign-ins, want 2 (the second after the 401)", opens.Load())
		}
	})

	errorBody := func(code, desc string) string {
		b, _ := json.Marshal(map[string]string{
			"error": code, "error_description": desc,
			"error_uri": "https://docs.github.com/apps/oauth-errors#" + code,
		})
		return string(b)
	}
	for _, tt := range []struct {
		name    string
		opt     loopauthtest.Option
		code    string
		refresh bool // the error answers the refresh, not the sign-in
	}{
		{"bad_verification_code as HTTP 200",
			loopauthtest.WithRawTokenResponse(200, "application/json; charset=utf-8",
				errorBody("bad_verification_code", "The code passed is incorrect or expired.")),
			"bad_verification_code", false},
		{"incorrect_client_credentials as HTTP 200",
			loopauthtest.WithCodeExchangeError(200, "incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect."),
			"incorrect_client_credentials", false},
		{"bad_refresh_token as HTTP 200",
			loopauthtest.WithRefreshError(200, "bad_refresh_token", "The refresh token passed is incorrect or expired."),
			"bad_refresh_token", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Token expiration on: 8 h access tokens, refresh tokens.
			p := loopauthtest.NewProvider(t, loopauthtest.WithClient(id, secret), tt.opt,
				loopauthtest.WithTokenLifetime(8*time.Hour),
				loopauthtest.WithTokenResponse(func(_ string, resp map[string]any) {
					resp["refresh_token_expires_in"] = 15897600
				}))
			c := github(t, p, nil, nil)
			ts, err := c.RunAuthorizationFlow(ctx)
			if tt.refresh {
				if err != nil {
					t.Fatal(err)
				}
				if left := time.Until(ts.ExpiresAt()); ts.RefreshToken() == "" || left < 7*time.Hour || left > 8*time.Hour {
					t.Fatalf("token set = %v, want 8 h and a refresh token", ts)
				}
				_, err = c.RefreshIfExpiring(ctx, ts, 9*time.Hour)
			}
			var pe *loopauth.ProviderError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ProviderError", err)
			}
			if pe.ErrorCode != tt.code || pe.StatusCode != http.StatusOK || pe.ErrorDescription == "" {
				t.Errorf("ProviderError = %+v, want %s with status 200", pe, tt.code)
			}
			if !strings.Contains(err.Error(), tt.code) {
				t.Errorf("error %q does not name %s", err, tt.code)
			}
		})
	}
}

// expiredCopy returns ts as a store would hold it hours later: the same
// tokens, the access token expired.
func expiredCopy(t *testing.T, ts *loopauth.TokenSet) *loopauth.TokenSet {
	t.Helper()
	data, err := json.Marshal(ts)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m["expires_at"] = time.Now().Add(-time.Minute).Unix()
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	var out loopauth.TokenSet
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// A GitHub refresh token that has expired (after six months) or was used
// already is answered with HTTP 200 and bad_refresh_token, GitHub's
// spelling of RFC 6749's invalid_grant: Token must sign in again, as it
// does for invalid_grant, instead of failing every command until the user
// deletes the stored tokens.
func TestGitHubDeadRefreshTokenSignsInAgain(t *testing.T) {
	const id, secret = "Iv1.0123456789abcdef", "github-test-only"
	p := loopauthtest.NewProvider(t, loopauthtest.WithClient(id, secret),
		loopauthtest.WithRefreshError(200, "bad_refresh_token", "The refresh token passed is incorrect or expired."),
		loopauthtest.WithTokenLifetime(8*time.Hour))
	var opens atomic.Int32
	c := quirkBuild(t, loopauth.NewBuilder().ClientID(id).ClientSecret(secret).AuthURL(p.AuthURL()).TokenURL(p.TokenURL()).
		AddScopes("read:user"), countingOpener(p, &opens))
	ctx := context.Background()
	ts, err := c.RunAuthorizationFlow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store := loopauth.NewMemoryStore()
	if err := store.Save(ctx, expiredCopy(t, ts)); err != nil {
		t.Fatal(err)
	}
	got, err := c.Token(ctx, store)
	if err != nil {
		t.Fatalf("Token: %v; want a new sign-in after bad_refresh_token", err)
	}
	if opens.Load() != 2 || got.AccessToken() == ts.AccessToken() {
		t.Errorf("%d sign-ins, new token %v; want a second sign-in", opens.Load(), got.AccessToken() != ts.AccessToken())
	}
	if n := len(p.TokenRequests()); n != 3 {
		t.Errorf("%d token requests, want 3 (code, refresh, code)", n)
	}
}

// Okta and Auth0: the issuer is compared byte for byte, a trailing slash
// included. path is the provider's issuer path; other gives the issuer
// with the slash the other way. Discovering from the other form works
// only for a bare origin (otherDiscovers): its trailing slash is no
// difference (Discovery §4.1), a path's is.
func testExactIssuer(t *testing.T, path string, other func(iss string) string, otherDiscovers bool) {
	var wrongIss atomic.Bool
	p := loopauthtest.NewProvider(t, loopauthtest.WithIssuerPath(path),
		loopauthtest.WithIDTokenClaims(func(c map[string]any) {
			if wrongIss.Load() {
				c["iss"] = other(c["iss"].(string))
			}
		}))
	iss, otherIss := p.Issuer(), other(p.Issuer())
	ctx := context.Background()

	cfg := discover(t, iss)
	if cfg.Issuer != iss {
		t.Errorf("discovered issuer %q, want %q", cfg.Issuer, iss)
	}
	switch cfg2, err := loopauth.FetchOpenIDConfiguration(ctx, otherIss); {
	case otherDiscovers && (err != nil || cfg2.Issuer != iss):
		t.Errorf("discovery from %q: %v; want the document's issuer %q", otherIss, err, iss)
	case !otherDiscovers && !errors.Is(err, loopauth.ErrInvalidIssuer):
		t.Errorf("discovery from %q: err = %v, want ErrInvalidIssuer", otherIss, err)
	}

	fromDiscovery := func() *loopauth.CLITokenClient {
		return quirkBuild(t, loopauth.FromOpenIDConfiguration(cfg).ClientID("cli").
			WithOpenIDConfigurationJWKSValidator(cfg), p.Browser())
	}
	ts, err := fromDiscovery().RunAuthorizationFlow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.IDToken().Claims().Issuer; got != iss {
		t.Errorf("ID token iss = %q, want %q", got, iss)
	}

	// An ID token whose iss has the slash the other way is refused.
	wrongIss.Store(true)
	if _, err := fromDiscovery().RunAuthorizationFlow(ctx); !errors.Is(err, loopauth.ErrInvalidIssuer) {
		t.Errorf("ID token iss %q: err = %v, want ErrInvalidIssuer", otherIss, err)
	}
	wrongIss.Store(false)

	// So is a correct token when the configured issuer has the slash the
	// other way.
	c := quirkBuild(t, loopauth.NewBuilder().ClientID("cli").AuthURL(p.AuthURL()).TokenURL(p.TokenURL()).
		WithOpenIDScope().Issuer(otherIss).JWKSValidator(loopauth.NewRemoteJWKSValidator(p.JWKSURL(), "cli")), p.Browser())
	if _, err := c.RunAuthorizationFlow(ctx); !errors.Is(err, loopauth.ErrInvalidIssuer) {
		t.Errorf("Issuer(%q), tokens from %q: err = %v, want ErrInvalidIssuer", otherIss, iss, err)
	}
}

// Keycloak: an issuer with a path, .../realms/NAME, discovery below it,
// the RFC 9207 iss parameter, and offline_access for a refresh token (an
// offline token; the session-bound refresh token Keycloak also issues
// without it is not modelled).
func testKeycloakQuirks(t *testing.T) {
	p := loopauthtest.NewProvider(t,
		loopauthtest.WithIssuerPath("/realms/acme"),
		loopauthtest.WithIssParameter(),
		loopauthtest.WithSigningAlg(loopauthtest.AlgRS256),
		loopauthtest.WithRefreshTokenOnlyWhen(func(q url.Values) bool {
			return slices.Contains(strings.Fields(q.Get("scope")), "offline_access")
		}))
	ctx := context.Background()
	iss := p.Issuer()
	if !strings.HasSuffix(iss, "/realms/acme") || p.DiscoveryURL() != iss+"/.well-known/openid-configuration" {
		t.Fatalf("issuer %q, discovery %q", iss, p.DiscoveryURL())
	}
	cfg := discover(t, iss)
	if cfg.Issuer != iss || !strings.HasPrefix(cfg.AuthorizationEndpoint, iss+"/") || !cfg.AuthorizationResponseISSParameterSupported {
		t.Errorf("configuration = %+v", cfg)
	}
	// The realm with a slash typed after it is another issuer.
	if _, err := loopauth.FetchOpenIDConfiguration(ctx, iss+"/"); !errors.Is(err, loopauth.ErrInvalidIssuer) {
		t.Errorf("discovery from %q: err = %v, want ErrInvalidIssuer", iss+"/", err)
	}

	for _, tt := range []struct {
		name        string
		scopes      []loopauth.Scope
		wantRefresh bool
	}{
		{"offline_access", []loopauth.Scope{loopauth.ScopeEmail, loopauth.ScopeOfflineAccess}, true},
		{"without offline_access", []loopauth.Scope{loopauth.ScopeEmail}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := quirkBuild(t, loopauth.FromOpenIDConfiguration(cfg).ClientID("cli").
				WithOpenIDConfigurationJWKSValidator(cfg).AddScopes(tt.scopes...), p.Browser())
			ts, err := c.RunAuthorizationFlow(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ts.IDToken().Claims().Issuer != iss {
				t.Errorf("ID token iss = %q", ts.IDToken().Claims().Issuer)
			}
			if (ts.RefreshToken() != "") != tt.wantRefresh {
				t.Fatalf("refresh token present = %v, want %v", ts.RefreshToken() != "", tt.wantRefresh)
			}
			if !tt.wantRefresh {
				return
			}
			if !slices.Contains(ts.Scopes(), loopauth.ScopeOfflineAccess) {
				t.Errorf("scopes = %v", ts.Scopes())
			}
			out, err := c.RefreshIfExpiring(ctx, ts, 2*time.Hour)
			if err != nil || !out.Refreshed() || out.TokenSet().RefreshToken() == "" {
				t.Fatalf("refresh: %v", err)
			}
		})
	}
}
