package loopauth

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func validBuilder() *CLITokenClientBuilder {
	return NewBuilder().ClientID("my-client").
		AuthURL("https://as.example.com/authorize").
		TokenURL("https://as.example.com/token")
}

func TestBuildValid(t *testing.T) {
	for name, b := range map[string]*CLITokenClientBuilder{
		"https":              validBuilder(),
		"loopback http":      NewBuilder().ClientID("c").AuthURL("http://127.0.0.1:8080/a").TokenURL("http://localhost:8080/t"),
		"ipv6 loopback http": NewBuilder().ClientID("c").AuthURL("http://[::1]:8080/a").TokenURL("http://[::1]:8080/t"),
		"zero-value builder": (&CLITokenClientBuilder{}).ClientID("c").AuthURL("https://a.example/a").TokenURL("https://a.example/t"),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			if c.timeout != DefaultTimeout || c.noBrowser || c.opener == nil || c.httpClient == nil {
				t.Errorf("defaults not applied: %+v", c)
			}
		})
	}
}

// TestDefaultTimeout pins the documented default: a flow waits five
// minutes for the browser unless Timeout says otherwise.
func TestDefaultTimeout(t *testing.T) {
	if DefaultTimeout != 5*time.Minute {
		t.Fatalf("DefaultTimeout = %v, documented as 5 minutes", DefaultTimeout)
	}
	c, err := validBuilder().Build()
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != 5*time.Minute {
		t.Errorf("a client built without Timeout waits %v, want 5m0s", c.timeout)
	}
	c, err = validBuilder().Timeout(42 * time.Second).Build()
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != 42*time.Second {
		t.Errorf("Timeout(42s) gave %v", c.timeout)
	}
}

// TestBuildReportsEverything checks that Build joins every problem, each
// wrapping ErrInvalidConfig and naming the method to call.
func TestBuildReportsEverything(t *testing.T) {
	_, err := NewBuilder().PortHint(70000).Timeout(-time.Second).AddScopes("a b").Build()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"ClientID", "AuthURL", "TokenURL", "PortHint", "Timeout", "AddScopes"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %s:\n%s", want, msg)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 6 {
		t.Errorf("want 6 joined errors, got %v", err)
	}
}

