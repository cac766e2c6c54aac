package loopauth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
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
	noSigQ := func(b *CLITokenClientBuilder) { b.WithOpenIDScope().Issuer(q.Issuer()).WithoutJWKSValidation() }
	if _, err := flowClient(t, q, nil, noSigQ).RunAuthorizationFlow(context.Background()); !errors.Is(err, ErrInvalidAudience) {
		t.Errorf("wrong audience without signature checks: err = %v", err)
	}
	r := loopauthtest.NewProvider(t, loopauthtest.WithTokenResponse(func(_ string, m map[string]any) {
		m["id_token"] = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln" // {"alg":"none"}
	}))
	noSigR := func(b *CLITokenClientBuilder) { b.WithOpenIDScope().Issuer(r.Issuer()).WithoutJWKSValidation() }
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
	c, err := validBuilder().WithOpenIDScope().Issuer("https://as.example.com").JWKSValidator(v).AddScopes(ScopeEmail, ScopeOpenID).Build()
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

// recordingValidator is a user-written JWKSValidator: it records the
// tokens it is given and answers err.
type recordingValidator struct {
	mu   sync.Mutex
	raws []string
	err  error
}

func (v *recordingValidator) Validate(_ context.Context, raw string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.raws = append(v.raws, raw)
	return v.err
}

func (v *recordingValidator) calls() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.raws...)
}

// TestOpenIDCustomValidator: the flow calls a user-written JWKSValidator
// exactly once, with the ID token exactly as the provider issued it, and
// its refusal fails the flow with ErrInvalidIDToken and its own error.
func TestOpenIDCustomValidator(t *testing.T) {
	refused := errors.New("refused by the caller's validator")
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"accepts", nil},
		{"refuses", refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var issuedMu sync.Mutex
			var issued []string
			p := loopauthtest.NewProvider(t, loopauthtest.WithTokenResponse(func(_ string, m map[string]any) {
				issuedMu.Lock()
				defer issuedMu.Unlock()
				if raw, ok := m["id_token"].(string); ok {
					issued = append(issued, raw)
				}
			}))
			v := &recordingValidator{err: tc.err}
			c := openIDClient(t, p, func(b *CLITokenClientBuilder) { b.JWKSValidator(v) })
			ts, err := c.RunAuthorizationFlow(context.Background())
			calls := v.calls()
			issuedMu.Lock()
			defer issuedMu.Unlock()
			if len(issued) != 1 {
				t.Fatalf("the provider issued %d ID tokens, want 1", len(issued))
			}
			if len(calls) != 1 || calls[0] != issued[0] {
				t.Fatalf("validator called %d times (tokens %q), want once with the issued ID token", len(calls), calls)
			}
			if tc.err == nil {
				if err != nil || ts.IDTokenRaw() != issued[0] {
					t.Fatalf("flow with an accepting validator: %v", err)
				}
				return
			}
			if ts != nil || !errors.Is(err, ErrInvalidIDToken) || !errors.Is(err, refused) {
				t.Fatalf("tokens %v, err = %v; want ErrInvalidIDToken wrapping the validator's error", ts, err)
			}
		})
	}
}

