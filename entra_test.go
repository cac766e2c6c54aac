package loopauth

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/loopauth/loopauth/loopauthtest"
)

const (
	tenantA = "9188040d-6c67-4c5b-b112-36a304b66dad"
	tenantB = "72f988bf-86f1-41af-91ab-2d7cd011db47"
)

func TestEntraIssuer(t *testing.T) {
	const tmpl = "https://login.microsoftonline.com/{tenantid}/v2.0"
	for _, tc := range []struct {
		tid, want string
	}{
		{tenantA, "https://login.microsoftonline.com/" + tenantA + "/v2.0"},
		{strings.ToUpper(tenantA), "https://login.microsoftonline.com/" + strings.ToUpper(tenantA) + "/v2.0"},
		{"", ""},
		{"common", ""},
		{tenantA + "0", ""},
		{tenantA[:35], ""},
		{strings.Replace(tenantA, "-", "0", 1), ""},
		{"9188040d-6c67-4c5b-b112-36a304b66daX", ""},
		{"9188040d-6c67-4c5b-b112-36a304b6/dad", ""},
		{"9188040d6-c67-4c5b-b112-36a304b66dad", ""},
	} {
		got, err := EntraIssuer(tmpl, tc.tid)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("EntraIssuer(%q) = %q, %v; want %q", tc.tid, got, err, tc.want)
		}
	}
}

func TestFitsTemplate(t *testing.T) {
	const tmpl = "https://login.microsoftonline.com/{tenantid}/v2.0"
	for s, want := range map[string]bool{
		"https://login.microsoftonline.com/organizations/v2.0":   true,
		"https://login.microsoftonline.com/" + tenantA + "/v2.0": true,
		"https://login.microsoftonline.com//v2.0":                false,
		"https://login.microsoftonline.com/a/b/v2.0":             false,
		"https://login.microsoftonline.com/a/v2.0/":              false,
		"https://login.microsoftonline.com/%2F/v2.0":             false,
		"https://login.microsoftonline.com/{tenantid}/v2.0":      false,
		"https://evil.example/" + tenantA + "/v2.0":              false,
	} {
		if got := fitsTemplate(tmpl, s); got != want {
			t.Errorf("fitsTemplate(%q) = %v", s, got)
		}
	}
	if fitsTemplate("https://op.example/v2.0", "https://op.example/v2.0") {
		t.Error("an issuer without the placeholder is not a template")
	}
}

// TestEntraDiscovery: the multi-tenant documents name the template, which
// is accepted from the "organizations" and "common" URLs only.
func TestEntraDiscovery(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		tmpl := srv.URL + "/{tenantid}/v2.0"
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": tmpl, "authorization_endpoint": srv.URL + "/a", "token_endpoint": srv.URL + "/t",
			"jwks_uri": srv.URL + "/k", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"pairwise"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	}))
	defer srv.Close()
	for _, tenant := range []string{"organizations", "common"} {
		cfg, err := FetchOpenIDConfiguration(context.Background(), srv.URL+"/"+tenant+"/v2.0")
		if err != nil || cfg.Issuer != srv.URL+"/{tenantid}/v2.0" {
			t.Fatalf("%s: %v, %v", tenant, cfg, err)
		}
		_, err = FromOpenIDConfiguration(cfg).ClientID("cli").WithOpenIDScope().WithoutJWKSValidation().Build()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "IssuerTemplate(loopauth.EntraIssuer)") {
			t.Errorf("a template issuer without IssuerTemplate: %v", err)
		}
		if _, err := FromOpenIDConfiguration(cfg).ClientID("cli").WithOpenIDScope().WithoutJWKSValidation().IssuerTemplate(EntraIssuer).Build(); err != nil {
			t.Error(err)
		}
	}
	for _, where := range []string{"/organizations/v1.0", "/a/b/v2.0", ""} {
		if _, err := FetchOpenIDConfiguration(context.Background(), srv.URL+where); !errors.Is(err, ErrInvalidIssuer) {
			t.Errorf("%q: err = %v, want ErrInvalidIssuer", where, err)
		}
	}
}

