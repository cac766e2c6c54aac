package loopauthtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func postRevoke(t *testing.T, p *Provider, form url.Values, setup func(*http.Request)) tokenResult {
	t.Helper()
	return postForm(t, p.RevocationURL(), form, setup)
}

func revokeForm(clientID, token, hint string) url.Values {
	v := url.Values{"client_id": {clientID}, "token": {token}}
	if hint != "" {
		v.Set("token_type_hint", hint)
	}
	return v
}

// wantRevoked asserts RFC 7009 §2.2 success: 200 and an empty body.
func wantRevoked(t *testing.T, r tokenResult) {
	t.Helper()
	if r.status != http.StatusOK || len(r.raw) != 0 {
		t.Fatalf("revocation answered %d %q, want 200 with an empty body", r.status, r.raw)
	}
}

func refreshWith(t *testing.T, p *Provider, clientID, rt string) tokenResult {
	t.Helper()
	return postToken(t, p, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}})
}

func TestDiscoveryAdvertisesRevocationAndIntrospection(t *testing.T) {
	for _, without := range []bool{false, true} {
		var opts []Option
		if without {
			opts = append(opts, WithoutRevocation())
		}
		p := NewProvider(t, opts...)
		var d map[string]any
		getJSON(t, p.DiscoveryURL(), &d)
		if d["introspection_endpoint"] != p.IntrospectionURL() || !jsonEqual(d["introspection_endpoint_auth_methods_supported"], []any{"client_secret_basic"}) {
			t.Errorf("introspection in discovery: %v, %v", d["introspection_endpoint"], d["introspection_endpoint_auth_methods_supported"])
		}
		_, has := d["revocation_endpoint"]
		_, hasMethods := d["revocation_endpoint_auth_methods_supported"]
		if without {
			if has || hasMethods {
				t.Errorf("WithoutRevocation: discovery still has revocation_endpoint %v", d["revocation_endpoint"])
			}
			r := postRevoke(t, p, revokeForm("cli", "anything", ""), nil)
			if r.status != http.StatusNotFound {
				t.Errorf("WithoutRevocation: /revoke answered %d, want 404", r.status)
			}
			if got := p.RevocationRequests(); len(got) != 1 || got[0].Get("token") != "anything" {
				t.Errorf("RevocationRequests() = %v, want the request recorded", got)
			}
			continue
		}
		if d["revocation_endpoint"] != p.RevocationURL() || p.RevocationURL() != p.Issuer()+"/revoke" {
			t.Errorf("revocation_endpoint = %v, RevocationURL() = %s", d["revocation_endpoint"], p.RevocationURL())
		}
		if !jsonEqual(d["revocation_endpoint_auth_methods_supported"], d["token_endpoint_auth_methods_supported"]) {
			t.Errorf("revocation auth methods %v differ from the token endpoint's %v",
				d["revocation_endpoint_auth_methods_supported"], d["token_endpoint_auth_methods_supported"])
		}
	}
}

