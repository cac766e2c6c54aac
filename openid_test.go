package loopauth

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// openIDClient builds an OpenID-mode client against p with a remote JWKS
// validator.
func openIDClient(t *testing.T, p *loopauthtest.Provider, more ...func(*CLITokenClientBuilder)) *CLITokenClient {
	t.Helper()
	return flowClient(t, p, nil, append([]func(*CLITokenClientBuilder){func(b *CLITokenClientBuilder) {
		b.WithOpenIDScope().Issuer(p.Issuer()).JWKSValidator(NewRemoteJWKSValidator(p.JWKSURL(), "test-cli"))
	}}, more...)...)
}

// TestOpenIDFlow runs whole OpenID flows with RS256 and ES256 keys.
func TestOpenIDFlow(t *testing.T) {
	for _, alg := range []string{loopauthtest.AlgES256, loopauthtest.AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, loopauthtest.WithSigningAlg(alg),
				loopauthtest.WithUser(loopauthtest.User{Subject: "ada-42", Email: "ada@example.com", Name: "Ada"}))
			ts, err := openIDClient(t, p).RunAuthorizationFlow(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			c := ts.IDToken().Claims()
			if c.Subject != "ada-42" || c.Email != "ada@example.com" || !c.EmailVerified || c.Issuer != p.Issuer() || c.Nonce == "" {
				t.Errorf("claims = %+v", c)
			}
			if ts.IDTokenRaw() == "" || joinScopes(ts.Scopes()) != "openid email offline_access" {
				t.Errorf("token set = %v", ts)
			}
			q := p.AuthorizeRequests()[0]
			if q.Get("nonce") == "" || q.Get("nonce") != c.Nonce || !strings.HasPrefix(q.Get("scope"), "openid ") {
				t.Errorf("authorize request = %v", q)
			}
		})
	}
}

// TestOpenIDClaimFailures covers the J rows end to end: each bad claim
// fails the flow with its sentinel and ErrInvalidIDToken, and no tokens
// are returned.
func TestOpenIDClaimFailures(t *testing.T) {
	cases := []struct {
		id     string
		mutate func(m map[string]any)
		want   error
	}{
		{"J-32 issuer with trailing slash", func(m map[string]any) { m["iss"] = m["iss"].(string) + "/" }, ErrInvalidIssuer},
		{"J-32 issuer in upper case", func(m map[string]any) { m["iss"] = strings.ToUpper(m["iss"].(string)) }, ErrInvalidIssuer},
		{"J-33 other audience", func(m map[string]any) { m["aud"] = "other" }, ErrInvalidAudience},
		{"J-33 empty audience list", func(m map[string]any) { m["aud"] = []string{} }, ErrInvalidAudience},
		{"J-34 azp of another client", func(m map[string]any) { m["azp"] = "other" }, ErrInvalidAudience},
		{"J-34 two audiences without azp", func(m map[string]any) { m["aud"] = []string{"test-cli", "other"}; delete(m, "azp") }, ErrInvalidAudience},
		{"J-35 expired beyond leeway", func(m map[string]any) { m["exp"] = time.Now().Add(-61 * time.Second).Unix() }, ErrIDTokenExpired},
		{"J-35 exp as a string", func(m map[string]any) { m["exp"] = "9999999999" }, ErrMalformedJWT},
		{"J-35 exp missing", func(m map[string]any) { delete(m, "exp") }, ErrMalformedJWT},
		{"J-37 iat in the future", func(m map[string]any) { m["iat"] = time.Now().Add(10 * time.Minute).Unix() }, ErrIDTokenNotYetValid},
		{"J-37 nbf in the future", func(m map[string]any) { m["nbf"] = time.Now().Add(10 * time.Minute).Unix() }, ErrIDTokenNotYetValid},
		{"J-37 iat missing", func(m map[string]any) { delete(m, "iat") }, ErrMalformedJWT},
		{"J-38 nonce missing", func(m map[string]any) { delete(m, "nonce") }, ErrNonceMismatch},
		{"J-38 nonce different", func(m map[string]any) { m["nonce"] = "replayed-nonce" }, ErrNonceMismatch},
		{"J-39 wrong at_hash", func(m map[string]any) { m["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }, ErrAccessTokenHashMismatch},
		{"J-40 sub missing", func(m map[string]any) { delete(m, "sub") }, ErrMalformedJWT},
		{"J-40 sub too long", func(m map[string]any) { m["sub"] = strings.Repeat("s", 256) }, ErrInvalidSubject},
		{"J-40 sub not ASCII", func(m map[string]any) { m["sub"] = "usér" }, ErrInvalidSubject},
		{"J-30 iss as an array", func(m map[string]any) { m["iss"] = []string{"x"} }, ErrMalformedJWT},
		{"J-30 nonce as a boolean", func(m map[string]any) { m["nonce"] = true }, ErrMalformedJWT},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, loopauthtest.WithIDTokenClaims(tc.mutate))
			g := &pageGrabber{}
			c := openIDClient(t, p)
			c.opener = g.open
			ts, err := c.RunAuthorizationFlow(context.Background())
			if ts != nil || !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalidIDToken) {
				t.Fatalf("tokens %v, err = %v; want %v", ts, err, tc.want)
			}
			if !strings.Contains(g.body, "Authentication failed") {
				t.Errorf("browser page:\n%s", g.body)
			}
		})
	}
}