// TestBuildRejects covers rows and the openid rule.
func TestBuildRejects(t *testing.T) {
	cases := []struct {
		id   string
		b    *CLITokenClientBuilder
		want string
	}{
		{"A-01 fragment", validBuilder().AuthURL("https://as.example/authorize?tenant=x#frag"), "fragment"},
		{"A-01 empty fragment", validBuilder().TokenURL("https://as.example/token#"), "fragment"},
		{"A-02 http non-loopback", validBuilder().AuthURL("http://as.example/authorize"), "scheme"},
		{"A-02 javascript", validBuilder().AuthURL("javascript:alert(1)"), "absolute"},
		{"A-02 file", validBuilder().AuthURL("file:///etc/passwd"), "absolute URL with a host"},
		{"A-02 custom scheme", validBuilder().AuthURL("myapp://as.example/authorize"), "scheme"},
		{"A-02 userinfo", validBuilder().AuthURL("https://u:p@as.example/"), "user information"},
		{"A-02 empty host", validBuilder().TokenURL("https:///token"), "host"},
		{"A-02 relative", validBuilder().TokenURL("/token"), "absolute"},
		{"A-02 http on a 127 lookalike name", validBuilder().TokenURL("http://127.0.0.1.evil.example/token"), "scheme"},
		{"A-07 scope with space", validBuilder().AddScopes("read write"), "AddScopes"},
		{"A-07 scope with quote", validBuilder().AddScopes(`a"b`), "AddScopes"},
		{"A-07 scope with backslash", validBuilder().AddScopes(`a\b`), "AddScopes"},
		{"A-07 scope with control", validBuilder().AddScopes("a\x00b"), "AddScopes"},
		{"A-07 non-ASCII scope", validBuilder().AddScopes("café"), "AddScopes"},
		{"A-07 empty scope", validBuilder().AddScopes(""), "AddScopes"},
		{"A-08 empty client ID", validBuilder().ClientID(""), "ClientID"},
		{"A-08 client ID with space", validBuilder().ClientID("a b"), "ClientID"},
		{"A-08 client ID with CRLF", validBuilder().ClientID("a\r\nb"), "ClientID"},
		{"client secret with CRLF", validBuilder().ClientSecret("s\r\n"), "ClientSecret"},
		{"openid through AddScopes", validBuilder().AddScopes(ScopeOpenID), "openid"},
		{"openid as a string", validBuilder().AddScopes(Scope("openid")), "openid"},
		{"port 0 required", validBuilder().RequirePort(0), "RequirePort"},
		{"negative port", validBuilder().PortHint(-1), "PortHint"},
		{"zero timeout", validBuilder().Timeout(0), "Timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			c, err := tc.b.Build()
			if err == nil {
				t.Fatalf("Build succeeded: %+v", c)
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
}

// TestBuildSnapshot checks that a builder can be reused and later changes
// do not reach a built client.
func TestBuildSnapshot(t *testing.T) {
	b := validBuilder().AddScopes("b", ScopeEmail, "a", ScopeEmail)
	c1, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	b.AddScopes("later").ClientID("other")
	c2, _ := b.Build()
	if got := joinScopes(c1.scopes); got != "email a b" {
		t.Errorf("scopes = %q, want sorted and de-duplicated %q", got, "email a b")
	}
	if c1.clientID != "my-client" || len(c1.scopes) != 3 || c2.clientID != "other" || len(c2.scopes) != 4 {
		t.Error("builder changes reached an earlier client")
	}
}

// TestAuthorizationURL checks the parameters, the kept endpoint query
// the scope order, and the reserved-parameter filter.
func TestAuthorizationURL(t *testing.T) {
	c, err := validBuilder().AuthURL("https://as.example.com/authorize?tenant=x").
		AddScopes("zeta", ScopeOfflineAccess, "alpha", ScopeProfile, ScopeEmail).
		OnAuthURL(func(p *ExtraAuthParams) {
			p.Append("access_type", "offline").Append("prompt", "consent")
			for _, k := range reservedAuthParams {
				p.Append(k, "INJECTED")
			}
			p.Append("STATE", "INJECTED").Append("", "empty-key")
		}).Build()
	if err != nil {
		t.Fatal(err)
	}
	sec := flowSecrets{verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", state: "the-state"}
	u := c.authorizationURL("http://127.0.0.1:5555/callback", sec)
	q := u.Query()
	want := map[string]string{
		"tenant":                "x",
		"response_type":         "code",
		"client_id":             "my-client",
		"redirect_uri":          "http://127.0.0.1:5555/callback",
		"state":                 "the-state",
		"code_challenge":        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		"code_challenge_method": "S256",
		"scope":                 "email profile offline_access alpha zeta",
		"access_type":           "offline",
		"prompt":                "consent",
	}
	for k, v := range want {
		if got := q[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want exactly [%q]", k, got, v)
		}
	}
	if len(q) != len(want) {
		t.Errorf("unexpected parameters in %s", u)
	}
	if strings.Contains(u.String(), "INJECTED") || strings.Contains(u.String(), "empty-key") {
		t.Errorf("reserved parameter passed through: %s", u)
	}
	if u.Scheme != "https" || u.Host != "as.example.com" || u.Path != "/authorize" || u.Fragment != "" {
		t.Errorf("endpoint changed: %s", u)
	}
	// The configured URL is not modified by building a request.
	if c.authURL.RawQuery != "tenant=x" {
		t.Errorf("configured URL mutated: %s", c.authURL)
	}
	if _, err := url.Parse(u.String()); err != nil {
		t.Error(err)
	}
}

// TestClientAuthMethodChoice checks which method a client sends its secret
// with: forced by ClientAuthMethod, else chosen from the discovery
// document (basic unless it offers post alone; basic when silent, as
// Discovery §3 defaults), else client_secret_post; none without a secret.
// The wire format of each is TestClientSecretBasic's and
// TestClientAuthAgainstProvider's.
func TestClientAuthMethodChoice(t *testing.T) {
	from := func(methods ...string) *CLITokenClientBuilder {
		return FromOpenIDConfiguration(&OpenIDConfiguration{Issuer: "https://op.example", AuthorizationEndpoint: "https://op.example/a",
			TokenEndpoint: "https://op.example/t", TokenEndpointAuthMethodsSupported: methods}).WithoutJWKSValidation()
	}
	cases := []struct {
		name   string
		b      *CLITokenClientBuilder
		secret string
		want   string // "" means client_secret_post, or none without a secret
	}{
		{"no discovery", validBuilder(), "s", ""},
		{"document silent", from(), "s", ClientSecretBasic},
		{"both offered", from("client_secret_post", "client_secret_basic"), "s", ClientSecretBasic},
		{"post only", from("none", "client_secret_post"), "s", ClientSecretPost},
		{"neither offered", from("private_key_jwt"), "s", ClientSecretBasic},
		{"forced over discovery", from("client_secret_post").ClientAuthMethod(ClientSecretBasic), "s", ClientSecretBasic},
		{"forced without discovery", validBuilder().ClientAuthMethod(ClientSecretBasic), "s", ClientSecretBasic},
		{"reset to the default", from("client_secret_post").ClientAuthMethod(ClientSecretBasic).ClientAuthMethod(""), "s", ClientSecretPost},
		{"public client", from(), "", ""},
		{"public client, forced", validBuilder().ClientAuthMethod(ClientSecretPost), "", ""},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.b.ClientID("c").ClientSecret(tt.secret).Build()
			if err != nil {
				t.Fatal(err)
			}
			if c.authMethod != tt.want {
				t.Errorf("method %q, want %q", c.authMethod, tt.want)
			}
		})
	}
	_, err := validBuilder().ClientSecret("s").ClientAuthMethod("client_secret_jwt").Build()
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), `"client_secret_basic" or "client_secret_post"`) {
		t.Errorf("unknown method: err = %v", err)
	}
}
