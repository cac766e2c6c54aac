package loopauthtest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestInjectedTokenErrors(t *testing.T) {
	tests := []struct {
		name                string
		opt                 Option
		codeCode, refrCode  string // "" means the grant succeeds
		codeStatus, refrSts int
	}{
		{"both", WithTokenError(503, "temporarily_unavailable", "down"), "temporarily_unavailable", "temporarily_unavailable", 503, 503},
		// The refresh is processed for real: the token was never issued.
		{"code only", WithCodeExchangeError(500, "server_error", "nope"), "server_error", "invalid_grant", 500, 400},
		{"code only, default status", WithCodeExchangeError(0, "invalid_grant", ""), "invalid_grant", "invalid_grant", 400, 400},
		{"refresh only", WithRefreshError(401, "invalid_client", ""), "", "invalid_client", 200, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProvider(t, tt.opt)
			cb := newCallback(t)
			f := newFlow(t, cb.URL())
			code := authorize(t, p, f, cb)
			r := postToken(t, p, f.exchangeForm(code))
			rt := "never-issued"
			if tt.codeCode == "" {
				wantTokens(t, r)
				rt = r.str("refresh_token")
			} else {
				wantTokenError(t, r, tt.codeStatus, tt.codeCode)
			}
			r = postToken(t, p, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"cli"}})
			if tt.refrCode == "" {
				wantTokens(t, r)
			} else {
				wantTokenError(t, r, tt.refrSts, tt.refrCode)
			}
			if len(p.TokenRequests()) != 2 {
				t.Errorf("TokenRequests() has %d entries, want 2", len(p.TokenRequests()))
			}
		})
	}
}

func TestRawTokenResponse(t *testing.T) {
	for _, ct := range []string{"text/html", ""} {
		p := NewProvider(t, WithRawTokenResponse(502, ct, "<html>bad gateway"))
		r := postToken(t, p, url.Values{"grant_type": {"authorization_code"}})
		if r.status != 502 || string(r.raw) != "<html>bad gateway" || r.header.Get("Content-Type") != ct {
			t.Fatalf("raw response: %d %q %q", r.status, r.header.Get("Content-Type"), r.raw)
		}
	}
}

func TestTokenResponseHook(t *testing.T) {
	p := NewProvider(t, WithTokenResponse(func(grantType string, resp map[string]any) {
		resp["expires_in"] = "3600"
		resp["token_type"] = "bearer"
		delete(resp, "scope")
		resp["x_grant"] = grantType
	}))
	cb := newCallback(t)
	r := login(t, p, newFlow(t, cb.URL()), cb)
	if r.body["expires_in"] != "3600" || r.str("token_type") != "bearer" || r.str("x_grant") != "authorization_code" {
		t.Fatalf("hook not applied: %s", r.raw)
	}
	if _, ok := r.body["scope"]; ok {
		t.Fatalf("scope not dropped: %s", r.raw)
	}
}

func TestTokenAndIDTokenOptions(t *testing.T) {
	issued := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name  string
		opts  []Option
		check func(t *testing.T, p *Provider, r tokenResult)
	}{
		{"lifetimes and clock", []Option{WithNow(func() time.Time { return issued }), WithTokenLifetime(90 * time.Second), WithIDTokenLifetime(time.Minute)},
			func(t *testing.T, p *Provider, r tokenResult) {
				_, c := verifyJWT(t, p, r.str("id_token"))
				if r.body["expires_in"] != float64(90) || num(t, c, "iat") != issued.Unix() || num(t, c, "exp") != issued.Unix()+60 || num(t, c, "auth_time") != issued.Unix() {
					t.Errorf("expires_in %v, claims %v", r.body["expires_in"], c)
				}
			}},
		{"claims hook", []Option{WithIDTokenClaims(func(c map[string]any) { c["aud"] = "someone-else"; delete(c, "nonce") })},
			func(t *testing.T, p *Provider, r tokenResult) {
				_, c := verifyJWT(t, p, r.str("id_token"))
				if _, has := c["nonce"]; c["aud"] != "someone-else" || has {
					t.Errorf("claims %v", c)
				}
			}},
		{"no ID token", []Option{WithoutIDToken()},
			func(t *testing.T, _ *Provider, r tokenResult) {
				if _, ok := r.body["id_token"]; ok {
					t.Errorf("id_token present: %s", r.raw)
				}
			}},
		{"user", []Option{WithUser(User{Subject: "alice", Email: "alice@example.org"})},
			func(t *testing.T, p *Provider, r tokenResult) {
				_, c := verifyJWT(t, p, r.str("id_token"))
				if c["sub"] != "alice" || c["email"] != "alice@example.org" || c["name"] != "Test User" {
					t.Errorf("claims %v", c)
				}
			}},
		{"granted scope", []Option{WithGrantedScope("openid")},
			func(t *testing.T, _ *Provider, r tokenResult) {
				if r.str("scope") != "openid" {
					t.Errorf("scope %q", r.str("scope"))
				}
			}},
		{"registered client is aud", []Option{WithClient("cli", "")},
			func(t *testing.T, p *Provider, r tokenResult) {
				if _, c := verifyJWT(t, p, r.str("id_token")); c["aud"] != "cli" {
					t.Errorf("aud %v", c["aud"])
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProvider(t, tt.opts...)
			cb := newCallback(t)
			tt.check(t, p, login(t, p, newFlow(t, cb.URL()), cb))
		})
	}
	t.Run("no openid, no ID token", func(t *testing.T) {
		p := NewProvider(t)
		cb := newCallback(t)
		f := newFlow(t, cb.URL())
		f.scope = "email"
		if r := login(t, p, f, cb); r.body["id_token"] != nil {
			t.Errorf("id_token without openid: %s", r.raw)
		}
	})
}