// TestOpenIDLeeway: 60 s of clock skew is tolerated.
func TestOpenIDLeeway(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithIDTokenClaims(func(m map[string]any) {
		m["exp"] = time.Now().Add(-30 * time.Second).Unix()
		m["iat"] = time.Now().Add(30 * time.Second).Unix()
		m["nbf"] = time.Now().Add(30 * time.Second).Unix()
	}))
	if _, err := openIDClient(t, p).RunAuthorizationFlow(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestOpenIDNoIDToken covers T-09: openid requested, no id_token returned.
func TestOpenIDNoIDToken(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithoutIDToken())
	if _, err := openIDClient(t, p).RunAuthorizationFlow(context.Background()); !errors.Is(err, ErrNoIDToken) {
		t.Fatalf("err = %v", err)
	}
}

// TestOpenIDSignatureFirst covers J-36: a token signed by a key the
// provider does not publish fails on the signature, even when its claims
// are also wrong, and no claim error is reported with it.
func TestOpenIDSignatureFirst(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithIDTokenClaims(func(m map[string]any) { m["aud"] = "other" }))
	stranger := loopauthtest.NewProvider(t)
	c := openIDClient(t, p, func(b *CLITokenClientBuilder) {
		b.JWKSValidator(NewRemoteJWKSValidator(stranger.JWKSURL(), "test-cli"))
	})
	_, err := c.RunAuthorizationFlow(context.Background())
	if !errors.Is(err, ErrInvalidIDToken) || errors.Is(err, ErrInvalidAudience) {
		t.Fatalf("err = %v; want a signature or key error only", err)
	}
	if !errors.Is(err, ErrNoUsableKey) && !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("err = %v", err)
	}
}

// TestOpenIDWithoutValidation: claims are still checked; alg none is
// still refused.
func TestOpenIDWithoutValidation(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	noSig := func(b *CLITokenClientBuilder) {
		b.WithOpenIDScope().Issuer(p.Issuer()).WithoutJWKSValidation()
	}
	if _, err := flowClient(t, p, nil, noSig).RunAuthorizationFlow(context.Background()); err != nil {
		t.Fatal(err)
	}
	q := loopauthtest.NewProvider(t, loopauthtest.WithIDTokenClaims(func(m map[string]any) { m["aud"] = "other" }))
	noSigQ := func(b *CLITokenClientBuilder) { b.WithOpenIDScope().WithoutJWKSValidation() }
	if _, err := flowClient(t, q, nil, noSigQ).RunAuthorizationFlow(context.Background()); !errors.Is(err, ErrInvalidAudience) {
		t.Errorf("wrong audience without signature checks: err = %v", err)
	}
	r := loopauthtest.NewProvider(t, loopauthtest.WithTokenResponse(func(_ string, m map[string]any) {
		m["id_token"] = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln" // {"alg":"none"}
	}))
	noSigR := func(b *CLITokenClientBuilder) { b.WithOpenIDScope().WithoutJWKSValidation() }
	if _, err := flowClient(t, r, nil, noSigR).RunAuthorizationFlow(context.Background()); !errors.Is(err, ErrAlgNotAllowed) {
		t.Errorf("alg none: err = %v", err)
	}
}

// TestOpenIDKeyRotation covers K-14 and the rotation requirement: after
// the provider rotates its key mid-test, the cached validator fetches the
// set again once and keeps verifying.
func TestOpenIDKeyRotation(t *testing.T) {
	for _, keepOld := range []bool{true, false} {
		opts := []loopauthtest.Option{}
		if !keepOld {
			opts = append(opts, loopauthtest.WithoutPreviousKeys())
		}
		p := loopauthtest.NewProvider(t, opts...)
		c := openIDClient(t, p)
		if _, err := c.RunAuthorizationFlow(context.Background()); err != nil {
			t.Fatal(err)
		}
		p.RotateKey()
		if _, err := c.RunAuthorizationFlow(context.Background()); err != nil {
			t.Fatalf("after rotation (old keys kept: %v): %v", keepOld, err)
		}
	}
}

