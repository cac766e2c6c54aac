package loopauthtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/loopauth/loopauth"
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

// signIn signs in to p as the client "my-cli" with loopauth, the library
// the provider exists to test.
func signIn(p *loopauthtest.Provider, scopes ...loopauth.Scope) (*loopauth.CLITokenClient, *loopauth.TokenSet) {
	client, err := loopauth.NewBuilder().
		ClientID("my-cli").
		AuthURL(p.AuthURL()).
		TokenURL(p.TokenURL()).
		AddScopes(scopes...).
		BrowserOpener(p.Browser()).
		Stderr(io.Discard).
		Build()
	if err != nil {
		log.Fatal(err)
	}
	ts, err := client.RunAuthorizationFlow(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	return client, ts
}

// A fake API in the test's process accepts the access tokens the provider
// issued, and only while they are good.
func ExampleProvider_CheckAccessToken() {
	p, err := loopauthtest.StartProvider(loopauthtest.WithClient("my-cli", ""))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		info, ok := p.CheckAccessToken(token)
		if !ok {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "hello %s, %s may %s", info.Subject, info.ClientID, info.Scope)
	}))
	defer api.Close()
	call := func(token string) {
		req, _ := http.NewRequest(http.MethodGet, api.URL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %s\n", resp.StatusCode, strings.TrimSpace(string(body)))
	}

	_, ts := signIn(p, "read")
	call(ts.AccessToken())
	call("forged")
	// Output:
	// 200 hello user-1234, my-cli may read
	// 401 invalid token
}

// Logout revokes the refresh token (RFC 7009). Its access tokens end with
// it: introspection (RFC 7662), which a fake API in another process uses,
// says so, and the refresh token no longer refreshes.
func ExampleProvider_RevocationURL() {
	p, err := loopauthtest.StartProvider(loopauthtest.WithClient("my-cli", ""))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	client, ts := signIn(p, loopauth.ScopeOfflineAccess)

	introspect := func() {
		form := url.Values{"token": {ts.AccessToken()}}
		req, _ := http.NewRequest(http.MethodPost, p.IntrospectionURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(loopauthtest.DefaultIntrospectionID, loopauthtest.DefaultIntrospectionSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		var answer struct {
			Active bool   `json:"active"`
			Sub    string `json:"sub"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("introspection: active=%v sub=%q\n", answer.Active, answer.Sub)
	}

	introspect()
	resp, err := http.PostForm(p.RevocationURL(), url.Values{
		"token":           {ts.RefreshToken()},
		"token_type_hint": {"refresh_token"},
		"client_id":       {"my-cli"},
	})
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("revocation:", resp.Status)
	introspect()
	_, err = client.Refresh(context.Background(), ts.RefreshToken())
	var pe *loopauth.ProviderError
	fmt.Println("refresh refused:", errors.As(err, &pe) && pe.ErrorCode == "invalid_grant")
	fmt.Println("revocation requests:", len(p.RevocationRequests()))
	// Output:
	// introspection: active=true sub="user-1234"
	// revocation: 200 OK
	// introspection: active=false sub=""
	// refresh refused: true
	// revocation requests: 1
}
