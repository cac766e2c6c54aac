package loopauthtest

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDiscovery(t *testing.T) {
	tests := []struct {
		name      string
		opts      []Option
		issuer    func(p *Provider) string
		issParam  bool
		signedAlg string
	}{
		{"default", nil, (*Provider).Issuer, false, AlgES256},
		{"RS256 and RFC 9207", []Option{WithSigningAlg(AlgRS256), WithIssParameter()}, (*Provider).Issuer, true, AlgRS256},
		{"wrong issuer", []Option{WithDiscoveryIssuer("https://evil.example")}, func(*Provider) string { return "https://evil.example" }, false, AlgES256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProvider(t, tt.opts...)
			if !strings.HasPrefix(p.Issuer(), "http://127.0.0.1:") || strings.HasSuffix(p.Issuer(), "/") {
				t.Fatalf("Issuer() = %q", p.Issuer())
			}
			var d map[string]any
			getJSON(t, p.Issuer()+"/.well-known/openid-configuration", &d)
			want := map[string]any{
				"issuer":                                         tt.issuer(p),
				"authorization_endpoint":                         p.AuthURL(),
				"token_endpoint":                                 p.TokenURL(),
				"jwks_uri":                                       p.JWKSURL(),
				"response_types_supported":                       []any{"code"},
				"grant_types_supported":                          []any{"authorization_code", "refresh_token"},
				"code_challenge_methods_supported":               []any{"S256"},
				"id_token_signing_alg_values_supported":          []any{tt.signedAlg},
				"subject_types_supported":                        []any{"public"},
				"authorization_response_iss_parameter_supported": tt.issParam,
			}
			for k, v := range want {
				if got := d[k]; !jsonEqual(got, v) {
					t.Errorf("%s = %#v, want %#v", k, got, v)
				}
			}
			for _, k := range []string{"token_endpoint_auth_methods_supported", "scopes_supported"} {
				if _, ok := d[k].([]any); !ok {
					t.Errorf("%s missing", k)
				}
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestFullFlow(t *testing.T) {
	for _, alg := range []string{AlgES256, AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			p := NewProvider(t, WithSigningAlg(alg))
			cb := newCallback(t)
			f := newFlow(t, cb.URL())
			before := time.Now().Unix()
			r := login(t, p, f, cb)

			if r.str("token_type") != "Bearer" || r.body["expires_in"] != float64(3600) {
				t.Errorf("token_type %v expires_in %v", r.body["token_type"], r.body["expires_in"])
			}
			if r.str("scope") != f.scope || r.str("refresh_token") == "" {
				t.Errorf("scope %q refresh_token %q", r.str("scope"), r.str("refresh_token"))
			}
			h, c := verifyJWT(t, p, r.str("id_token"))
			if h["alg"] != alg || h["kid"] != p.KeyID() {
				t.Errorf("header %v, want alg %s kid %s", h, alg, p.KeyID())
			}
			wantClaims := map[string]any{
				"iss": p.Issuer(), "aud": f.clientID, "sub": "user-1234", "nonce": f.nonce,
				"email": "user@example.com", "email_verified": true, "name": "Test User",
				"at_hash": atHashOf(r.str("access_token")),
			}
			for k, v := range wantClaims {
				if c[k] != v {
					t.Errorf("claim %s = %#v, want %#v", k, c[k], v)
				}
			}
			iat, exp, authTime := num(t, c, "iat"), num(t, c, "exp"), num(t, c, "auth_time")
			if exp-iat != 3600 || iat < before || authTime > iat {
				t.Errorf("iat %d exp %d auth_time %d (test began %d)", iat, exp, authTime, before)
			}

			authz, tok := p.AuthorizeRequests(), p.TokenRequests()
			if len(authz) != 1 || authz[0].Get("code_challenge") != f.challenge || authz[0].Get("nonce") != f.nonce {
				t.Errorf("AuthorizeRequests() = %v", authz)
			}
			if len(tok) != 1 || tok[0].Get("code_verifier") != f.verifier || tok[0].Get("grant_type") != "authorization_code" {
				t.Errorf("TokenRequests() = %v", tok)
			}
			authz[0].Set("state", "mutated") // copies must not alias provider state
			if p.AuthorizeRequests()[0].Get("state") != f.state {
				t.Error("AuthorizeRequests returned shared maps")
			}
		})
	}
}

func atHashOf(access string) string {
	sum := sha256Sum(access)
	return rawURL.EncodeToString(sum[:16])
}

func TestRedirectURIQueryAndIssParameter(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		wantIss func(*Provider) string
	}{
		{"no iss", nil, func(*Provider) string { return "" }},
		{"iss", []Option{WithIssParameter()}, (*Provider).Issuer},
		{"wrong iss", []Option{WithIssParameterValue("https://mixup.example")}, func(*Provider) string { return "https://mixup.example" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProvider(t, tt.opts...)
			cb := newCallback(t)
			f := newFlow(t, cb.URL()+"?session=abc")
			code := authorize(t, p, f, cb)
			q := cb.last(t)
			if q.Get("session") != "abc" || q.Get("iss") != tt.wantIss(p) {
				t.Fatalf("callback query %v, want session=abc iss=%q", q, tt.wantIss(p))
			}
			// redirect_uri must match byte for byte, query included.
			wantTokens(t, postToken(t, p, f.exchangeForm(code)))
		})
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	p := NewProvider(t)
	cb := newCallback(t)
	f := newFlow(t, cb.URL())
	first := login(t, p, f, cb)
	rt1 := first.str("refresh_token")

	refresh := func(rt string) tokenResult {
		return postToken(t, p, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {f.clientID}})
	}
	second := refresh(rt1)
	wantTokens(t, second)
	rt2 := second.str("refresh_token")
	if rt2 == "" || rt2 == rt1 || second.str("access_token") == first.str("access_token") {
		t.Fatalf("refresh did not rotate: %s", second.raw)
	}
	_, c := verifyJWT(t, p, second.str("id_token"))
	if _, ok := c["nonce"]; ok || c["aud"] != f.clientID {
		t.Errorf("refreshed ID token claims %v: want aud, no nonce", c)
	}
	if at := c["at_hash"]; at != atHashOf(second.str("access_token")) {
		t.Errorf("at_hash %v does not match the new access token", at)
	}

	wantTokenError(t, refresh(rt1), http.StatusBadRequest, "invalid_grant")
	// Reuse revoked the whole family: the newest token is dead too.
	wantTokenError(t, refresh(rt2), http.StatusBadRequest, "invalid_grant")
}

func TestRefreshScope(t *testing.T) {
	p := NewProvider(t)
	cb := newCallback(t)
	f := newFlow(t, cb.URL())
	rt := login(t, p, f, cb).str("refresh_token")
	form := func(rt, scope string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {f.clientID}, "scope": {scope}}
	}
	wantTokenError(t, postToken(t, p, form(rt, "openid admin")), http.StatusBadRequest, "invalid_scope")
	narrow := postToken(t, p, form(rt, "email"))
	wantTokens(t, narrow)
	if narrow.str("scope") != "email" {
		t.Errorf("scope = %q, want email", narrow.str("scope"))
	}
	if _, ok := narrow.body["id_token"]; !ok {
		t.Error("grant had openid: refresh should return an ID token")
	}
}