// TestEntraFlow: with IssuerTemplate, each ID token's iss must be the
// template filled with its own tid; the stored set is then recognised.
func TestEntraFlow(t *testing.T) {
	onlyA := func(tmpl, tid string) (string, error) {
		if tid != tenantA {
			return "", errors.New("tenant not admitted")
		}
		return EntraIssuer(tmpl, tid)
	}
	cases := []struct {
		name     string
		tid, iss string // iss: the tenant in the ID token's iss
		fn       func(tmpl, tid string) (string, error)
		want     string // "" for success, else in the error
	}{
		{"tenant's issuer", tenantA, tenantA, EntraIssuer, ""},
		{"another tenant's issuer", tenantA, tenantB, EntraIssuer, "iss"},
		{"no tid", "", tenantA, EntraIssuer, "tid is not a tenant ID"},
		{"tenant not admitted", tenantB, tenantB, onlyA, "tenant not admitted"},
		{"answer outside the template", tenantA, tenantA, func(string, string) (string, error) { return "https://evil.example/", nil }, "does not fit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p *loopauthtest.Provider
			p = loopauthtest.NewProvider(t, loopauthtest.WithIDTokenClaims(func(c map[string]any) {
				c["iss"] = p.Issuer() + "/" + tc.iss + "/v2.0"
				if tc.tid != "" {
					c["tid"] = tc.tid
				}
			}))
			entra := func(b *CLITokenClientBuilder) {
				b.WithOpenIDScope().Issuer(p.Issuer() + "/{tenantid}/v2.0").IssuerTemplate(tc.fn).
					JWKSValidator(NewRemoteJWKSValidator(p.JWKSURL(), "test-cli"))
			}
			c := flowClient(t, p, nil, entra)
			store := NewMemoryStore()
			ts, err := c.Token(context.Background(), store)
			if tc.want != "" {
				if !errors.Is(err, ErrInvalidIssuer) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want ErrInvalidIssuer saying %q", err, tc.want)
				}
				return
			}
			if err != nil || ts.IDToken().Claims().Issuer != p.Issuer()+"/"+tenantA+"/v2.0" {
				t.Fatalf("%v, %v", ts, err)
			}
			later := flowClient(t, p, nil, entra, func(b *CLITokenClientBuilder) { b.NonInteractive() })
			if _, err := later.Token(context.Background(), store); err != nil {
				t.Errorf("the stored set was not recognised: %v", err)
			}
		})
	}
}

// TestEntraCallbackIss: with a template issuer, the callback's RFC 9207
// iss must fit the template: a tenant's is accepted, another path of the
// same origin is refused before any token request.
func TestEntraCallbackIss(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{{"/" + tenantA + "/v2.0", true}, {"/a/b/v2.0", false}, {"/v2.0", false}} {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		origin := "http://" + addr
		p := loopauthtest.NewProvider(t, loopauthtest.WithAddr(addr), loopauthtest.WithIssParameterValue(origin+tc.path),
			loopauthtest.WithIDTokenClaims(func(c map[string]any) { c["iss"], c["tid"] = origin+"/"+tenantA+"/v2.0", tenantA }))
		c := flowClient(t, p, nil, func(b *CLITokenClientBuilder) {
			b.WithOpenIDScope().Issuer(origin + "/{tenantid}/v2.0").IssuerTemplate(EntraIssuer).
				JWKSValidator(NewRemoteJWKSValidator(p.JWKSURL(), "test-cli"))
		})
		_, err = c.RunAuthorizationFlow(context.Background())
		if tc.want != (err == nil) || !tc.want && (!errors.Is(err, ErrInvalidIssuer) || len(p.TokenRequests()) != 0) {
			t.Errorf("callback iss %q: err = %v, token requests %d", tc.path, err, len(p.TokenRequests()))
		}
	}
}