// TestOpenIDIssParameter covers C-26, C-27 and C-29: the RFC 9207 iss
// parameter is compared exactly, and a mismatch fails before any token
// request, for success and error responses alike.
func TestOpenIDIssParameter(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithIssParameter())
	if _, err := openIDClient(t, p).RunAuthorizationFlow(context.Background()); err != nil {
		t.Fatalf("matching iss: %v", err)
	}
	for _, tc := range []struct {
		id   string
		opts []loopauthtest.Option
	}{
		{"C-26 other issuer", []loopauthtest.Option{loopauthtest.WithIssParameterValue("https://evil.example")}},
		{"C-26 other scheme and case", []loopauthtest.Option{loopauthtest.WithIssParameterValue("HTTP://127.0.0.1")}},
		{"C-29 error from another issuer", []loopauthtest.Option{loopauthtest.WithIssParameterValue("https://evil.example"), loopauthtest.WithAuthorizeError("access_denied", "", "")}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			q := loopauthtest.NewProvider(t, tc.opts...)
			_, err := openIDClient(t, q).RunAuthorizationFlow(context.Background())
			var pe *ProviderError
			if !errors.Is(err, ErrInvalidIssuer) || errors.As(err, &pe) {
				t.Fatalf("err = %v, want ErrInvalidIssuer and no provider error", err)
			}
			if n := len(q.TokenRequests()); n != 0 {
				t.Errorf("%d token requests after an iss mismatch", n)
			}
		})
	}
	// C-27: a provider that promises iss must send it.
	r := loopauthtest.NewProvider(t)
	c := openIDClient(t, r)
	c.issRequired = true
	if _, err := c.RunAuthorizationFlow(context.Background()); !errors.Is(err, ErrInvalidIssuer) {
		t.Errorf("missing required iss: err = %v", err)
	}
}