func TestDelays(t *testing.T) {
	t.Run("token delay", func(t *testing.T) {
		p := NewProvider(t, WithTokenDelay(150*time.Millisecond))
		start := time.Now()
		postToken(t, p, url.Values{"grant_type": {"refresh_token"}})
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Fatalf("token answered after %v", d)
		}
	})
	t.Run("authorize delay and ctx", func(t *testing.T) {
		p := NewProvider(t, WithAuthorizeDelay(time.Minute))
		f := newFlow(t, "http://127.0.0.1:1/cb")
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := p.Browser()(ctx, authURL(p, f.params()))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("Browser = %v after %v, want a prompt deadline error", err, time.Since(start))
		}
	})
	t.Run("close ends delay", func(t *testing.T) {
		p, err := StartProvider(WithTokenDelay(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := http.Post(p.TokenURL(), "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
			if err == nil {
				resp.Body.Close()
			}
		}()
		for len(p.TokenRequests()) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		start := time.Now()
		p.Close()
		<-done
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Close took %v", d)
		}
	})
}

func TestConsentPage(t *testing.T) {
	p := NewProvider(t, WithConsentPage())
	cb := newCallback(t)

	open := func(t *testing.T, f *flow) string {
		t.Helper()
		resp, body := get(t, authURL(p, f.params()))
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "form-action 'self'") {
			t.Fatalf("consent page: %s, CSP %q", resp.Status, csp)
		}
		for _, want := range []string{"Approve", "Deny", `action="/authorize/decision"`, "offline_access"} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if !strings.Contains(csp, "form-action 'self' "+cb.srv.URL+";") {
			t.Errorf("CSP %q must let the form's redirect reach %s", csp, cb.srv.URL)
		}
		if strings.Contains(body, "<script") || strings.Contains(body, "http://") && strings.Contains(body, "src=") {
			t.Error("page loads scripts or external resources")
		}
		id := resp.Header.Get(consentHeader)
		if id == "" || !strings.Contains(body, `value="`+id+`"`) {
			t.Fatalf("request id %q missing from form", id)
		}
		return id
	}
	decide := func(t *testing.T, id, decision string) tokenResult {
		return postForm(t, p.AuthURL()+"/decision", url.Values{"request_id": {id}, "decision": {decision}}, nil)
	}
	query := func(t *testing.T, r tokenResult) url.Values {
		t.Helper()
		if r.status != http.StatusSeeOther {
			t.Fatalf("decision answered %d %s", r.status, r.raw)
		}
		u, err := url.Parse(r.header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		return u.Query()
	}

	t.Run("approve", func(t *testing.T) {
		f := newFlow(t, cb.URL())
		id := open(t, f)
		q := query(t, decide(t, id, "approve"))
		if q.Get("state") != f.state || q.Get("code") == "" {
			t.Fatalf("approve redirect %v", q)
		}
		wantTokens(t, postToken(t, p, f.exchangeForm(q.Get("code"))))
		if r := decide(t, id, "approve"); r.status != 400 {
			t.Fatalf("reused request id: %d", r.status)
		}
	})
	t.Run("deny", func(t *testing.T) {
		f := newFlow(t, cb.URL())
		q := query(t, decide(t, open(t, f), "deny"))
		if q.Get("error") != "access_denied" || q.Get("state") != f.state || q.Get("code") != "" {
			t.Fatalf("deny redirect %v", q)
		}
	})
	t.Run("forged id and bad decision", func(t *testing.T) {
		if r := decide(t, "forged", "approve"); r.status != 400 {
			t.Fatalf("forged id: %d", r.status)
		}
		if r := decide(t, open(t, newFlow(t, cb.URL())), "maybe"); r.status != 400 {
			t.Fatalf("bad decision: %d", r.status)
		}
	})
	t.Run("escapes client id", func(t *testing.T) {
		f := newFlow(t, cb.URL())
		f.clientID = `<img src=x onerror=alert(1)>`
		_, body := get(t, authURL(p, f.params()))
		if strings.Contains(body, "<img") {
			t.Fatal("client_id not escaped")
		}
	})
	t.Run("Browser approves", func(t *testing.T) {
		f := newFlow(t, cb.URL())
		code := authorize(t, p, f, cb)
		wantTokens(t, postToken(t, p, f.exchangeForm(code)))
	})
}