// TestOpenIDIssuerAlwaysChecked covers the expected issuer of OpenID mode:
// it comes from Issuer, FromOpenIDConfiguration or the configuration given
// to WithOpenIDConfigurationJWKSValidator, and the ID token's iss and the
// callback's RFC 9207 iss are always compared with it. A token of another
// tenant of a multi-tenant provider, signed with the provider's own key,
// is refused whichever way the client was configured.
func TestOpenIDIssuerAlwaysChecked(t *testing.T) {
	ctx := context.Background()
	fetch := func(p *loopauthtest.Provider) *OpenIDConfiguration {
		cfg, err := FetchOpenIDConfiguration(ctx, p.Issuer())
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ways := []struct {
		name  string
		build func(p *loopauthtest.Provider, cfg *OpenIDConfiguration) *CLITokenClientBuilder
	}{
		{"configuration validator only", func(p *loopauthtest.Provider, cfg *OpenIDConfiguration) *CLITokenClientBuilder {
			return NewBuilder().AuthURL(p.AuthURL()).TokenURL(p.TokenURL()).WithOpenIDScope().WithOpenIDConfigurationJWKSValidator(cfg)
		}},
		{"discovery", func(p *loopauthtest.Provider, cfg *OpenIDConfiguration) *CLITokenClientBuilder {
			return FromOpenIDConfiguration(cfg).WithOpenIDConfigurationJWKSValidator(cfg)
		}},
		{"Issuer and a remote validator", func(p *loopauthtest.Provider, _ *OpenIDConfiguration) *CLITokenClientBuilder {
			return NewBuilder().AuthURL(p.AuthURL()).TokenURL(p.TokenURL()).WithOpenIDScope().Issuer(p.Issuer()).
				JWKSValidator(NewRemoteJWKSValidator(p.JWKSURL(), "test-cli"))
		}},
		{"Issuer without signature checks", func(p *loopauthtest.Provider, _ *OpenIDConfiguration) *CLITokenClientBuilder {
			return NewBuilder().AuthURL(p.AuthURL()).TokenURL(p.TokenURL()).WithOpenIDScope().Issuer(p.Issuer()).WithoutJWKSValidation()
		}},
	}
	client := func(b *CLITokenClientBuilder, p *loopauthtest.Provider) *CLITokenClient {
		c, err := b.ClientID("test-cli").BrowserOpener(p.Browser()).Stderr(io.Discard).Build()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const otherTenant = "https://login.example/tenant-b/v2.0"
	for _, w := range ways {
		t.Run("multi-tenant/"+w.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, loopauthtest.WithSigningAlg(loopauthtest.AlgRS256),
				loopauthtest.WithIDTokenClaims(func(m map[string]any) { m["iss"] = otherTenant }))
			ts, err := client(w.build(p, fetch(p)), p).RunAuthorizationFlow(ctx)
			if ts != nil || !errors.Is(err, ErrInvalidIssuer) || !errors.Is(err, ErrInvalidIDToken) {
				t.Fatalf("token of another tenant: tokens %v, err = %v; want ErrInvalidIssuer", ts, err)
			}
			// The same client accepts its own tenant's tokens.
			good := loopauthtest.NewProvider(t, loopauthtest.WithSigningAlg(loopauthtest.AlgRS256))
			if _, err := client(w.build(good, fetch(good)), good).RunAuthorizationFlow(ctx); err != nil {
				t.Fatalf("own tenant: %v", err)
			}
		})
		t.Run("callback iss/"+w.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, loopauthtest.WithIssParameterValue(otherTenant))
			_, err := client(w.build(p, fetch(p)), p).RunAuthorizationFlow(ctx)
			if !errors.Is(err, ErrInvalidIssuer) {
				t.Fatalf("callback from another issuer: err = %v; want ErrInvalidIssuer", err)
			}
			if n := len(p.TokenRequests()); n != 0 {
				t.Errorf("%d token requests after an iss mismatch", n)
			}
		})
	}
	// A configuration that promises the iss parameter makes it required,
	// whichever method it was given to.
	p := loopauthtest.NewProvider(t, loopauthtest.WithIssParameter())
	cfg := fetch(p)
	for _, w := range ways[:2] {
		if c := client(w.build(p, cfg), p); !c.issRequired || c.issuer != p.Issuer() {
			t.Errorf("%s: issuer %q, iss required %v", w.name, c.issuer, c.issRequired)
		}
	}
}