func TestRefreshVariants(t *testing.T) {
	tests := []struct {
		name        string
		opt         Option
		wantInitial bool // refresh token from the code exchange
		wantOnRefr  bool // refresh_token member in refresh responses
		sameToken   bool // refresh returns the same token
		oldValid    bool // the original token still works after a refresh
	}{
		{"rotation", nil, true, true, false, false},
		{"no refresh token", WithoutRefreshToken(), false, false, false, false},
		{"google style", WithoutRefreshTokenOnRefresh(), true, false, false, true},
		{"no rotation", WithoutRefreshTokenRotation(), true, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProvider(t, tt.opt)
			cb := newCallback(t)
			f := newFlow(t, cb.URL())
			rt := login(t, p, f, cb).str("refresh_token")
			if (rt != "") != tt.wantInitial {
				t.Fatalf("initial refresh token %q, want present=%v", rt, tt.wantInitial)
			}
			if !tt.wantInitial {
				wantTokenError(t, postToken(t, p, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"anything"}, "client_id": {"cli"}}), 400, "invalid_grant")
				return
			}
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"cli"}}
			r := postToken(t, p, form)
			wantTokens(t, r)
			next, has := r.body["refresh_token"]
			if has != tt.wantOnRefr || (tt.sameToken && next != rt) {
				t.Fatalf("refresh_token in refresh response = %v (present %v)", next, has)
			}
			again := postToken(t, p, form)
			if ok := again.status == http.StatusOK; ok != tt.oldValid {
				t.Fatalf("reusing the original token: %d %s, want success=%v", again.status, again.raw, tt.oldValid)
			}
		})
	}
}

