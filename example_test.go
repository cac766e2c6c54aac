package loopauth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

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
	// FromOpenIDConfiguration adds the openid scope and the expected issuer.
	client, err := loopauth.FromOpenIDConfiguration(cfg).
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

// Token is the one call a CLI makes before each command: the first run signs
// in and saves the tokens; later runs read them and open no browser.
func ExampleCLITokenClient_Token() {
	provider, err := loopauthtest.StartProvider()
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()

	// A real CLI keeps the file under os.UserConfigDir. FileStore refuses a
	// directory that others may write to; MkdirTemp makes one with mode 0700.
	dir, err := os.MkdirTemp("", "loopauth-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store := loopauth.NewFileStore(filepath.Join(dir, "tokens.json"))

	// Count the times the browser is opened.
	var signIns atomic.Int32
	browser := provider.Browser()
	client, err := loopauth.NewBuilder().
		ClientID("example-cli").
		AuthURL(provider.AuthURL()).
		TokenURL(provider.TokenURL()).
		AddScopes(loopauth.ScopeOfflineAccess).
		BrowserOpener(func(ctx context.Context, authURL string) error {
			signIns.Add(1)
			return browser(ctx, authURL)
		}).
		Build()
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	first, err := client.Token(ctx, store) // nothing stored: signs in
	if err != nil {
		log.Fatal(err)
	}
	second, err := client.Token(ctx, store) // still valid: read from the file
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("sign-ins:", signIns.Load())
	fmt.Println("same access token:", first.AccessToken() == second.AccessToken())
	fmt.Println("token requests:", len(provider.TokenRequests()))
	// Output:
	// sign-ins: 1
	// same access token: true
	// token requests: 1
}

// AuthorizedHTTPClient sends each request with the current access token,
// signing in or refreshing first when needed.
func ExampleCLITokenClient_AuthorizedHTTPClient() {
	provider, err := loopauthtest.StartProvider()
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()

	client, err := loopauth.NewBuilder().
		ClientID("example-cli").
		AuthURL(provider.AuthURL()).
		TokenURL(provider.TokenURL()).
		BrowserOpener(provider.Browser()).
		Build()
	if err != nil {
		log.Fatal(err)
	}
	store := loopauth.NewMemoryStore()

	// The API accepts the access token the store holds, sent as a Bearer
	// token (a real API asks the provider or checks a signature).
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens, err := store.Load(r.Context())
		if err != nil || r.Header.Get("Authorization") != "Bearer "+tokens.AccessToken() {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "hello, signed-in user")
	}))
	defer api.Close()

	resp, err := client.AuthorizedHTTPClient(store).Get(api.URL + "/me")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status)
	fmt.Println(string(body))
	// Output:
	// 200 OK
	// hello, signed-in user
}