// TestOpenIDRefresh covers R-06 and the refresh rules: a refreshed ID token
// is verified without a nonce and must keep the identity; without one, the
// previous ID token is kept.
func TestOpenIDRefresh(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	c := openIDClient(t, p)
	ts, err := c.RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.RefreshIfExpiring(context.Background(), ts, 2*time.Hour)
	if err != nil || !out.Refreshed() {
		t.Fatalf("refresh: %v", err)
	}
	next := out.TokenSet().IDToken()
	if next == nil || next.Raw() == ts.IDTokenRaw() || next.Claims().Subject != ts.IDToken().Claims().Subject {
		t.Errorf("refreshed ID token = %v", next)
	}

	changed := func(field string, value any) loopauthtest.Option {
		return loopauthtest.WithIDTokenClaims(func(m map[string]any) {
			if _, first := m["nonce"]; !first { // refresh responses carry no nonce
				m[field] = value
			}
		})
	}
	for _, tc := range []struct {
		id   string
		opt  loopauthtest.Option
		want error
	}{
		{"R-06 other subject", changed("sub", "mallory"), ErrInvalidSubject},
		{"R-06 other audience", changed("aud", []string{"test-cli", "other"}), ErrInvalidAudience},
		{"R-06 new azp", changed("azp", "test-cli"), ErrInvalidAudience},
		{"R-06 nonce on refresh", changed("nonce", "other"), ErrNonceMismatch},
		{"R-06 expired", changed("exp", time.Now().Add(-time.Hour).Unix()), ErrIDTokenExpired},
	} {
		t.Run(tc.id, func(t *testing.T) {
			q := loopauthtest.NewProvider(t, tc.opt)
			c := openIDClient(t, q)
			ts, err := c.RunAuthorizationFlow(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.RefreshIfExpiring(context.Background(), ts, 2*time.Hour); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}

	keep := loopauthtest.NewProvider(t, loopauthtest.WithTokenResponse(func(grant string, m map[string]any) {
		if grant == "refresh_token" {
			delete(m, "id_token")
		}
	}))
	c2 := openIDClient(t, keep)
	ts2, err := c2.RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, err = c2.RefreshIfExpiring(context.Background(), ts2, 2*time.Hour)
	if err != nil || out.TokenSet().IDTokenRaw() != ts2.IDTokenRaw() {
		t.Fatalf("previous ID token not kept: %v", err)
	}
	r, err := c2.Refresh(context.Background(), out.TokenSet().RefreshToken())
	if err != nil || r.IDToken() != nil {
		t.Errorf("Refresh without a previous set: %v, %v", r, err)
	}
}

// TestOpenIDIgnoredOutsideOpenIDMode covers J-41: an id_token in a plain
// OAuth response is neither decoded nor returned.
func TestOpenIDIgnoredOutsideOpenIDMode(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithTokenResponse(func(_ string, m map[string]any) { m["id_token"] = "not.a.jwt" }))
	ts, err := flowClient(t, p, nil).RunAuthorizationFlow(context.Background())
	if err != nil || ts.IDToken() != nil || ts.IDTokenRaw() != "" {
		t.Fatalf("ts = %v, err = %v", ts, err)
	}
}

// TestOpenIDBuildRules covers the JWKS decision rules of Build.
func TestOpenIDBuildRules(t *testing.T) {
	v := NewRemoteJWKSValidator("https://as.example/jwks", "c")
	cases := map[string]*CLITokenClientBuilder{
		"no decision":           validBuilder().WithOpenIDScope(),
		"both decisions":        validBuilder().WithOpenIDScope().JWKSValidator(v).WithoutJWKSValidation(),
		"validator, no openid":  validBuilder().JWKSValidator(v),
		"no validation, no oid": validBuilder().WithoutJWKSValidation(),
		"issuer with query":     validBuilder().Issuer("https://as.example/?x=1"),
		"http issuer":           validBuilder().Issuer("http://as.example"),
	}
	for name, b := range cases {
		if _, err := b.Build(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	c, err := validBuilder().WithOpenIDScope().JWKSValidator(v).AddScopes(ScopeEmail, ScopeOpenID).Build()
	if err != nil || joinScopes(c.scopes) != "openid email" {
		t.Errorf("valid OpenID build: %v, %v", c, err)
	}
}

// TestOpenIDDiscoveryFlow runs the flow from a discovery document, as the
// README's quick start does, and checks that the advertised algorithms
// narrow what the validator accepts (D-08).
func TestOpenIDDiscoveryFlow(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithIssParameter(), loopauthtest.WithSigningAlg(loopauthtest.AlgRS256))
	cfg, err := FetchOpenIDConfiguration(context.Background(), p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	build := func(cfg *OpenIDConfiguration) *CLITokenClient {
		c, err := FromOpenIDConfiguration(cfg).ClientID("test-cli").WithOpenIDConfigurationJWKSValidator(cfg).
			AddScopes(ScopeEmail).BrowserOpener(p.Browser()).Stderr(io.Discard).Build()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := build(cfg)
	if !c.issRequired || c.issuer != p.Issuer() {
		t.Errorf("issuer %q, iss required %v", c.issuer, c.issRequired)
	}
	ts, err := c.RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ts.IDToken().Claims().Issuer != cfg.Issuer {
		t.Errorf("claims = %+v", ts.IDToken().Claims())
	}

	only := *cfg
	only.IDTokenSigningAlgValuesSupported = []string{"ES256"}
	if _, err := build(&only).RunAuthorizationFlow(context.Background()); !errors.Is(err, ErrAlgNotAllowed) {
		t.Errorf("RS256 token, ES256 advertised: err = %v", err)
	}
	none := *cfg
	none.IDTokenSigningAlgValuesSupported = []string{"none", "HS256"}
	if _, err := FromOpenIDConfiguration(&none).ClientID("x").WithOpenIDConfigurationJWKSValidator(&none).Build(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("only none and HS256 advertised: err = %v", err)
	}
	other := *cfg
	other.Issuer, other.JWKSURI = "https://other.example", "https://other.example/jwks"
	if _, err := FromOpenIDConfiguration(cfg).ClientID("x").WithOpenIDConfigurationJWKSValidator(&other).Build(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("keys of another issuer: err = %v", err)
	}
	if _, err := FetchOpenIDConfiguration(context.Background(), "not a URL"); !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, ErrInvalidDiscovery) {
		t.Errorf("bad issuer input: err = %v", err)
	}
	if _, err := FromOpenIDConfiguration(nil).ClientID("x").WithoutJWKSValidation().Build(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil configuration: err = %v", err)
	}
	// The validator is made with the client ID set last, not the one set
	// before WithOpenIDConfigurationJWKSValidator (a Rust crate weakness).
	late, err := FromOpenIDConfiguration(cfg).ClientID("early").WithOpenIDConfigurationJWKSValidator(cfg).ClientID("test-cli").Build()
	if err != nil || late.validator.(*RemoteJWKSValidator).clientID != "test-cli" {
		t.Errorf("validator client ID: %v", err)
	}
}