// TestOpenIDBuildIssuer: Build refuses OpenID mode without an expected
// issuer, and issuers that differ between Issuer, FromOpenIDConfiguration
// and WithOpenIDConfigurationJWKSValidator.
func TestOpenIDBuildIssuer(t *testing.T) {
	cfg := func(iss string) *OpenIDConfiguration {
		return &OpenIDConfiguration{Issuer: iss, AuthorizationEndpoint: "https://as.example.com/authorize",
			TokenEndpoint: "https://as.example.com/token", JWKSURI: "https://as.example.com/jwks"}
	}
	mine, other := cfg("https://as.example.com"), cfg("https://other.example.com")
	v := NewRemoteJWKSValidator("https://as.example.com/jwks", "my-client")
	for _, tc := range []struct {
		name string
		b    *CLITokenClientBuilder
		want []string // parts of the message
	}{
		{"no issuer, custom validator", validBuilder().WithOpenIDScope().JWKSValidator(v), []string{"Issuer"}},
		{"no issuer, no signature checks", validBuilder().WithOpenIDScope().WithoutJWKSValidation(), []string{"Issuer"}},
		{"configuration without issuer", FromOpenIDConfiguration(cfg("")).ClientID("c").WithoutJWKSValidation(), []string{"Issuer"}},
		{"validator's configuration replaced", validBuilder().WithOpenIDScope().WithOpenIDConfigurationJWKSValidator(mine).JWKSValidator(v), []string{"Issuer"}},
		{"Issuer and FromOpenIDConfiguration differ", FromOpenIDConfiguration(mine).ClientID("c").WithoutJWKSValidation().Issuer(other.Issuer),
			[]string{"Issuer", "FromOpenIDConfiguration", other.Issuer, mine.Issuer}},
		{"Issuer and the validator's configuration differ", validBuilder().WithOpenIDScope().Issuer(mine.Issuer).WithOpenIDConfigurationJWKSValidator(other),
			[]string{"Issuer", "WithOpenIDConfigurationJWKSValidator", other.Issuer}},
		{"FromOpenIDConfiguration and the validator's configuration differ", FromOpenIDConfiguration(mine).ClientID("c").WithOpenIDConfigurationJWKSValidator(other),
			[]string{"FromOpenIDConfiguration", "WithOpenIDConfigurationJWKSValidator", other.Issuer}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.b.Build()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, part := range tc.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("message lacks %q: %v", part, err)
				}
			}
		})
	}
	for _, tc := range []struct {
		name string
		b    *CLITokenClientBuilder
	}{
		{"Issuer", validBuilder().WithOpenIDScope().Issuer(mine.Issuer).JWKSValidator(v)},
		{"the validator's configuration", validBuilder().WithOpenIDScope().WithOpenIDConfigurationJWKSValidator(mine)},
		{"all three agree", FromOpenIDConfiguration(mine).ClientID("c").Issuer(mine.Issuer).WithOpenIDConfigurationJWKSValidator(mine)},
		{"a replaced configuration no longer counts", validBuilder().WithOpenIDScope().WithOpenIDConfigurationJWKSValidator(other).JWKSValidator(v).Issuer(mine.Issuer)},
	} {
		t.Run("valid/"+tc.name, func(t *testing.T) {
			c, err := tc.b.Build()
			if err != nil || c.issuer != mine.Issuer {
				t.Fatalf("err = %v, issuer %v", err, c)
			}
		})
	}
	// Outside OpenID mode the issuer stays optional.
	if c, err := validBuilder().Build(); err != nil || c.issuer != "" {
		t.Errorf("plain OAuth: %v", err)
	}
}