func TestRevocation(t *testing.T) {
	// Each case signs in once; revoke picks the token to revoke, and the
	// checks after it say what must still work.
	type tokens struct{ access, refresh string }
	tests := []struct {
		name         string
		opts         []Option
		form         func(tk tokens) url.Values
		status       int    // 200 means revoked (or nothing to revoke)
		code         string // RFC 6749 / 7009 error code otherwise
		accessLive   bool   // the access token after the request
		refreshWorks bool   // the refresh token after the request
	}{
		{"access token", nil, func(tk tokens) url.Values { return revokeForm("cli", tk.access, "access_token") }, 200, "", false, true},
		{"access token, no hint", nil, func(tk tokens) url.Values { return revokeForm("cli", tk.access, "") }, 200, "", false, true},
		{"refresh token revokes its access tokens", nil, func(tk tokens) url.Values { return revokeForm("cli", tk.refresh, "refresh_token") }, 200, "", false, false},
		// §2.1: the hint is only a hint; the other kind is searched too.
		{"refresh token under the wrong hint", nil, func(tk tokens) url.Values { return revokeForm("cli", tk.refresh, "access_token") }, 200, "", false, false},
		{"unknown hint ignored", nil, func(tk tokens) url.Values { return revokeForm("cli", tk.refresh, "id_token") }, 200, "", false, false},
		// §2.2: an invalid token is not an error.
		{"unknown token", nil, func(tokens) url.Values { return revokeForm("cli", "no-such-token", "") }, 200, "", true, true},
		{"missing token", nil, func(tokens) url.Values { return url.Values{"client_id": {"cli"}} }, 400, "invalid_request", true, true},
		{"missing client_id", nil, func(tk tokens) url.Values { return url.Values{"token": {tk.refresh}} }, 400, "invalid_request", true, true},
		{"repeated token", nil, func(tk tokens) url.Values {
			v := revokeForm("cli", tk.refresh, "")
			v.Add("token", tk.access)
			return v
		}, 400, "invalid_request", true, true},
		{"token of another client", nil, func(tk tokens) url.Values { return revokeForm("other", tk.refresh, "") }, 400, "invalid_grant", true, true},
		{"unregistered client", []Option{WithClient("cli", "")}, func(tk tokens) url.Values { return revokeForm("other", tk.refresh, "") }, 401, "invalid_client", true, true},
		{"refuses access tokens", []Option{WithoutRevocationOf(AccessTokenType)}, func(tk tokens) url.Values { return revokeForm("cli", tk.access, "") }, 400, "unsupported_token_type", true, true},
		{"refuses the hint", []Option{WithoutRevocationOf(AccessTokenType)}, func(tokens) url.Values { return revokeForm("cli", "no-such-token", "access_token") }, 400, "unsupported_token_type", true, true},
		{"refuses access tokens, revokes refresh tokens", []Option{WithoutRevocationOf(AccessTokenType)}, func(tk tokens) url.Values { return revokeForm("cli", tk.refresh, "") }, 200, "", false, false},
		{"refuses refresh tokens", []Option{WithoutRevocationOf(RefreshTokenType)}, func(tk tokens) url.Values { return revokeForm("cli", tk.refresh, "refresh_token") }, 400, "unsupported_token_type", true, true},
		{"injected error", []Option{WithRevocationError(503, "temporarily_unavailable", "down for maintenance")}, func(tk tokens) url.Values { return revokeForm("cli", tk.refresh, "") }, 503, "temporarily_unavailable", true, true},
		{"injected error, default status", []Option{WithRevocationError(0, "unsupported_token_type", "")}, func(tk tokens) url.Values { return revokeForm("cli", tk.access, "") }, 400, "unsupported_token_type", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProvider(t, tt.opts...)
			cb := newCallback(t)
			r := login(t, p, newFlow(t, cb.URL()), cb)
			tk := tokens{r.str("access_token"), r.str("refresh_token")}
			form := tt.form(tk)
			got := postRevoke(t, p, form, nil)
			if tt.status == 200 {
				wantRevoked(t, got)
				if cc := got.header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control = %q", cc)
				}
			} else {
				wantTokenError(t, got, tt.status, tt.code)
				if tt.code == "temporarily_unavailable" && got.str("error_description") != "down for maintenance" {
					t.Errorf("error_description = %q", got.str("error_description"))
				}
			}
			if _, live := p.CheckAccessToken(tk.access); live != tt.accessLive {
				t.Errorf("access token live = %v, want %v", live, tt.accessLive)
			}
			rr := refreshWith(t, p, "cli", tk.refresh)
			if tt.refreshWorks {
				wantTokens(t, rr)
			} else {
				wantTokenError(t, rr, http.StatusBadRequest, "invalid_grant")
			}
			if reqs := p.RevocationRequests(); len(reqs) != 1 || reqs[0].Get("token") != form.Get("token") {
				t.Errorf("RevocationRequests() = %d requests, want this one", len(reqs))
			}
		})
	}
}

func TestRevocationIsIdempotentAndKeepsTheGrantOnRotation(t *testing.T) {
	p := NewProvider(t)
	cb := newCallback(t)
	first := login(t, p, newFlow(t, cb.URL()), cb)
	second := refreshWith(t, p, "cli", first.str("refresh_token"))
	wantTokens(t, second)

	// The first refresh token was rotated away: revoking it is a no-op.
	wantRevoked(t, postRevoke(t, p, revokeForm("cli", first.str("refresh_token"), ""), nil))
	if _, live := p.CheckAccessToken(second.str("access_token")); !live {
		t.Fatal("revoking a rotated-away refresh token ended the grant")
	}
	// The current one ends the grant, with every access token of it.
	wantRevoked(t, postRevoke(t, p, revokeForm("cli", second.str("refresh_token"), "refresh_token"), nil))
	for i, at := range []string{first.str("access_token"), second.str("access_token")} {
		if _, live := p.CheckAccessToken(at); live {
			t.Errorf("access token %d still live after its refresh token was revoked", i)
		}
	}
	// Revoked already: still 200 (§2.2).
	wantRevoked(t, postRevoke(t, p, revokeForm("cli", second.str("refresh_token"), ""), nil))
	wantRevoked(t, postRevoke(t, p, revokeForm("cli", second.str("access_token"), ""), nil))
	wantTokenError(t, refreshWith(t, p, "cli", second.str("refresh_token")), 400, "invalid_grant")
}

