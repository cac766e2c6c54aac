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

// countingTransport records the paths of the requests it carries, and
// fails those whose path is in fail.
type countingTransport struct {
	mu    sync.Mutex
	paths []string
	fail  map[string]int // path: how many more times to fail it
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.paths = append(t.paths, r.URL.Path)
	failing := t.fail[r.URL.Path] > 0
	if failing {
		t.fail[r.URL.Path]--
	}
	t.mu.Unlock()
	if failing {
		return nil, errors.New("network is unreachable")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (t *countingTransport) calls() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.paths, " ")
}

// TestFromIssuer: a client built from the issuer alone fetches nothing
// until it needs the provider, discovers it once, and a Token call with a
// fresh stored set makes no request at all, even with the provider down.
func TestFromIssuer(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	tr := &countingTransport{}
	build := func(more ...func(*CLITokenClientBuilder)) *CLITokenClient {
		b := FromIssuer(p.Issuer()).ClientID("test-cli").AddScopes(ScopeEmail, ScopeOfflineAccess).
			BrowserOpener(p.Browser()).Timeout(10 * time.Second).Stderr(io.Discard).HTTPClient(&http.Client{Transport: tr})
		for _, f := range more {
			f(b)
		}
		c, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := context.Background()
	store := NewMemoryStore()

	c := build()
	if got := tr.calls(); got != "" {
		t.Fatalf("Build made requests: %s", got)
	}
	ts, err := c.Token(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tr.calls(), wellKnownOpenIDPath+" /token /jwks"; got != want {
		t.Errorf("sign-in requests: %s, want %s", got, want)
	}
	if ts.IDToken() == nil || ts.IDToken().Claims().Issuer != p.Issuer() {
		t.Fatalf("token set %v", ts)
	}

	// A later command: a new client, the stored set still fresh.
	before := tr.calls()
	for _, nonInteractive := range []bool{false, true} {
		later := build(func(b *CLITokenClientBuilder) {
			if nonInteractive {
				b.NonInteractive()
			}
		})
		got, err := later.Token(ctx, store)
		if err != nil || got.AccessToken() != ts.AccessToken() {
			t.Fatalf("stored set: %v, %v", got, err)
		}
	}
	if tr.calls() != before {
		t.Errorf("Token with a fresh stored set made requests: %s", strings.TrimPrefix(tr.calls(), before))
	}

	// Expiring: the refresh discovers first, once per client.
	later := build()
	set, _ := store.Load(ctx)
	for range 2 {
		out, err := later.RefreshIfExpiring(ctx, set, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		set = out.TokenSet()
	}
	if got, want := strings.TrimPrefix(tr.calls(), before+" "), wellKnownOpenIDPath+" /token /jwks /token"; got != want {
		t.Errorf("refresh requests: %s, want %s", got, want)
	}

	// Revocation uses the document's revocation_endpoint.
	if err := later.Revoke(ctx, ts.AccessToken()); err != nil || len(p.RevocationRequests()) != 1 {
		t.Errorf("revoke: %v", err)
	}

	// The provider down: a fresh stored set is still served.
	p.Close()
	fresh := build(func(b *CLITokenClientBuilder) { b.NonInteractive() })
	if _, err := fresh.Token(ctx, store); err != nil {
		t.Errorf("provider down: %v", err)
	}
}

// TestFromIssuerDiscoveryRetried: a failed discovery fails the call that
// needed it, and the next call fetches the document again.
func TestFromIssuerDiscoveryRetried(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	tr := &countingTransport{fail: map[string]int{wellKnownOpenIDPath: 1}}
	c, err := FromIssuer(p.Issuer()).ClientID("test-cli").BrowserOpener(p.Browser()).Stderr(io.Discard).
		HTTPClient(&http.Client{Transport: tr}).Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunAuthorizationFlow(context.Background()); !errors.Is(err, ErrInvalidDiscovery) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err = %v, want the discovery failure", err)
	}
	if len(p.AuthorizeRequests()) != 0 {
		t.Fatal("signed in without a discovery document")
	}
	if _, err := c.RunAuthorizationFlow(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestFromIssuerBuild(t *testing.T) {
	cases := []struct {
		name string
		b    *CLITokenClientBuilder
		want string // "" when Build must succeed
	}{
		{"issuer alone", FromIssuer("https://op.example"), ""},
		{"without validation", FromIssuer("https://op.example").WithoutJWKSValidation(), ""},
		{"own validator", FromIssuer("https://op.example").JWKSValidator(NewRemoteJWKSValidator("https://op.example/k", "cli")), ""},
		{"empty issuer", FromIssuer(""), "needs the expected issuer"},
		{"plain http", FromIssuer("http://op.example"), "not an https URL"},
		{"another Issuer", FromIssuer("https://op.example").Issuer("https://other.example"), "differs between Issuer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.b.ClientID("cli").Build()
			if (err == nil) != (tc.want == "") || err != nil && (!errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestFromIssuerMismatch: a document whose issuer is not the configured
// one exactly stops the sign-in before the browser opens.
func TestFromIssuerMismatch(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithDiscoveryIssuer("http://127.0.0.1:1"))
	c, err := FromIssuer(p.Issuer()).ClientID("test-cli").BrowserOpener(p.Browser()).Stderr(io.Discard).Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunAuthorizationFlow(context.Background()); !errors.Is(err, ErrInvalidIssuer) {
		t.Fatalf("err = %v, want ErrInvalidIssuer", err)
	}
	if len(p.AuthorizeRequests()) != 0 {
		t.Error("the browser was sent to the provider")
	}
}