func TestBrowser(t *testing.T) {
	p := NewProvider(t)
	ctx := context.Background()
	t.Run("foreign auth URL", func(t *testing.T) {
		other := NewProvider(t)
		err := p.Browser()(ctx, other.AuthURL()+"?x=1")
		if err == nil || !strings.Contains(err.Error(), "not this provider") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("redirect off loopback", func(t *testing.T) {
		evil := httptest.NewServer(http.RedirectHandler("http://example.com/steal", http.StatusFound))
		defer evil.Close()
		err := p.Browser()(ctx, authURL(p, newFlow(t, evil.URL+"/cb").params()))
		if err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("callback error status", func(t *testing.T) {
		cb := newCallback(t)
		cb.status = http.StatusInternalServerError
		err := p.Browser()(ctx, authURL(p, newFlow(t, cb.URL()).params()))
		if err == nil || !strings.Contains(err.Error(), "500") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("provider error page", func(t *testing.T) {
		err := p.Browser()(ctx, p.AuthURL()+"?client_id=cli")
		if err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("cancelled while callback blocks", func(t *testing.T) {
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer slow.Close()
		defer close(release)
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		err := p.Browser()(ctx, authURL(p, newFlow(t, slow.URL+"/cb").params()))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestKeysAndRotation(t *testing.T) {
	for _, alg := range []string{AlgES256, AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			p := NewProvider(t, WithSigningAlg(alg))
			old := p.KeyID()
			oldTok := p.SignIDToken(map[string]any{"sub": "x"})
			if h, c := verifyJWT(t, p, oldTok); h["kid"] != old || c["sub"] != "x" {
				t.Fatalf("header %v claims %v", h, c)
			}
			kid := p.RotateKey()
			if kid == old || p.KeyID() != kid {
				t.Fatalf("RotateKey kid %q, old %q, KeyID %q", kid, old, p.KeyID())
			}
			keys := fetchJWKS(t, p)
			if len(keys) != 2 || keys[0].Kid != kid || keys[1].Kid != old {
				t.Fatalf("JWKS after rotation: %+v", keys)
			}
			cb := newCallback(t)
			r := login(t, p, newFlow(t, cb.URL()), cb)
			if h, _ := verifyJWT(t, p, r.str("id_token")); h["kid"] != kid {
				t.Fatalf("ID token kid %v, want the new key", h["kid"])
			}
			verifyJWT(t, p, oldTok) // still verifiable with the old key
		})
	}
	t.Run("without previous keys", func(t *testing.T) {
		p := NewProvider(t, WithoutPreviousKeys())
		p.RotateKey()
		if keys := fetchJWKS(t, p); len(keys) != 1 || keys[0].Kid != p.KeyID() {
			t.Fatalf("JWKS %+v", keys)
		}
	})
}

// TestLandingAddress: the address a browser elsewhere ends on, after the
// consent page, is returned without being visited.
func TestLandingAddress(t *testing.T) {
	for _, consent := range []bool{false, true} {
		var opts []Option
		if consent {
			opts = append(opts, WithConsentPage())
		}
		p := NewProvider(t, opts...)
		cb := newCallback(t)
		f := newFlow(t, cb.URL())
		landing, err := LandingAddress(context.Background(), authURL(p, f.params()))
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(landing)
		if err != nil || !strings.HasPrefix(landing, cb.URL()+"?") || u.Query().Get("state") != f.state || u.Query().Get("code") == "" {
			t.Errorf("consent %v: landing = %q", consent, landing)
		}
		cb.mu.Lock()
		visited := len(cb.got)
		cb.mu.Unlock()
		if visited != 0 {
			t.Errorf("consent %v: the callback was visited", consent)
		}
	}
	if _, err := LandingAddress(context.Background(), "file:///etc/passwd"); err == nil {
		t.Error("a file URL was accepted")
	}
	p := NewProvider(t)
	if _, err := LandingAddress(context.Background(), p.AuthURL()+"?client_id=cli"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("provider error page: %v", err)
	}
}

// TestIssuerPath serves the provider under a path: Keycloak's realm, an
// Auth0-style bare origin with a trailing slash, and a path with one.
// The issuer is exact everywhere it appears; the endpoints and discovery
// hang below it without its trailing slash.
func TestIssuerPath(t *testing.T) {
	for _, path := range []string{"/realms/demo", "/", "/oauth2/default/"} {
		t.Run(path, func(t *testing.T) {
			p := NewProvider(t, WithIssuerPath(path), WithIssParameter(), WithConsentPage())
			root := "http://" + p.host
			base := root + strings.TrimSuffix(path, "/")
			if p.Issuer() != root+path {
				t.Fatalf("Issuer() = %q, want %q", p.Issuer(), root+path)
			}
			if p.DiscoveryURL() != base+"/.well-known/openid-configuration" || p.AuthURL() != base+"/authorize" ||
				p.TokenURL() != base+"/token" || p.JWKSURL() != base+"/jwks" || p.RevocationURL() != base+"/revoke" ||
				p.IntrospectionURL() != base+"/introspect" {
				t.Errorf("endpoints: %s %s %s %s", p.DiscoveryURL(), p.AuthURL(), p.TokenURL(), p.JWKSURL())
			}
			var doc map[string]any
			getJSON(t, p.DiscoveryURL(), &doc)
			if doc["issuer"] != p.Issuer() || doc["authorization_endpoint"] != p.AuthURL() || doc["token_endpoint"] != p.TokenURL() ||
				doc["jwks_uri"] != p.JWKSURL() || doc["revocation_endpoint"] != p.RevocationURL() {
				t.Errorf("discovery document: %v", doc)
			}
			if base != root {
				// The endpoints really moved: nothing answers at the root.
				resp, err := noRedirect.Get(root + "/.well-known/openid-configuration")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("discovery at the root answered %d, want 404", resp.StatusCode)
				}
			}
			// The whole flow, through the consent page, whose form posts
			// below the issuer too.
			cb := newCallback(t)
			f := newFlow(t, cb.URL())
			_, page := get(t, authURL(p, f.params()))
			if want := `action="` + strings.TrimPrefix(base, root) + `/authorize/decision"`; !strings.Contains(page, want) {
				t.Errorf("consent page lacks %s", want)
			}
			r := login(t, p, f, cb)
			if iss := cb.last(t).Get("iss"); iss != p.Issuer() {
				t.Errorf("RFC 9207 iss = %q, want %q", iss, p.Issuer())
			}
			if _, claims := verifyJWT(t, p, r.str("id_token")); claims["iss"] != p.Issuer() {
				t.Errorf("ID token iss = %v, want %q", claims["iss"], p.Issuer())
			}
			r = postToken(t, p, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}, "client_id": {"cli"}})
			wantTokens(t, r)
		})
	}
}

func TestIssuerPathInvalid(t *testing.T) {
	for _, path := range []string{"", "realms/demo", "//", "/a//b", "/a/../b", "/./a", "/a b", "/a?x=1", "/a#f", "/a%2Fb", "/" + strings.Repeat("a", 256)} {
		if p, err := StartProvider(WithIssuerPath(path)); err == nil {
			p.Close()
			t.Errorf("WithIssuerPath(%q) accepted", path)
		}
	}
}

// TestRefreshTokenOnlyWhen issues a refresh token only to authorization
// requests that ask for one the provider's way (here Google's).
func TestRefreshTokenOnlyWhen(t *testing.T) {
	p := NewProvider(t, WithRefreshTokenOnlyWhen(func(q url.Values) bool {
		return q.Get("access_type") == "offline" && q.Get("prompt") == "consent"
	}))
	for _, tt := range []struct {
		extra       url.Values
		wantRefresh bool
	}{
		{nil, false},
		{url.Values{"access_type": {"offline"}}, false},
		{url.Values{"access_type": {"offline"}, "prompt": {"consent"}}, true},
	} {
		cb := newCallback(t)
		f := newFlow(t, cb.URL())
		q := f.params()
		for k, v := range tt.extra {
			q[k] = v
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := p.Browser()(ctx, p.AuthURL()+"?"+q.Encode())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		r := postToken(t, p, f.exchangeForm(cb.last(t).Get("code")))
		wantTokens(t, r)
		if got := r.str("refresh_token") != ""; got != tt.wantRefresh {
			t.Errorf("extra %v: refresh token issued = %v, want %v", tt.extra, got, tt.wantRefresh)
		}
	}
}