func TestRevocationClientAuthentication(t *testing.T) {
	const secret = "s3cret/+&"
	p := NewProvider(t, WithClient("app", secret), WithClient("cli", ""))
	cb := newCallback(t)
	tests := []struct {
		name   string
		secret string // client_secret form value; "-" omits it
		basic  func(*http.Request)
		status int
		code   string
	}{
		{"client_secret_post", secret, nil, 200, ""},
		{"client_secret_basic", "-", func(r *http.Request) { r.SetBasicAuth("app", url.QueryEscape(secret)) }, 200, ""},
		{"no secret", "-", nil, 401, "invalid_client"},
		{"wrong secret", "nope", nil, 401, "invalid_client"},
		{"wrong basic", "-", func(r *http.Request) { r.SetBasicAuth("app", "nope") }, 401, "invalid_client"},
		{"two methods", secret, func(r *http.Request) { r.SetBasicAuth("app", url.QueryEscape(secret)) }, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, cb.URL())
			f.clientID = "app"
			ex := f.exchangeForm(authorize(t, p, f, cb))
			ex.Set("client_secret", secret)
			r := postToken(t, p, ex)
			wantTokens(t, r)
			form := url.Values{"token": {r.str("refresh_token")}}
			if tt.basic == nil {
				form.Set("client_id", "app")
			}
			if tt.secret != "-" {
				form.Set("client_secret", tt.secret)
			}
			got := postRevoke(t, p, form, tt.basic)
			refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}, "client_id": {"app"}, "client_secret": {secret}}
			if tt.status == 200 {
				wantRevoked(t, got)
				wantTokenError(t, postToken(t, p, refresh), 400, "invalid_grant")
				return
			}
			wantTokenError(t, got, tt.status, tt.code)
			if tt.basic != nil && tt.status == 401 && got.header.Get("WWW-Authenticate") == "" {
				t.Error("401 after Basic auth without WWW-Authenticate")
			}
			wantTokens(t, postToken(t, p, refresh)) // not revoked
		})
	}
}

func TestRevocationHostileRequests(t *testing.T) {
	p := NewProvider(t)
	resp, body := get(t, p.RevocationURL()+"?token=x&client_id=cli")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" || !strings.Contains(body, "invalid_request") {
		t.Errorf("GET /revoke: %s Allow %q %s", resp.Status, resp.Header.Get("Allow"), body)
	}
	r := postForm(t, p.RevocationURL(), revokeForm("cli", "x", ""), func(r *http.Request) { r.Header.Set("Content-Type", "application/json") })
	wantTokenError(t, r, 400, "invalid_request")
	wantTokenError(t, postRevoke(t, p, revokeForm("cli", strings.Repeat("x", 100<<10), ""), nil), 400, "invalid_request")
}

func TestCheckAccessToken(t *testing.T) {
	start := time.Date(2032, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name  string
		opts  []Option
		after func(t *testing.T, p *Provider, clock *fakeClock, r tokenResult, f *flow) string // returns the token to check
		live  bool
		scope string
	}{
		{"live", nil, func(_ *testing.T, _ *Provider, _ *fakeClock, r tokenResult, _ *flow) string {
			return r.str("access_token")
		}, true, "openid email offline_access"},
		{"unknown", nil, func(*testing.T, *Provider, *fakeClock, tokenResult, *flow) string { return "no-such-token" }, false, ""},
		{"refresh token is not an access token", nil, func(_ *testing.T, _ *Provider, _ *fakeClock, r tokenResult, _ *flow) string {
			return r.str("refresh_token")
		}, false, ""},
		{"expired", nil, func(_ *testing.T, _ *Provider, c *fakeClock, r tokenResult, _ *flow) string {
			c.Set(start.Add(time.Hour))
			return r.str("access_token")
		}, false, ""},
		{"a second before expiry", nil, func(_ *testing.T, _ *Provider, c *fakeClock, r tokenResult, _ *flow) string {
			c.Set(start.Add(time.Hour - time.Second))
			return r.str("access_token")
		}, true, "openid email offline_access"},
		{"zero lifetime", []Option{WithTokenLifetime(0)}, func(_ *testing.T, _ *Provider, _ *fakeClock, r tokenResult, _ *flow) string {
			return r.str("access_token")
		}, false, ""},
		{"revoked", nil, func(t *testing.T, p *Provider, _ *fakeClock, r tokenResult, _ *flow) string {
			wantRevoked(t, postRevoke(t, p, revokeForm("cli", r.str("access_token"), ""), nil))
			return r.str("access_token")
		}, false, ""},
		{"refresh token reused", nil, func(t *testing.T, p *Provider, _ *fakeClock, r tokenResult, _ *flow) string {
			next := refreshWith(t, p, "cli", r.str("refresh_token"))
			wantTokens(t, next)
			refreshWith(t, p, "cli", r.str("refresh_token")) // theft: the family is revoked
			return next.str("access_token")
		}, false, ""},
		{"narrowed by refresh", nil, func(t *testing.T, p *Provider, _ *fakeClock, r tokenResult, _ *flow) string {
			next := postToken(t, p, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}, "client_id": {"cli"}, "scope": {"email"}})
			wantTokens(t, next)
			return next.str("access_token")
		}, true, "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: start}
			p := NewProvider(t, append([]Option{WithNow(clock.Now), WithUser(User{Subject: "ada"})}, tt.opts...)...)
			cb := newCallback(t)
			f := newFlow(t, cb.URL())
			r := login(t, p, f, cb)
			token := tt.after(t, p, clock, r, f)
			info, live := p.CheckAccessToken(token)
			if live != tt.live {
				t.Fatalf("CheckAccessToken live = %v, want %v", live, tt.live)
			}
			want := AccessTokenInfo{}
			if tt.live {
				want = AccessTokenInfo{Subject: "ada", ClientID: "cli", Scope: tt.scope, ExpiresAt: start.Add(time.Hour)}
			}
			if info != want {
				t.Errorf("CheckAccessToken = %+v, want %+v", info, want)
			}
		})
	}
	t.Run("code replay", func(t *testing.T) {
		p := NewProvider(t)
		cb := newCallback(t)
		f := newFlow(t, cb.URL())
		code := authorize(t, p, f, cb)
		r := postToken(t, p, f.exchangeForm(code))
		wantTokens(t, r)
		postToken(t, p, f.exchangeForm(code))
		if _, live := p.CheckAccessToken(r.str("access_token")); live {
			t.Error("access token live after its code was replayed (RFC 6749 §4.1.2)")
		}
	})
}