// RefreshIfExpiring refreshes a token set that expires within the
// threshold, and returns it unchanged otherwise.
func ExampleCLITokenClient_RefreshIfExpiring() {
	provider, err := loopauthtest.StartProvider(loopauthtest.WithTokenLifetime(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()

	client, err := loopauth.NewBuilder().
		ClientID("example-cli").
		AuthURL(provider.AuthURL()).
		TokenURL(provider.TokenURL()).
		AddScopes(loopauth.ScopeOfflineAccess).
		BrowserOpener(provider.Browser()).
		Build()
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	tokens, err := client.RunAuthorizationFlow(ctx)
	if err != nil {
		log.Fatal(err)
	}

	// The token is valid for an hour: a one-minute threshold leaves it be.
	outcome, err := client.RefreshIfExpiring(ctx, tokens, time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("refreshed within 1m:", outcome.Refreshed())

	// A two-hour threshold forces the refresh.
	outcome, err = client.RefreshIfExpiring(ctx, tokens, 2*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("refreshed within 2h:", outcome.Refreshed())
	fmt.Println("new access token:", outcome.TokenSet().AccessToken() != tokens.AccessToken())
	fmt.Println("scopes kept:", outcome.TokenSet().Scopes())
	// Output:
	// refreshed within 1m: false
	// refreshed within 2h: true
	// new access token: true
	// scopes kept: [offline_access]
}

// A JSON Web Key Set checks the signature of any JWS from its provider;
// Verify returns the payload, whose claims are the caller's to check.
func ExampleJSONWebKeySet_Verify() {
	provider, err := loopauthtest.StartProvider()
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()

	resp, err := http.Get(provider.JWKSURL())
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		log.Fatal(err)
	}
	keys, err := loopauth.ParseJSONWebKeySet(data)
	if err != nil {
		log.Fatal(err)
	}

	jws := provider.SignIDToken(map[string]any{"iss": provider.Issuer(), "sub": "user-42"})
	payload, err := keys.Verify(jws)
	if err != nil {
		log.Fatal(err)
	}
	var claims struct {
		Subject string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		log.Fatal(err)
	}
	fmt.Println("subject:", claims.Subject)

	// Another payload under the same signature does not verify.
	parts := strings.Split(jws, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + provider.Issuer() + `","sub":"admin"}`))
	_, err = keys.Verify(strings.Join(parts, "."))
	fmt.Println("tampered token:", errors.Is(err, loopauth.ErrInvalidSignature))
	// Output:
	// subject: user-42
	// tampered token: true
}

// OpenID without discovery, as the Rust crate's README shows: explicit
// endpoints and issuer, and an ID token used only for display, so its
// signature is not checked (its claims still are).
func ExampleCLITokenClientBuilder_WithoutJWKSValidation() {
	provider, err := loopauthtest.StartProvider(loopauthtest.WithUser(loopauthtest.User{Email: "ada@example.com"}))
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()

	client, err := loopauth.NewBuilder().
		ClientID("example-cli").
		AuthURL(provider.AuthURL()).
		TokenURL(provider.TokenURL()).
		Issuer(provider.Issuer()). // OpenID mode requires the expected issuer
		WithOpenIDScope().
		WithoutJWKSValidation(). // or JWKSValidator(loopauth.NewRemoteJWKSValidator(...))
		AddScopes(loopauth.ScopeEmail).
		BrowserOpener(provider.Browser()).
		Build()
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := client.RunAuthorizationFlow(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("scopes:", tokens.Scopes())
	fmt.Println("signed in as:", tokens.IDToken().Claims().Email)
	// Output:
	// scopes: [openid email]
	// signed in as: ada@example.com
}

// A success page of one's own: the renderer gets what the page may show
// (identity, scopes, expiry), never the tokens.
func ExampleSuccessPageRendererFunc() {
	provider, err := loopauthtest.StartProvider(loopauthtest.WithUser(loopauthtest.User{Name: "Ada"}))
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()

	seen := make(chan string, 1)
	page := loopauth.SuccessPageRendererFunc(func(ctx context.Context, page *loopauth.PageContext) string {
		seen <- fmt.Sprintf("name %q, scopes %v, refresh token: %v",
			page.Claims().Name, page.Scopes(), page.HasRefreshToken())
		// The page is served as it is: escape the provider's text in it.
		return "<!doctype html><title>Signed in</title><p>Signed in as " +
			html.EscapeString(page.Claims().Name) + ". You can close this tab."
	})

	client, err := loopauth.NewBuilder().
		ClientID("example-cli").
		AuthURL(provider.AuthURL()).
		TokenURL(provider.TokenURL()).
		Issuer(provider.Issuer()).
		WithOpenIDScope().
		WithoutJWKSValidation().
		AddScopes(loopauth.ScopeProfile, loopauth.ScopeOfflineAccess).
		SuccessRenderer(page).
		BrowserOpener(provider.Browser()).
		Build()
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.RunAuthorizationFlow(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("the page saw:", <-seen)
	// Output:
	// the page saw: name "Ada", scopes [openid profile offline_access], refresh token: true
}

// A provider whose token response is not RFC 6749's, like Slack's, which
// nests the user's token and separates scopes with commas.
func ExampleTokenResponseParser() {
	provider, err := loopauthtest.StartProvider(loopauthtest.WithRawTokenResponse(http.StatusOK, "application/json",
		`{"ok":true,"authed_user":{"id":"U123","scope":"users:read,chat:write","access_token":"xoxp-example","token_type":"user"}}`))
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()

	slack := func(body []byte) (loopauth.TokenResponseFields, error) {
		var resp struct {
			OK         bool   `json:"ok"`
			Error      string `json:"error"`
			AuthedUser struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
				ExpiresIn    *int64 `json:"expires_in"` // only with token rotation on
				Scope        string `json:"scope"`
			} `json:"authed_user"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			return loopauth.TokenResponseFields{}, err
		}
		if !resp.OK {
			return loopauth.TokenResponseFields{}, fmt.Errorf("slack: %s", resp.Error)
		}
		u := resp.AuthedUser
		return loopauth.TokenResponseFields{
			AccessToken:  u.AccessToken, // Slack's "user" tokens are sent as Bearer tokens
			RefreshToken: u.RefreshToken,
			ExpiresIn:    u.ExpiresIn,
			Scope:        strings.ReplaceAll(u.Scope, ",", " "),
		}, nil
	}

	client, err := loopauth.NewBuilder().
		ClientID("example-cli").
		AuthURL(provider.AuthURL()).
		TokenURL(provider.TokenURL()).
		AddScopes("users:read", "chat:write").
		TokenResponseParser(slack).
		BrowserOpener(provider.Browser()).
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
	fmt.Println("expiry known:", !tokens.ExpiresAt().IsZero())
	fmt.Println("has refresh token:", tokens.RefreshToken() != "")
	// Output:
	// token type: Bearer
	// scopes: [users:read chat:write]
	// expiry known: false
	// has refresh token: false
}

// UseHTTPS serves the callback over TLS with a fresh self-signed
// certificate, for providers that demand an https redirect URI.
func ExampleCLITokenClientBuilder_UseHTTPS() {
	provider, err := loopauthtest.StartProvider()
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()

	// A browser warns about a self-signed certificate and the user must
	// click through; that is why UseHTTPS is for development, and
	// UseHTTPSWith (a certificate the browser trusts) for people. This user
	// agent stands in for that user: it accepts the certificate, as the
	// click does, and notes what it was.
	certs := make(chan *x509.Certificate, 1)
	clickThrough := &tls.Config{
		InsecureSkipVerify: true, // the user's click; never in a real client
		VerifyConnection: func(cs tls.ConnectionState) error {
			select {
			case certs <- cs.PeerCertificates[0]:
			default:
			}
			return nil
		},
	}
	userAgent := &http.Client{Transport: &http.Transport{TLSClientConfig: clickThrough, DisableKeepAlives: true}}
	openBrowser := func(ctx context.Context, authURL string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
		if err != nil {
			return err
		}
		resp, err := userAgent.Do(req) // the provider approves and redirects to the callback
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("callback answered %s", resp.Status)
		}
		return nil
	}

	redirectURIs := make(chan string, 1)
	client, err := loopauth.NewBuilder().
		ClientID("example-cli").
		AuthURL(provider.AuthURL()).
		TokenURL(provider.TokenURL()).
		UseHTTPS().
		OnURL(func(authURL *url.URL) { redirectURIs <- authURL.Query().Get("redirect_uri") }).
		BrowserOpener(openBrowser).
		Build()
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := client.RunAuthorizationFlow(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	redirect, err := url.Parse(<-redirectURIs)
	if err != nil {
		log.Fatal(err)
	}
	cert := <-certs
	fmt.Println("redirect URI:", redirect.Scheme+"://"+redirect.Hostname()+redirect.Path)
	fmt.Println("certificate names 127.0.0.1:", cert.VerifyHostname("127.0.0.1") == nil)
	fmt.Println("self-signed:", cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil)
	fmt.Println("token type:", tokens.TokenType())
	// Output:
	// redirect URI: https://127.0.0.1/callback
	// certificate names 127.0.0.1: true
	// self-signed: true
	// token type: Bearer
}

// A CLI that shows its own status follows the steps of the sign-in with
// OnProgress. Here the test provider's user agent plays the browser.
func ExampleCLITokenClientBuilder_OnProgress() {
	provider, err := loopauthtest.StartProvider()
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()

	client, err := loopauth.NewBuilder().
		ClientID("example-cli").
		AuthURL(provider.AuthURL()).
		TokenURL(provider.TokenURL()).
		BrowserOpener(provider.Browser()).
		OnProgress(func(e loopauth.ProgressEvent) {
			switch e.Kind {
			case loopauth.ProgressServerReady:
				fmt.Println("listening on 127.0.0.1; waiting at most", time.Until(e.Deadline).Round(time.Minute))
			case loopauth.ProgressURLReady:
				fmt.Println("short URL:", strings.HasPrefix(e.ShortURL, "http://127.0.0.1:"))
			case loopauth.ProgressCallbackReceived:
				fmt.Println("the browser is back")
			case loopauth.ProgressExchanging:
				fmt.Println("exchanging the code")
			case loopauth.ProgressDone:
				fmt.Println("done, error:", e.Err)
			}
		}).
		Build()
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.RunAuthorizationFlow(context.Background()); err != nil {
		log.Fatal(err)
	}
	// Output:
	// listening on 127.0.0.1; waiting at most 5m0s
	// short URL: true
	// the browser is back
	// exchanging the code
	// done, error: <nil>
}

// Signing in from a machine whose browser cannot reach the loopback port
// (over SSH without a tunnel): the user signs in elsewhere, and pastes the
// address the browser ended on. Here loopauthtest.LandingAddress plays
// that browser, and a pipe plays the terminal.
func ExampleCLITokenClientBuilder_PasteFrom() {
	provider, err := loopauthtest.StartProvider()
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()

	terminal, typing, err := os.Pipe()
	if err != nil {
		log.Fatal(err)
	}
	defer terminal.Close()
	defer typing.Close()

	client, err := loopauth.NewBuilder().
		ClientID("example-cli").
		AuthURL(provider.AuthURL()).
		TokenURL(provider.TokenURL()).
		Headless(true).      // as detected over SSH: no browser is opened here
		PasteFrom(terminal). // the default reads the terminal itself (on Linux)
		Stderr(io.Discard).  // a real CLI keeps the instructions on stderr
		OnURL(func(u *url.URL) {
			go func() {
				landing, err := loopauthtest.LandingAddress(context.Background(), u.String())
				if err != nil {
					log.Fatal(err)
				}
				fmt.Fprintln(typing, landing) // the user pastes and presses Enter
			}()
		}).
		Build()
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := client.RunAuthorizationFlow(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed in:", tokens.AccessToken() != "")
	// Output:
	// signed in: true
}

// FromIssuer: the CLI's later commands make no request while the stored
// set is fresh, even with the provider down.
func ExampleFromIssuer() {
	provider, err := loopauthtest.StartProvider()
	if err != nil {
		log.Fatal(err)
	}
	store := loopauth.NewMemoryStore() // a real CLI: NewFileStore
	build := func() *loopauth.CLITokenClient {
		// Build fetches nothing: discovery waits for the first sign-in.
		client, err := loopauth.FromIssuer(provider.Issuer()).
			ClientID("example-cli").
			AddScopes(loopauth.ScopeEmail, loopauth.ScopeOfflineAccess).
			BrowserOpener(provider.Browser()).
			Build()
		if err != nil {
			log.Fatal(err)
		}
		return client
	}

	ctx := context.Background()
	// login: discovery, then the sign-in.
	if _, err := build().Token(ctx, store); err != nil {
		log.Fatal(err)
	}
	provider.Close()
	// whoami, later, with the provider down: the stored set is fresh.
	tokens, err := build().Token(ctx, store)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed in as:", tokens.IDToken().Claims().Email)
	// Output:
	// signed in as: user@example.com
}

// EntraIssuer with IssuerTemplate: any organization's users of a
// multi-tenant Microsoft Entra app, each ID token checked against the
// issuer of its own tenant.
func ExampleEntraIssuer() {
	issuer, err := loopauth.EntraIssuer("https://login.microsoftonline.com/{tenantid}/v2.0", "9188040d-6c67-4c5b-b112-36a304b66dad")
	fmt.Println(issuer, err)
	_, err = loopauth.EntraIssuer("https://login.microsoftonline.com/{tenantid}/v2.0", "common")
	fmt.Println(err)

	// In a client (cfg from FetchOpenIDConfiguration(ctx,
	// "https://login.microsoftonline.com/organizations/v2.0")):
	//
	//	loopauth.FromOpenIDConfiguration(cfg).ClientID(id).
	//		WithOpenIDConfigurationJWKSValidator(cfg).
	//		IssuerTemplate(loopauth.EntraIssuer)

	// Output:
	// https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0 <nil>
	// tid is not a tenant ID (a GUID)
}