// TestClaimsCaseVariants covers claims that differ only in case ("groups"
// and "GROUPS", a Kelvin sign for a k): encoding/json, which
// Claims.Unmarshal uses, would take the last of them case-blindly, so the
// strict reader refuses them, and no such claims ever reach Unmarshal.
func TestClaimsCaseVariants(t *testing.T) {
	base := `"sub":"s","iss":"https://i","exp":4000000000,"iat":1`
	for _, extra := range []string{
		`"groups":["user"],"GROUPS":["admin"]`,
		`"groups":["user"],"Groups":["admin"]`,
		`"role":"user","ro\u004ce":"admin"`,
		`"kid":"user","\u212aid":"admin"`, // KELVIN SIGN folds to k
		`"x":{"a":1,"A":2}`,
		`"x":[{"kid":1,"KID":2}]`,
	} {
		t.Run(extra, func(t *testing.T) {
			_, err := parseIDTokenUnverified(compact(`{` + base + `,` + extra + `}`))
			if !errors.Is(err, ErrMalformedJWT) || !strings.Contains(err.Error(), "differ only in case") {
				t.Fatalf("err = %v, want ErrMalformedJWT for members differing in case", err)
			}
		})
	}
	tok, err := parseIDTokenUnverified(compact(`{` + base + `,"groups":["user"],"roles":["admin"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var custom struct {
		Groups []string `json:"groups"`
	}
	if err := tok.Claims().Unmarshal(&custom); err != nil || len(custom.Groups) != 1 || custom.Groups[0] != "user" {
		t.Errorf("Unmarshal = %v, %v", custom, err)
	}

	// End to end: a provider's signed token with such claims fails the flow.
	p := loopauthtest.NewProvider(t, loopauthtest.WithIDTokenClaims(func(m map[string]any) {
		m["groups"], m["GROUPS"] = []string{"user"}, []string{"admin"}
	}))
	if _, err := openIDClient(t, p).RunAuthorizationFlow(context.Background()); !errors.Is(err, ErrInvalidIDToken) || !errors.Is(err, ErrMalformedJWT) {
		t.Errorf("flow with case-variant claims: err = %v", err)
	}
}

// validateWrapper is a caller's validator built on
// RemoteJWKSValidator.Validate, which now checks exp and nbf as well.
type validateWrapper struct{ v *RemoteJWKSValidator }

func (w validateWrapper) Validate(ctx context.Context, raw string) error {
	return w.v.Validate(ctx, raw)
}

// TestOpenIDExpiredReportedOnce: an expired ID token fails the flow with
// ErrIDTokenExpired, said once, whether the flow checks the dates itself
// (RemoteJWKSValidator: the flow checks only its signature) or a caller's
// validator built on Validate refuses the token first.
func TestOpenIDExpiredReportedOnce(t *testing.T) {
	for _, wrapped := range []bool{false, true} {
		p := loopauthtest.NewProvider(t, loopauthtest.WithIDTokenClaims(func(m map[string]any) {
			m["exp"] = time.Now().Add(-time.Hour).Unix()
		}))
		c := openIDClient(t, p, func(b *CLITokenClientBuilder) {
			if wrapped {
				b.JWKSValidator(validateWrapper{NewRemoteJWKSValidator(p.JWKSURL(), "test-cli")})
			}
		})
		_, err := c.RunAuthorizationFlow(context.Background())
		if !errors.Is(err, ErrIDTokenExpired) || !errors.Is(err, ErrInvalidIDToken) {
			t.Fatalf("wrapped %v: err = %v, want ErrIDTokenExpired", wrapped, err)
		}
		msg := err.Error()
		if strings.Count(msg, "invalid ID token") != 1 || strings.Count(msg, "expired at") != 1 {
			t.Errorf("wrapped %v: the failure is not reported once: %s", wrapped, msg)
		}
	}
}

// cancelAfterTokenAnswer is a transport that cancels the caller's context
// as soon as the token endpoint's answer has been read.
type cancelAfterTokenAnswer struct{ cancel context.CancelFunc }

func (c cancelAfterTokenAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		resp.Body = cancelOnClose{resp.Body, c.cancel}
	}
	return resp, err
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error { err := c.ReadCloser.Close(); c.cancel(); return err }

// TestOpenIDRefreshSurvivesCancel: once the provider has answered a
// refresh (and rotated the refresh token), checking the new ID token,
// which here must fetch the key set, finishes although the caller's
// context ends: otherwise the rotated refresh token would be lost.
func TestOpenIDRefreshSurvivesCancel(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	ts, err := openIDClient(t, p).RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A new client: its key cache is empty, so the check fetches the keys.
	c := openIDClient(t, p, func(b *CLITokenClientBuilder) {
		b.HTTPClient(&http.Client{Transport: cancelAfterTokenAnswer{cancel}})
	})
	next, err := c.Refresh(ctx, ts.RefreshToken())
	if err != nil {
		t.Fatalf("refresh failed after the provider answered: %v", err)
	}
	if ctx.Err() == nil {
		t.Fatal("the caller's context was not cancelled: the test proves nothing")
	}
	if next.RefreshToken() == "" || next.IDToken() == nil {
		t.Errorf("refreshed set = %v", next)
	}
}
