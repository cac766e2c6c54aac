package loopauthtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/loopauth/loopauth/loopauthtest"
)

// Start a provider and read its discovery document, as a client library
// does before a login.
func ExampleStartProvider() {
	p, err := loopauthtest.StartProvider()
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	resp, err := http.Get(p.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer                string   `json:"issuer"`
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		TokenEndpoint         string   `json:"token_endpoint"`
		JWKSURI               string   `json:"jwks_uri"`
		Challenge             []string `json:"code_challenge_methods_supported"`
		Algs                  []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		log.Fatal(err)
	}
	fmt.Println("issuer is the provider:", doc.Issuer == p.Issuer())
	fmt.Println("authorization endpoint:", strings.TrimPrefix(doc.AuthorizationEndpoint, doc.Issuer))
	fmt.Println("token endpoint:", strings.TrimPrefix(doc.TokenEndpoint, doc.Issuer))
	fmt.Println("jwks:", strings.TrimPrefix(doc.JWKSURI, doc.Issuer))
	fmt.Println("PKCE:", doc.Challenge, "signing:", doc.Algs)
	// Output:
	// issuer is the provider: true
	// authorization endpoint: /authorize
	// token endpoint: /token
	// jwks: /jwks
	// PKCE: [S256] signing: [ES256]
}

// Browser plays the user: it opens the authorization URL and delivers the
// code to the program's loopback callback.
func ExampleProvider_Browser() {
	p, err := loopauthtest.StartProvider(loopauthtest.WithClient("my-cli", ""))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	// The program under test listens on a loopback port for the callback.
	got := make(chan url.Values, 1)
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query()
		fmt.Fprintln(w, "Signed in. You can close this window.")
	}))
	defer callback.Close()

	authURL := p.AuthURL() + "?" + url.Values{
		"response_type":         {"code"},
		"client_id":             {"my-cli"},
		"redirect_uri":          {callback.URL + "/callback"},
		"scope":                 {"openid email"},
		"state":                 {"xyz"},
		"code_challenge":        {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSstw-cM"},
		"code_challenge_method": {"S256"},
	}.Encode()

	open := p.Browser() // assign this to the library's browser-opening hook
	if err := open(context.Background(), authURL); err != nil {
		log.Fatal(err)
	}
	q := <-got
	fmt.Println("state:", q.Get("state"))
	fmt.Println("got a code:", q.Get("code") != "")
	fmt.Println("authorize requests:", len(p.AuthorizeRequests()))
	// Output:
	// state: xyz
	// got a code: true
	// authorize requests: 1
}