func TestCodeReplayRevokesGrant(t *testing.T) {
	p := NewProvider(t)
	cb := newCallback(t)
	f := newFlow(t, cb.URL())
	code := authorize(t, p, f, cb)
	r := postToken(t, p, f.exchangeForm(code))
	wantTokens(t, r)
	wantTokenError(t, postToken(t, p, f.exchangeForm(code)), http.StatusBadRequest, "invalid_grant")
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}, "client_id": {f.clientID}}
	wantTokenError(t, postToken(t, p, refresh), http.StatusBadRequest, "invalid_grant")
}

func TestConfidentialClient(t *testing.T) {
	p := NewProvider(t, WithClient("app", "s3cret/+&"))
	cb := newCallback(t)
	tests := []struct {
		name   string
		secret string // client_secret form value; "-" means omit
		basic  func(*http.Request)
		status int
		code   string
	}{
		{"post", "s3cret/+&", nil, 200, ""},
		{"basic", "-", func(r *http.Request) { r.SetBasicAuth("app", url.QueryEscape("s3cret/+&")) }, 200, ""},
		{"missing secret", "-", nil, 401, "invalid_client"},
		{"wrong secret", "nope", nil, 401, "invalid_client"},
		{"wrong basic", "-", func(r *http.Request) { r.SetBasicAuth("app", "nope") }, 401, "invalid_client"},
		{"two methods", "s3cret/+&", func(r *http.Request) { r.SetBasicAuth("app", "s3cret") }, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, cb.URL())
			f.clientID = "app"
			code := authorize(t, p, f, cb)
			form := f.exchangeForm(code)
			if tt.secret != "-" {
				form.Set("client_secret", tt.secret)
			}
			r := postForm(t, p.TokenURL(), form, tt.basic)
			if tt.status == 200 {
				wantTokens(t, r)
				return
			}
			wantTokenError(t, r, tt.status, tt.code)
			if tt.basic != nil && tt.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 after Basic auth without WWW-Authenticate")
			}
		})
	}
	t.Run("unknown client at token", func(t *testing.T) {
		r := postToken(t, p, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"other"}, "client_secret": {"s3cret/+&"}})
		wantTokenError(t, r, 401, "invalid_client")
	})
}

// TestClientAuthMethod checks that WithClientAuthMethod accepts the secret
// only by the method it names, and that discovery lists only that method.
func TestClientAuthMethod(t *testing.T) {
	const secret = "s3cret/+&"
	basic := func(r *http.Request) { r.SetBasicAuth("app", url.QueryEscape(secret)) }
	for _, method := range []string{ClientSecretBasic, ClientSecretPost} {
		t.Run(method, func(t *testing.T) {
			p := NewProvider(t, WithClient("app", secret), WithClientAuthMethod(method))
			var doc struct {
				Methods []string `json:"token_endpoint_auth_methods_supported"`
			}
			getJSON(t, p.DiscoveryURL(), &doc)
			if len(doc.Methods) != 1 || doc.Methods[0] != method {
				t.Errorf("discovery lists %q, want only %s", doc.Methods, method)
			}
			cb := newCallback(t)
			for _, useBasic := range []bool{true, false} {
				f := newFlow(t, cb.URL())
				f.clientID = "app"
				form := f.exchangeForm(authorize(t, p, f, cb))
				setup := basic
				if !useBasic {
					form.Set("client_secret", secret)
					setup = nil
				}
				r := postForm(t, p.TokenURL(), form, setup)
				if useBasic == (method == ClientSecretBasic) {
					wantTokens(t, r)
				} else {
					wantTokenError(t, r, http.StatusUnauthorized, "invalid_client")
				}
			}
		})
	}
	if _, err := StartProvider(WithClientAuthMethod("client_secret_jwt")); err == nil || !strings.Contains(err.Error(), "client_secret_jwt") {
		t.Errorf("unknown method: err = %v", err)
	}
}

func TestConcurrentLogins(t *testing.T) {
	p := NewProvider(t)
	cb := newCallback(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := newFlow(t, cb.URL())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.Browser()(ctx, authURL(p, f.params())); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); p.RotateKey() }()
	wg.Wait()
	if n := len(p.AuthorizeRequests()); n != 8 {
		t.Fatalf("recorded %d authorize requests, want 8", n)
	}
}
