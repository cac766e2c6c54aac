package loopauth

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/loopauth/loopauth/loopauthtest"
)

// logRecords decodes a JSON slog stream.
func logRecords(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestProviderCallsLogged: with a Logger, every call to the provider (the
// key set, the token request, the refresh, the revocation) is one debug
// record with method, URL without query, status, bytes and duration, and
// no record holds a header value or a body.
func TestProviderCallsLogged(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithClient("test-cli", secretClient))
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg, err := FetchOpenIDConfiguration(context.Background(), p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	c := flowClient(t, p, nil, func(b *CLITokenClientBuilder) {
		b.WithOpenIDScope().WithOpenIDConfigurationJWKSValidator(cfg).Issuer(p.Issuer()).TokenURL(p.TokenURL() + "?x=query-secret").
			Logger(logger).ClientSecret(secretClient).RevocationURL(p.RevocationURL())
	})
	ts, err := c.RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(context.Background(), ts.RefreshToken()); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(context.Background(), ts.AccessToken()); err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, r := range logRecords(t, logs.String()) {
		if r["msg"] != "loopauth: provider call" {
			continue
		}
		revocation := strings.HasSuffix(r["url"].(string), "/revoke") // answers an empty body
		if r["level"] != "DEBUG" || r["status"] != float64(200) || (r["bytes"].(float64) <= 0) != revocation || r["duration"] == nil {
			t.Errorf("record %v", r)
		}
		calls = append(calls, r["method"].(string)+" "+r["url"].(string))
	}
	want := []string{"POST " + p.TokenURL(), "GET " + p.JWKSURL(), "POST " + p.TokenURL(), "POST " + p.RevocationURL()}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls logged:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	for _, secret := range []string{"query-secret", secretClient, ts.AccessToken(), ts.RefreshToken(), p.TokenRequests()[0].Get("code"), "Basic "} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// TestJWKSSkippedKeysWarned: each key a fetched set cannot use is logged
// at warn with its kid and the reason; a set with none usable says the
// first reason in its error.
func TestJWKSSkippedKeysWarned(t *testing.T) {
	k := testKeys()
	good := rsaJWK(&k.rsa.PublicKey, `,"kid":"good"`)
	cases := []struct{ key, kid, why string }{
		{`{"kty":"oct","kid":"hmac","alg":"HS256"}`, "hmac", "unsupported key type"},
		{rsaJWK(&k.rsa.PublicKey, `,"kid":"enc","use":"enc"`), "enc", "not a signing key"},
		{`{"kty":"RSA","kid":"short","n":"AQAB","e":"AQAB"}`, "short", "unusable RSA key parameters"},
		{rsaJWK(&k.rsa.PublicKey, `,"kid":"es","alg":"ES256"`), "es", "alg does not fit"},
		{`{"kty":"RSA","kid":5}`, "", "not a string"},
	}
	for _, tc := range cases {
		t.Run(tc.why, func(t *testing.T) {
			if _, err := ParseJSONWebKeySet(jwks(tc.key)); !errors.Is(err, ErrNoUsableKey) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("alone: err = %v, want the reason %q", err, tc.why)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write(jwks(good, tc.key))
			}))
			defer srv.Close()
			var logs syncBuffer
			v := NewRemoteJWKSValidator(srv.URL, "")
			v.logger = slog.New(slog.NewJSONHandler(&logs, nil))
			if set, _, err := v.fetch(context.Background()); err != nil || len(set.keys) != 1 {
				t.Fatalf("fetch: %v, %v", set, err)
			}
			var warned int
			for _, r := range logRecords(t, logs.String()) {
				if r["level"] == "WARN" {
					warned++
					if r["kid"] != tc.kid || !strings.Contains(r["reason"].(string), tc.why) || r["url"] != srv.URL {
						t.Errorf("record %v", r)
					}
				}
			}
			if warned != 1 {
				t.Errorf("%d warnings, want 1:\n%s", warned, logs.String())
			}
		})
	}
}

// TestCallerHTTPClient: the caller's client (here one trusting a private
// CA) serves discovery, key sets and the builder's key set, and is never
// modified; without it, the private CA is not trusted.
func TestCallerHTTPClient(t *testing.T) {
	k := testKeys()
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case wellKnownOpenIDPath:
			json.NewEncoder(w).Encode(map[string]any{
				"issuer": srv.URL, "authorization_endpoint": srv.URL + "/a", "token_endpoint": srv.URL + "/t",
				"jwks_uri": srv.URL + "/jwks", "response_types_supported": []string{"code"},
				"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
			})
		case "/jwks":
			w.Write(jwks(rsaJWK(&k.rsa.PublicKey, `,"kid":"a"`)))
		}
	}))
	defer srv.Close()
	client := srv.Client()
	transport := client.Transport
	ctx := context.Background()

	var unknownCA x509.UnknownAuthorityError
	if _, err := FetchOpenIDConfiguration(ctx, srv.URL); !errors.As(err, &unknownCA) {
		t.Errorf("default client: err = %v, want an unknown authority", err)
	}
	cfg, err := FetchOpenIDConfigurationWithClient(ctx, client, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewRemoteJWKSValidator(cfg.JWKSURI, "").fetch(ctx); !errors.As(err, &unknownCA) {
		t.Errorf("default client: err = %v, want an unknown authority", err)
	}
	if set, _, err := NewRemoteJWKSValidatorWithClient(client, cfg.JWKSURI, "").fetch(ctx); err != nil || len(set.keys) != 1 {
		t.Errorf("caller's client: %v, %v", set, err)
	}
	c, err := FromOpenIDConfiguration(cfg).ClientID("cli").WithOpenIDScope().
		WithOpenIDConfigurationJWKSValidator(cfg).HTTPClient(client).Build()
	if err != nil {
		t.Fatal(err)
	}
	if set, _, err := c.validator.(*RemoteJWKSValidator).fetch(ctx); err != nil || len(set.keys) != 1 {
		t.Errorf("builder's key set: %v, %v", set, err)
	}
	if client.CheckRedirect != nil || client.Transport != transport {
		t.Error("the caller's client was modified")
	}
}
