package loopauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/loopauth/loopauth"
	"github.com/loopauth/loopauth/loopauthtest"
)

// A whole sign-in, run in-process against the test provider: its Browser
// plays the user who approves.
func ExampleCLITokenClient_RunAuthorizationFlow() {
	provider, err := loopauthtest.StartProvider()
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()

	client, err := loopauth.NewBuilder().
		ClientID("example-cli").
		AuthURL(provider.AuthURL()).
		TokenURL(provider.TokenURL()).
		AddScopes(loopauth.ScopeEmail, loopauth.ScopeOfflineAccess).
		BrowserOpener(provider.Browser()). // a real CLI leaves the default: the system browser
		Build()
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := client.RunAuthorizationFlow(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("token type:", tokens.TokenType())
	fmt.Println("scopes:", tokens.Scopes())
	fmt.Println("has refresh token:", tokens.RefreshToken() != "")
	fmt.Println("expired:", tokens.IsExpired())

	// Later: a new access token, and a rotated refresh token.
	refreshed, err := client.Refresh(context.Background(), tokens.RefreshToken())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new access token:", refreshed.AccessToken() != tokens.AccessToken())
	// Output:
	// token type: Bearer
	// scopes: [email offline_access]
	// has refresh token: true
	// expired: false
	// new access token: true
}

// Build reports every problem at once, each naming the method to fix.
func ExampleCLITokenClientBuilder_Build() {
	_, err := loopauth.NewBuilder().
		AuthURL("http://provider.example.com/authorize").
		AddScopes("read write").
		Build()
	fmt.Println(errors.Is(err, loopauth.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// loopauth: invalid configuration: no client ID: call ClientID with the ID registered at the provider
	// loopauth: invalid configuration: AuthURL: scheme "http" is not allowed: use https (http only for a loopback host)
	// loopauth: invalid configuration: TokenURL: not set
	// loopauth: invalid configuration: scope "read write" contains characters RFC 6749 does not allow (space, quote, backslash, control or non-ASCII): check AddScopes
}

// A token set prints without its secrets, whatever the verb; JSON, for
// storage, keeps them.
func ExampleTokenSet_String() {
	var tokens loopauth.TokenSet
	stored := `{"access_token":"SECRET-A","refresh_token":"SECRET-R","expires_at":2000000000,"token_type":"Bearer","oidc":null,"scopes":["email"]}`
	if err := json.Unmarshal([]byte(stored), &tokens); err != nil {
		log.Fatal(err)
	}
	fmt.Println(&tokens)
	fmt.Printf("%+v\n", &tokens)
	fmt.Println(strings.Contains(fmt.Sprintf("%#v", &tokens), "SECRET"))
	// Output:
	// TokenSet{type: Bearer, access_token: [redacted], refresh_token: [redacted], expires: 2033-05-18T03:33:20Z, scopes: "email"}
	// TokenSet{type: Bearer, access_token: [redacted], refresh_token: [redacted], expires: 2033-05-18T03:33:20Z, scopes: "email"}
	// false
}

// Provider-specific authorization parameters go through OnAuthURL;
// parameters the flow owns cannot be overridden.
func ExampleCLITokenClientBuilder_OnAuthURL() {
	_, err := loopauth.NewBuilder().
		ClientID("my-client-id").
		AuthURL("https://accounts.google.com/o/oauth2/v2/auth").
		TokenURL("https://oauth2.googleapis.com/token").
		OnAuthURL(func(p *loopauth.ExtraAuthParams) {
			p.Append("access_type", "offline").Append("prompt", "consent")
		}).
		Build()
	fmt.Println(err)
	// Output:
	// <nil>
}

// OpenID Connect from the provider's discovery document: endpoints, issuer
// and signing keys all come from it, and the ID token is verified.
func ExampleFromOpenIDConfiguration() {
	provider, err := loopauthtest.StartProvider(loopauthtest.WithUser(loopauthtest.User{
		Subject: "user-42",
		Email:   "ada@example.com",
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()

	ctx := context.Background()
	cfg, err := loopauth.FetchOpenIDConfiguration(ctx, provider.Issuer())
	if err != nil {
		log.Fatal(err)
	}
	client, err := loopauth.FromOpenIDConfiguration(cfg). // adds the openid scope
								ClientID("example-cli").
								WithOpenIDConfigurationJWKSValidator(cfg).
								AddScopes(loopauth.ScopeEmail).
								BrowserOpener(provider.Browser()).
								Build()
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := client.RunAuthorizationFlow(ctx)
	if err != nil {
		log.Fatal(err)
	}
	claims := tokens.IDToken().Claims() // verified: signature, iss, aud, exp, nonce
	fmt.Println("scopes:", tokens.Scopes())
	fmt.Println("subject:", claims.Subject)
	fmt.Println("email:", claims.Email)
	// Output:
	// scopes: [openid email]
	// subject: user-42
	// email: ada@example.com
}
