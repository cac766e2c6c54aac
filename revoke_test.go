package loopauth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/loopauth/loopauth/loopauthtest"
)

// TestLogout: Logout revokes the stored refresh token (or the access token
// when there is none), clears the store in every case, and says which step
// failed.
func TestLogout(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		opts      []loopauthtest.Option
		noRefresh bool // the stored set has no refresh token
		noURL     bool // the client knows no revocation endpoint
		hint      string
		check     func(error) bool
	}{
		{name: "refresh token revoked", hint: "refresh_token", check: func(err error) bool { return err == nil }},
		{name: "access token revoked", opts: []loopauthtest.Option{loopauthtest.WithoutRefreshToken()}, noRefresh: true, hint: "access_token",
			check: func(err error) bool { return err == nil }},
		{name: "provider error", opts: []loopauthtest.Option{loopauthtest.WithRevocationError(503, "temporarily_unavailable", "down")}, hint: "refresh_token",
			check: func(err error) bool {
				return providerCode(err) == "temporarily_unavailable" && strings.Contains(err.Error(), "revoking") &&
					strings.Contains(err.Error(), "revocation endpoint answered HTTP 503: temporarily_unavailable")
			}},
		{name: "unsupported token type", opts: []loopauthtest.Option{loopauthtest.WithoutRefreshToken(), loopauthtest.WithoutRevocationOf(loopauthtest.AccessTokenType)},
			noRefresh: true, hint: "access_token", check: func(err error) bool { return providerCode(err) == "unsupported_token_type" }},
		{name: "endpoint missing", noURL: true, check: func(err error) bool { return errors.Is(err, ErrNoRevocationEndpoint) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, tc.opts...)
			c := flowClient(t, p, nil, func(b *CLITokenClientBuilder) {
				if !tc.noURL {
					b.RevocationURL(p.RevocationURL())
				}
			})
			store := NewMemoryStore()
			ts, err := c.Token(ctx, store)
			if err != nil {
				t.Fatal(err)
			}
			if (ts.RefreshToken() == "") != tc.noRefresh {
				t.Fatalf("refresh token present = %v", ts.RefreshToken() != "")
			}
			check := noLeaks(t)
			err = c.Logout(ctx, store)
			check()
			if !tc.check(err) {
				t.Errorf("err = %v", err)
			}
			if _, err := store.Load(ctx); !errors.Is(err, ErrNoToken) {
				t.Errorf("store not cleared: %v", err)
			}
			reqs := p.RevocationRequests()
			switch {
			case tc.noURL && len(reqs) != 0:
				t.Error("revocation sent without an endpoint")
			case !tc.noURL && (len(reqs) != 1 || reqs[0].Get("token_type_hint") != tc.hint || reqs[0].Get("client_id") != "test-cli"):
				t.Errorf("revocation requests = %v", reqs)
			}
			if err != nil && (strings.Contains(err.Error(), ts.AccessToken()) || ts.RefreshToken() != "" && strings.Contains(err.Error(), ts.RefreshToken())) {
				t.Error("a token reached the error")
			}
			if tc.name == "refresh token revoked" {
				if _, live := p.CheckAccessToken(ts.AccessToken()); live {
					t.Error("the access token issued with the revoked refresh token is still live")
				}
				if _, err := c.Refresh(ctx, ts.RefreshToken()); providerCode(err) != "invalid_grant" {
					t.Errorf("refresh after logout: %v", err)
				}
			}
		})
	}
}

func providerCode(err error) string {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe.ErrorCode
	}
	return ""
}

// TestRevoke: Revoke sends the token without a hint; the endpoint comes
// from discovery; bad input never reaches the provider.
func TestRevoke(t *testing.T) {
	ctx := context.Background()
	p := loopauthtest.NewProvider(t)
	cfg, err := FetchOpenIDConfiguration(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RevocationEndpoint != p.RevocationURL() {
		t.Fatalf("revocation_endpoint = %q", cfg.RevocationEndpoint)
	}
	c, err := FromOpenIDConfiguration(cfg).ClientID("test-cli").WithOpenIDConfigurationJWKSValidator(cfg).
		AddScopes(ScopeOfflineAccess).BrowserOpener(p.Browser()).Stderr(nil).Build()
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.RunAuthorizationFlow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, ts.AccessToken()); err != nil {
		t.Fatal(err)
	}
	if _, live := p.CheckAccessToken(ts.AccessToken()); live {
		t.Error("revoked access token still live")
	}
	for _, bad := range []string{"", "a\nb"} {
		if err := c.Revoke(ctx, bad); !errors.Is(err, ErrInvalidTokenSet) {
			t.Errorf("Revoke(%q) = %v", bad, err)
		}
	}
	if reqs := p.RevocationRequests(); len(reqs) != 1 || reqs[0].Has("token_type_hint") {
		t.Errorf("requests = %v", reqs)
	}
}

// TestDiscoveryRevocationEndpoint: revocation_endpoint is optional, and
// checked like every endpoint when present.
func TestDiscoveryRevocationEndpoint(t *testing.T) {
	doc := func(extra string) []byte {
		return []byte(`{"issuer":"https://as.example","authorization_endpoint":"https://as.example/a","token_endpoint":"https://as.example/t","jwks_uri":"https://as.example/k"` + extra + `}`)
	}
	for _, tc := range []struct {
		extra, want string
		ok          bool
	}{
		{"", "", true},
		{`,"revocation_endpoint":null`, "", true},
		{`,"revocation_endpoint":"https://as.example/r"`, "https://as.example/r", true},
		{`,"revocation_endpoint":"http://as.example/r"`, "", false},
		{`,"revocation_endpoint":7`, "", false},
	} {
		cfg, err := parseOpenIDConfiguration(doc(tc.extra), "https://as.example")
		switch {
		case tc.ok && (err != nil || cfg.RevocationEndpoint != tc.want):
			t.Errorf("%s: %v, %v", tc.extra, cfg, err)
		case !tc.ok && !errors.Is(err, ErrInvalidDiscovery):
			t.Errorf("%s: err = %v", tc.extra, err)
		}
	}
}