func TestIntrospection(t *testing.T) {
	p := NewProvider(t, WithUser(User{Subject: "ada"}))
	custom := NewProvider(t, WithIntrospectionCredentials("billing", "pw"))
	cb := newCallback(t)
	r := login(t, p, newFlow(t, cb.URL()), cb)
	revoked := login(t, p, newFlow(t, cb.URL()), cb).str("access_token")
	wantRevoked(t, postRevoke(t, p, revokeForm("cli", revoked, ""), nil))
	api := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(id, secret) }
	}
	tests := []struct {
		name   string
		p      *Provider
		token  string
		auth   func(*http.Request)
		status int
		code   string // error code, or "" for an answer
		active bool
	}{
		{"live", p, r.str("access_token"), api("api", "api-secret"), 200, "", true},
		{"revoked", p, revoked, api("api", "api-secret"), 200, "", false},
		{"unknown", p, "no-such-token", api("api", "api-secret"), 200, "", false},
		{"refresh token", p, r.str("refresh_token"), api("api", "api-secret"), 200, "", false},
		{"no credential", p, r.str("access_token"), nil, 401, "invalid_client", false},
		{"wrong secret", p, r.str("access_token"), api("api", "nope"), 401, "invalid_client", false},
		{"a client's credential", p, r.str("access_token"), api("cli", ""), 401, "invalid_client", false},
		{"missing token", p, "", api("api", "api-secret"), 400, "invalid_request", false},
		{"custom credential", custom, "no-such-token", api("billing", "pw"), 200, "", false},
		{"default refused after custom", custom, "no-such-token", api("api", "api-secret"), 401, "invalid_client", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{}
			if tt.token != "" {
				form.Set("token", tt.token)
			}
			got := postForm(t, tt.p.IntrospectionURL(), form, tt.auth)
			if tt.code != "" {
				wantTokenError(t, got, tt.status, tt.code)
				if tt.status == 401 && got.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			if got.status != 200 || got.header.Get("Content-Type") != "application/json" {
				t.Fatalf("introspection answered %d %q %s", got.status, got.header.Get("Content-Type"), got.raw)
			}
			if !tt.active {
				if string(got.raw) != `{"active":false}` {
					t.Errorf("inactive answer %s, want exactly {\"active\":false}", got.raw)
				}
				return
			}
			info, _ := p.CheckAccessToken(tt.token)
			want := map[string]any{
				"active": true, "sub": "ada", "client_id": "cli", "scope": "openid email offline_access",
				"exp": float64(info.ExpiresAt.Unix()), "token_type": "Bearer",
			}
			if len(got.body) != len(want) {
				t.Errorf("members %v, want %v", got.body, want)
			}
			for k, v := range want {
				if got.body[k] != v {
					t.Errorf("%s = %#v, want %#v", k, got.body[k], v)
				}
			}
		})
	}
	resp, _ := get(t, p.IntrospectionURL()+"?token=x")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /introspect: %s, want 405", resp.Status)
	}
}
