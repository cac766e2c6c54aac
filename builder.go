package loopauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// DefaultTimeout is how long RunAuthorizationFlow waits for the browser to
// come back when Timeout is not set. RFC 6749 §4.1.2 recommends codes live
// at most ten minutes; five minutes is enough for a person to sign in.
const DefaultTimeout = 5 * time.Minute

// DefaultRefreshWithin is how close to its expiry a stored access token is
// refreshed by Token when RefreshWithin is not set.
const DefaultRefreshWithin = time.Minute

// BrowserOpener opens authURL for the user. It may return at once (a
// desktop browser was launched) or block until the browser side is
// finished (a text browser, or a test user agent such as
// loopauthtest.Provider.Browser); the flow keeps serving the callback while
// it runs. It must return when ctx is done. An error is not fatal: the URL
// is printed to standard error and the flow keeps waiting.
type BrowserOpener func(ctx context.Context, authURL string) error

// CLITokenClientBuilder collects the settings of a CLITokenClient. Setters
// record values and never fail; Build checks everything at once. The zero
// value is ready to use, and a builder may be reused: Build takes a
// snapshot, so later changes do not affect clients already built.
type CLITokenClientBuilder struct {
	settings
	authURL    string // parsed and checked by Build
	tokenURL   string
	revokeURL  string // RevocationURL, or the configuration's
	timeoutSet bool

	// The expected issuer's sources, reconciled by Build into issuer.
	explicitIssuer string // Issuer
	lazyIssuer     string // FromIssuer
	cfgIssuer      string // FromOpenIDConfiguration
	jwksIssuer     string // WithOpenIDConfigurationJWKSValidator
	jwksISSParam   bool   // that configuration says the provider sends iss

	// FromOpenIDConfiguration's methods, from which Build chooses the
	// client authentication method when ClientAuthMethod is not set.
	fromConfig     bool
	cfgAuthMethods []string
}

// settings are what a builder collects and a client keeps. Build copies
// them, checked and with defaults filled in.
type settings struct {
	clientID        string
	clientSecret    secret // behind a pointer, so that no copy prints it
	authMethod      string // ClientAuthMethod's; Build's choice in a client
	scopes          []Scope
	port            int
	portRequired    bool
	localhost       bool // UseLocalhost
	nonInteractive  bool // NonInteractive
	issuerTemplate  func(template, tid string) (string, error)
	successHTML     *string
	errorHTML       *string
	successRenderer SuccessPageRenderer
	errorRenderer   ErrorPageRenderer
	noBrowser       bool
	opener          BrowserOpener
	timeout         time.Duration
	onAuthURL       func(*ExtraAuthParams)
	onURL           func(*url.URL)
	onServerReady   func(port int)
	httpClient      *http.Client
	logger          *slog.Logger
	stderr          io.Writer // where the authorization URL is printed
	headless        *bool     // Headless: nil means detected (see whereAmI)
	paste           io.Reader // PasteFrom's reader
	pasteSet        bool      // PasteFrom was called (nil turns paste-back off)
	onProgress      func(ProgressEvent)

	refreshWithin time.Duration       // Token refreshes sets expiring this soon
	refreshScopes []Scope             // sent with refresh requests; none by default
	parser        TokenResponseParser // nil: RFC 6749 §5.1
	// tlsListener, set only by UseHTTPS and UseHTTPSWith, gives one flow
	// what turns its listener into a TLS one. The certificate and TLS
	// server code are reached through it alone, so a program that never
	// asks for HTTPS does not link them.
	tlsListener func() (func(net.Listener) net.Listener, error)
	tlsCert     *TLSCertificate    // UseHTTPSWith's, checked by Build
	onTokens    func(ts *TokenSet) // OnTokenSetChange

	// OpenID Connect
	openID        bool
	issuer        string // expected issuer, compared exactly; set by Build
	issRequired   bool   // the provider always sends the RFC 9207 iss parameter
	validator     JWKSValidator
	noValidation  bool
	jwksURI       string   // WithOpenIDConfigurationJWKSValidator: validator made by Build
	jwksAlgs      []string // the provider's algorithms, within supportedAlgs
	jwksAlgsErr   error
	configMissing string // a method that was given a nil configuration
}

// NewBuilder returns an empty builder. Call at least ClientID, AuthURL and
// TokenURL, then Build.
func NewBuilder() *CLITokenClientBuilder { return &CLITokenClientBuilder{} }

// ClientID sets the OAuth client identifier registered with the provider.
func (b *CLITokenClientBuilder) ClientID(id string) *CLITokenClientBuilder {
	b.clientID = id
	return b
}

// ClientSecret sets a client secret, sent with every token request as
// ClientAuthMethod says. Without it the client is public and relies on PKCE
// alone, which is what RFC 8252 expects of native apps: a secret shipped
// inside a CLI is not confidential, but it is still never logged. An empty
// secret means none.
func (b *CLITokenClientBuilder) ClientSecret(secret string) *CLITokenClientBuilder {
	b.clientSecret = newSecret(secret)
	return b
}

// Client authentication methods of the token endpoint (RFC 6749 §2.3.1,
// OpenID Connect Core §9), for ClientAuthMethod.
const (
	// ClientSecretBasic sends the client ID and secret in an HTTP Basic
	// Authorization header, each form-encoded before base64 as RFC 6749
	// requires, and neither in the body.
	ClientSecretBasic = "client_secret_basic"
	// ClientSecretPost sends client_id and client_secret in the form body.
	ClientSecretPost = "client_secret_post"
)

// ClientAuthMethod sets how the client secret is sent, for the code
// exchange and refreshes alike: ClientSecretBasic or ClientSecretPost.
// Build refuses any other value but "", the default: NewBuilder then sends
// ClientSecretPost, and FromOpenIDConfiguration chooses from the
// document's token_endpoint_auth_methods_supported: ClientSecretPost when
// it lists that and not basic, otherwise ClientSecretBasic (RFC 6749's
// preference, and Discovery's default for a document that lists none; a
// provider that omits the list yet refuses basic needs ClientSecretPost
// here). Without a client secret there is no client authentication:
// client_id goes in the body, and this setting has no effect.
func (b *CLITokenClientBuilder) ClientAuthMethod(method string) *CLITokenClientBuilder {
	b.authMethod = method
	return b
}

// AuthURL sets the provider's authorization endpoint. It must be an
// absolute https URL (http only for a loopback host); its query is kept.
func (b *CLITokenClientBuilder) AuthURL(rawURL string) *CLITokenClientBuilder {
	b.authURL = rawURL
	return b
}

// TokenURL sets the provider's token endpoint, with the same rules as
// AuthURL.
func (b *CLITokenClientBuilder) TokenURL(rawURL string) *CLITokenClientBuilder {
	b.tokenURL = rawURL
	return b
}

// AddScopes adds scopes to request. They accumulate, duplicates are
// dropped, and they are sent in a stable order (see Scope). "openid" is
// requested with WithOpenIDScope, which also verifies the ID token; here it
// is an error outside OpenID mode, and ignored in it.
func (b *CLITokenClientBuilder) AddScopes(scopes ...Scope) *CLITokenClientBuilder {
	b.scopes = append(b.scopes, scopes...)
	return b
}

// PortHint asks for a callback port, falling back to a random free port
// when it is busy; 0 means any port. The last of PortHint and RequirePort
// wins.
func (b *CLITokenClientBuilder) PortHint(port int) *CLITokenClientBuilder {
	b.port, b.portRequired = port, false
	return b
}

// RequirePort insists on a callback port, for providers whose registered
// redirect URI names one. A busy port makes the flow fail with an error
// wrapping ErrPortInUse. The last of PortHint and RequirePort wins.
func (b *CLITokenClientBuilder) RequirePort(port int) *CLITokenClientBuilder {
	b.port, b.portRequired = port, true
	return b
}

// SuccessHTML replaces the default success page with a fixed document,
// served as is.
func (b *CLITokenClientBuilder) SuccessHTML(html string) *CLITokenClientBuilder {
	b.successHTML = &html
	return b
}

// ErrorHTML replaces the default error page with a fixed document, served
// as is.
func (b *CLITokenClientBuilder) ErrorHTML(html string) *CLITokenClientBuilder {
	b.errorHTML = &html
	return b
}

// SuccessRenderer renders the success page. It takes precedence over
// SuccessHTML.
func (b *CLITokenClientBuilder) SuccessRenderer(r SuccessPageRenderer) *CLITokenClientBuilder {
	b.successRenderer = r
	return b
}

// ErrorRenderer renders error pages. It takes precedence over ErrorHTML.
func (b *CLITokenClientBuilder) ErrorRenderer(r ErrorPageRenderer) *CLITokenClientBuilder {
	b.errorRenderer = r
	return b
}

// OpenBrowser chooses whether the flow opens a browser (the default) or
// only prints how to sign in (see ProgressPrinter) to Stderr.
func (b *CLITokenClientBuilder) OpenBrowser(open bool) *CLITokenClientBuilder {
	b.noBrowser = !open
	return b
}

// BrowserOpener replaces the system browser launcher, for a program with
// its own way to show the URL, or for tests. Nil restores the default
// launcher: the commands of $BROWSER, then xdg-open, open, rundll32, or
// under WSL the Windows browser; never through a shell.
func (b *CLITokenClientBuilder) BrowserOpener(fn BrowserOpener) *CLITokenClientBuilder {
	b.opener = fn
	return b
}

// RefreshWithin sets how close to its expiry a stored access token is
// refreshed by Token and by the transports (default DefaultRefreshWithin).
// Leave room for the commands that use the token to finish.
func (b *CLITokenClientBuilder) RefreshWithin(d time.Duration) *CLITokenClientBuilder {
	b.refreshWithin = d
	return b
}

// UseHTTPS serves the callback over TLS with an ephemeral self-signed
// certificate made for each flow (ECDSA P-256, for 127.0.0.1, ::1 and
// localhost, valid a day). Browsers warn about it, and the user must click
// through: use it for development, and UseHTTPSWith for people. The
// redirect URI becomes https://127.0.0.1:PORT/callback.
func (b *CLITokenClientBuilder) UseHTTPS() *CLITokenClientBuilder {
	b.tlsCert = nil
	b.tlsListener = func() (func(net.Listener) net.Listener, error) {
		cert, err := newSelfSignedCertificate()
		if err != nil {
			return nil, errorf("loopauth: making the self-signed callback certificate: %w", err)
		}
		return cert.listener, nil
	}
	return b
}

// UseHTTPSWith serves the callback over TLS with cert, typically from
// EnsureLocalhost (a certificate of the user's own mkcert authority, which
// browsers trust). Some providers, Slack first, accept only https
// redirect URIs, even for loopback.
func (b *CLITokenClientBuilder) UseHTTPSWith(cert *TLSCertificate) *CLITokenClientBuilder {
	b.tlsCert = cert
	b.tlsListener = func() (func(net.Listener) net.Listener, error) { return cert.listener, nil }
	if cert == nil {
		b.configMissing = "UseHTTPSWith"
	}
	return b
}

// TokenResponseParser reads token responses of providers that do not
// follow RFC 6749 (Slack nests its tokens), for code exchanges and
// refreshes alike. Most programs won't need it.
func (b *CLITokenClientBuilder) TokenResponseParser(p TokenResponseParser) *CLITokenClientBuilder {
	b.parser = p
	return b
}

// RefreshScopes sets the scopes to ask for on every refresh, to narrow the
// grant (RFC 6749 §6). By default refreshes send no scope, which keeps the
// scopes originally granted: resending the configured ones would fail on
// providers that granted fewer.
func (b *CLITokenClientBuilder) RefreshScopes(scopes ...Scope) *CLITokenClientBuilder {
	b.refreshScopes = append([]Scope(nil), scopes...)
	return b
}

// OnTokenSetChange registers a hook called with every new token set: after
// a sign-in and after each refresh, including those Token and the
// transports perform. Programs with their own storage persist rotated
// refresh tokens here. It runs synchronously; keep it short.
func (b *CLITokenClientBuilder) OnTokenSetChange(fn func(ts *TokenSet)) *CLITokenClientBuilder {
	b.onTokens = fn
	return b
}

// Stderr sets where the flow tells the user how to sign in (see
// ProgressPrinter) and why a pasted address was refused (default
// os.Stderr; never standard output, which belongs to the program). Pass
// io.Discard, or set OnProgress, to show the URL yourself.
func (b *CLITokenClientBuilder) Stderr(w io.Writer) *CLITokenClientBuilder {
	b.stderr = w
	return b
}

// RevocationURL sets the provider's token revocation endpoint (RFC 7009),
// for Revoke and Logout; FromOpenIDConfiguration takes it from the
// configuration's revocation_endpoint. Same rules as TokenURL.
func (b *CLITokenClientBuilder) RevocationURL(rawURL string) *CLITokenClientBuilder {
	b.revokeURL = rawURL
	return b
}

// NonInteractive makes the client never start a browser sign-in, for
// scripts and CI: where Token, Transport, AuthorizedHTTPClient or
// RunAuthorizationFlow would start one, they return an error matching
// ErrLoginRequired that says why (no usable stored set, no refresh token,
// the refresh refused). Refreshing a stored set is still allowed.
func (b *CLITokenClientBuilder) NonInteractive() *CLITokenClientBuilder {
	b.nonInteractive = true
	return b
}

// UseLocalhost makes the redirect URI http://localhost:PORT/callback
// instead of http://127.0.0.1:PORT/callback, for providers that refuse IP
// literals (register http://localhost/callback). The server then listens
// on both 127.0.0.1 and [::1] on the same port, since a browser may
// resolve localhost to either, and accepts exactly the Host
// localhost:PORT. RFC 8252 §8.3 prefers the IP literal, which stays the
// default: the name localhost can be resolved by a hosts file or a proxy
// setting the user does not see.
func (b *CLITokenClientBuilder) UseLocalhost() *CLITokenClientBuilder {
	b.localhost = true
	return b
}

// Headless overrides the detection of a machine where a browser opened
// here would not reach the user (an SSH session, a container or a Linux
// machine without a display; see the README). Headless(true) never opens
// a browser: the flow prints the short URL, the SSH tunnel command and
// the paste-back prompt instead. Headless(false) always opens one. The
// detection decides only for the system browser: an opener set with
// BrowserOpener is always called unless Headless(true) is set.
func (b *CLITokenClientBuilder) Headless(headless bool) *CLITokenClientBuilder {
	b.headless = &headless
	return b
}

// PasteFrom sets where the user can paste the address their browser ended
// on (or its query) when it cannot reach the loopback server. It races the
// server: the first valid authorization response wins, a refused paste
// gets a one-line reason on Stderr and reading goes on, and the end of r
// leaves the server waiting. A pasted response is checked exactly like a
// callback, and never echoed or logged.
//
// By default, on Linux, paste-back reads the terminal when standard input
// is one (and this process is in its foreground), from the moment the flow
// prints that no browser was opened. PasteFrom(nil) turns paste-back off.
//
// The flow stops reading when it ends. A reader with SetReadDeadline, such
// as a pipe from os.Pipe, is stopped that way and its deadline cleared
// again; any other reader (os.Stdin when it is not a terminal, an
// io.Pipe) may be left in a Read that the flow does not wait for, whose
// data is then discarded: give the flow a reader nothing else reads.
func (b *CLITokenClientBuilder) PasteFrom(r io.Reader) *CLITokenClientBuilder {
	b.paste, b.pasteSet = r, true
	return b
}

// OnProgress sets a function that receives every step of a sign-in (see
// ProgressKind), for a CLI that shows its own status. It replaces the
// default, ProgressPrinter(Stderr), which a function can call itself. It
// is called from the flow's goroutines, one call at a time, and must
// return quickly.
func (b *CLITokenClientBuilder) OnProgress(fn func(ProgressEvent)) *CLITokenClientBuilder {
	b.onProgress = fn
	return b
}

// Timeout sets how long the flow waits for the browser to come back to the
// callback (default DefaultTimeout). The token request has its own HTTP
// timeouts.
func (b *CLITokenClientBuilder) Timeout(d time.Duration) *CLITokenClientBuilder {
	b.timeout, b.timeoutSet = d, true
	return b
}

// OnAuthURL registers a hook that adds provider-specific parameters to the
// authorization URL, such as Google's access_type=offline or Atlassian's
// audience. Parameters the flow owns (state, redirect_uri, ...) are
// dropped with a warning in the log.
func (b *CLITokenClientBuilder) OnAuthURL(fn func(*ExtraAuthParams)) *CLITokenClientBuilder {
	b.onAuthURL = fn
	return b
}

// OnURL registers a hook called with the final authorization URL once the
// callback server is listening, before the browser is opened. The URL is
// the caller's copy; changing it has no effect.
func (b *CLITokenClientBuilder) OnURL(fn func(*url.URL)) *CLITokenClientBuilder {
	b.onURL = fn
	return b
}

// OnServerReady registers a hook called with the callback port once the
// server is listening, before OnURL.
func (b *CLITokenClientBuilder) OnServerReady(fn func(port int)) *CLITokenClientBuilder {
	b.onServerReady = fn
	return b
}

// IssuerTemplate checks the ID tokens of a provider whose discovery
// document names an issuer template instead of an issuer, as Microsoft
// Entra's multi-tenant "common" and "organizations" endpoints do
// ("https://login.microsoftonline.com/{tenantid}/v2.0"). For each ID token
// fn receives the template and the token's tid claim, and returns the one
// issuer that token may name; its iss must equal that byte for byte, and
// a stored set must too. EntraIssuer is fn for Entra; wrap it to admit
// only some tenants. Build refuses a template issuer without
// IssuerTemplate, so the issuer check is never skipped.
func (b *CLITokenClientBuilder) IssuerTemplate(fn func(template, tid string) (string, error)) *CLITokenClientBuilder {
	b.issuerTemplate = fn
	return b
}

// HTTPClient sets the client of every call to the provider: code and
// refresh token requests, revocation, the key set of
// WithOpenIDConfigurationJWKSValidator, and the discovery document of
// FromIssuer (default: a client with a 30 s timeout that honours proxy
// settings from the environment). Give it your proxy or private CA here.
// The client is copied, never modified; the copy never follows a redirect
// of a token or revocation request (Go would resend the POST body, with
// the code and verifier or the refresh token, to wherever a 307 or 308
// points), and follows at most 3 of a discovery or key-set fetch, never
// from https to http. Size caps apply whatever the client.
func (b *CLITokenClientBuilder) HTTPClient(c *http.Client) *CLITokenClientBuilder {
	b.httpClient = c
	return b
}

// Logger sets where the library logs (default: nowhere). It logs at debug
// and warn levels only, and never a secret: each call to the provider at
// debug (method, URL without query, status, bytes, duration), and each
// key of a fetched key set that cannot be used at warn, with why.
func (b *CLITokenClientBuilder) Logger(l *slog.Logger) *CLITokenClientBuilder {
	b.logger = l
	return b
}

// FromOpenIDConfiguration starts a builder from a provider's discovery
// document: its authorization and token endpoints, its issuer (compared
// exactly with the ID token's iss and the RFC 9207 iss parameter, which is
// required when the document says the provider sends it), and OpenID mode.
// Call ClientID, then one of the JWKS methods, typically
// WithOpenIDConfigurationJWKSValidator with the same configuration.
func FromOpenIDConfiguration(cfg *OpenIDConfiguration) *CLITokenClientBuilder {
	b := NewBuilder().WithOpenIDScope()
	if cfg == nil {
		b.configMissing = "FromOpenIDConfiguration"
		return b
	}
	return b.useConfig(cfg)
}

func (b *CLITokenClientBuilder) useConfig(cfg *OpenIDConfiguration) *CLITokenClientBuilder {
	b.authURL, b.tokenURL, b.cfgIssuer = cfg.AuthorizationEndpoint, cfg.TokenEndpoint, cfg.Issuer
	b.revokeURL = cfg.RevocationEndpoint
	b.issRequired = cfg.AuthorizationResponseISSParameterSupported
	b.fromConfig, b.cfgAuthMethods = true, cfg.TokenEndpointAuthMethodsSupported
	return b
}

// FromIssuer starts a builder from the provider's issuer alone, in OpenID
// mode with the keys from discovery, and fetches nothing until it must:
// Build makes no request, and the discovery document is fetched (through
// HTTPClient) by the first call that needs the provider (a sign-in, a
// refresh, a revocation), once per client; a failed fetch is tried again
// by the next such call. So Token with a stored set that is still fresh
// makes no request at all, and works with the provider unreachable. The
// document is checked as FetchOpenIDConfiguration checks it, and its
// issuer must then be issuer exactly (for Microsoft Entra's multi-tenant
// endpoints, use FromOpenIDConfiguration). JWKSValidator or
// WithoutJWKSValidation replace the keys from discovery.
func FromIssuer(issuer string) *CLITokenClientBuilder {
	b := NewBuilder().WithOpenIDScope()
	b.lazyIssuer = issuer
	return b
}

// WithOpenIDConfigurationJWKSValidator verifies ID-token signatures with
// the keys at the configuration's jwks_uri, accepting only the algorithms
// the provider advertises (within those this package supports). The
// configuration's issuer is the expected issuer, as with Issuer (which,
// like FromOpenIDConfiguration, must then name the same one), and its RFC
// 9207 flag makes the callback's iss parameter required. The validator is
// made by Build, with the client ID set by then.
func (b *CLITokenClientBuilder) WithOpenIDConfigurationJWKSValidator(cfg *OpenIDConfiguration) *CLITokenClientBuilder {
	if cfg == nil {
		b.configMissing = "WithOpenIDConfigurationJWKSValidator"
		return b
	}
	b.validator = nil
	b.jwksURI, b.jwksIssuer = cfg.JWKSURI, cfg.Issuer
	b.jwksISSParam = cfg.AuthorizationResponseISSParameterSupported
	b.jwksAlgs, b.jwksAlgsErr = cfg.signingAlgs()
	return b
}

// WithOpenIDScope requests the openid scope and switches on OpenID
// Connect: the flow sends a nonce, requires an ID token and verifies it
// (signature, then iss, aud, azp, exp, iat, nbf, nonce, sub, at_hash).
// Build then requires the expected issuer (Issuer, FromOpenIDConfiguration
// or WithOpenIDConfigurationJWKSValidator), and a decision on signatures:
// JWKSValidator, WithOpenIDConfigurationJWKSValidator or
// WithoutJWKSValidation.
func (b *CLITokenClientBuilder) WithOpenIDScope() *CLITokenClientBuilder {
	b.openID = true
	return b
}

// Issuer sets the expected issuer. The ID token's iss, and the RFC 9207
// iss parameter of the callback when the provider sends one, must equal it
// exactly. OpenID mode requires an expected issuer: FromOpenIDConfiguration
// and WithOpenIDConfigurationJWKSValidator take it from their
// configuration, and Build refuses issuers that differ. Outside OpenID
// mode it is optional and only checks the callback's iss parameter.
func (b *CLITokenClientBuilder) Issuer(issuer string) *CLITokenClientBuilder {
	b.explicitIssuer = issuer
	return b
}

// JWKSValidator sets how ID-token signatures are verified, for example a
// RemoteJWKSValidator. It replaces WithOpenIDConfigurationJWKSValidator,
// whose configuration then no longer names the expected issuer.
func (b *CLITokenClientBuilder) JWKSValidator(v JWKSValidator) *CLITokenClientBuilder {
	b.validator, b.jwksURI, b.jwksIssuer, b.jwksISSParam = v, "", "", false
	return b
}

// WithoutJWKSValidation skips the ID token's signature check: its claims
// are still checked, and alg "none" is still refused. Safe only when the
// ID token is used for display, since it came straight from the token
// endpoint over TLS (OpenID Connect Core §3.1.3.7 step 6); never send it
// to a backend as proof of identity.
func (b *CLITokenClientBuilder) WithoutJWKSValidation() *CLITokenClientBuilder {
	b.noValidation = true
	return b
}

// Build checks every setting and returns a client, or one error joining
// every problem found, each wrapping ErrInvalidConfig and naming the method
// to fix it.
func (b *CLITokenClientBuilder) Build() (*CLITokenClient, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, configError(format, args)) }

	switch {
	case b.clientID == "":
		bad("no client ID: call ClientID with the ID registered at the provider")
	case !isVSCHAR(b.clientID) || strings.ContainsRune(b.clientID, ' '):
		bad("client ID contains spaces, control or non-ASCII characters: check ClientID")
	}
	if cs := b.clientSecret.reveal(); cs != "" && !isVSCHAR(cs) {
		bad("client secret contains control or non-ASCII characters: check ClientSecret")
	}
	if m := b.authMethod; m != "" && m != ClientSecretBasic && m != ClientSecretPost {
		bad(`ClientAuthMethod accepts only "client_secret_basic" or "client_secret_post"`)
	}
	lazy := b.lazyIssuer != "" && !b.fromConfig // FromIssuer, not yet discovered
	endpoint := func(method, raw string, required bool) *url.URL {
		u, err := parseEndpoint(raw)
		if err != nil && required {
			bad("%s: %v", method, err)
		}
		return u
	}
	authURL := endpoint("AuthURL", b.authURL, !lazy)
	tokenURL := endpoint("TokenURL", b.tokenURL, !lazy)
	revokeURL := endpoint("RevocationURL", b.revokeURL, b.revokeURL != "") // optional
	scopes, err := normalizeScopes(b.scopes, b.openID)
	if err != nil {
		errs = append(errs, err)
	}
	if b.port != 0 || b.portRequired {
		if b.port < 1 || b.port > 65535 {
			bad("port %d is out of range 1-65535: check PortHint or RequirePort", b.port)
		}
	}
	refreshScopes, err := normalizeScopes(b.refreshScopes, b.openID)
	if err != nil {
		errs = append(errs, errorf("RefreshScopes: %w", err))
	}
	if b.refreshWithin < 0 {
		bad("RefreshWithin must not be negative, got %v", b.refreshWithin)
	}
	if b.timeoutSet && b.timeout <= 0 {
		bad("Timeout must be positive, got %v", b.timeout)
	}
	if b.tlsCert != nil && !b.tlsCert.usable() {
		bad("UseHTTPSWith was given an empty certificate: load one with EnsureLocalhost or TLSCertificateFromPEM")
	}
	if b.configMissing != "" {
		bad("%s was given nil", b.configMissing)
	}
	if b.jwksURI != "" && b.jwksAlgsErr != nil {
		bad("WithOpenIDConfigurationJWKSValidator: %v", b.jwksAlgsErr)
	}
	issuer, err := b.expectedIssuer()
	if err != nil {
		errs = append(errs, err)
	}
	if issuer != "" {
		if u, err := parseEndpoint(issuer); err != nil || u.RawQuery != "" {
			bad("Issuer %q is not an https URL without query or fragment", sanitizeText(issuer, 256))
		}
	}
	if strings.Contains(issuer, tenantPlaceholder) && b.issuerTemplate == nil {
		bad("the issuer %q is a template (a multi-tenant Microsoft Entra endpoint): call IssuerTemplate(loopauth.EntraIssuer), or use the tenant's own issuer", sanitizeText(issuer, 256))
	}
	decided := b.validator != nil || b.jwksURI != "" || lazy && !b.noValidation
	switch {
	case b.openID && !decided && !b.noValidation:
		bad("OpenID mode needs a decision on ID-token signatures: call JWKSValidator, WithOpenIDConfigurationJWKSValidator or WithoutJWKSValidation")
	case decided && b.noValidation:
		bad("a JWKS validator and WithoutJWKSValidation contradict each other: keep one")
	case !b.openID && (decided || b.noValidation):
		bad("a JWKS decision without OpenID mode has no effect: call WithOpenIDScope")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	c := &CLITokenClient{
		settings:  b.settings,
		authURL:   authURL,
		tokenURL:  tokenURL,
		revokeURL: revokeURL,
		now:       time.Now,
	}
	c.issuer = issuer
	if lazy {
		c.lazy = &lazyProvider{b: *b}
	}
	if m := b.cfgAuthMethods; c.authMethod == "" && b.fromConfig {
		c.authMethod = ClientSecretBasic
		if slices.Contains(m, ClientSecretPost) && !slices.Contains(m, ClientSecretBasic) {
			c.authMethod = ClientSecretPost
		}
	}
	if c.clientSecret.p == nil {
		c.authMethod = "" // a public client: client_id in the body, nothing else
	}
	c.issRequired = b.issRequired || b.jwksURI != "" && b.jwksISSParam
	if c.openID {
		scopes = append([]Scope{ScopeOpenID}, scopes...)
	}
	c.scopes = scopes // a fresh, sorted slice: later AddScopes calls do not reach c
	c.refreshScopes = refreshScopes
	c.httpClient = tokenHTTPClient(b.httpClient)
	if !b.timeoutSet {
		c.timeout = DefaultTimeout
	}
	if c.logger == nil {
		c.logger = slog.New(discardHandler{})
	}
	if c.opener == nil {
		c.opener = systemBrowserOpener(c.logger)
		c.systemOpener = true
	}
	if b.jwksURI != "" {
		// Made here, with the final client ID (the Rust crate captured the
		// ID set before the call).
		c.validator = &RemoteJWKSValidator{
			jwksURL: b.jwksURI, clientID: c.clientID, algs: b.jwksAlgs,
			client: metadataHTTPClientFrom(b.httpClient), logger: c.logger, now: time.Now,
		}
	}
	c.errorLog = slog.NewLogLogger(c.logger.Handler(), slog.LevelDebug)
	if c.refreshWithin == 0 {
		c.refreshWithin = DefaultRefreshWithin
	}
	if c.stderr == nil {
		c.stderr = os.Stderr
	}
	if c.onProgress == nil {
		c.onProgress = ProgressPrinter(c.stderr)
	}
	return c, nil
}

// configError is one problem Build found. It stays out of line: inlined
// into each of Build's checks, it cost every CLI about 2 KiB (make size).
//
//go:noinline
func configError(format string, args []any) error {
	return errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// expectedIssuer reconciles the sources of the expected issuer: Issuer,
// FromOpenIDConfiguration and WithOpenIDConfigurationJWKSValidator. Those
// given must agree, since keys of one provider must never verify tokens of
// another (RFC 8725 §3.8), and OpenID mode needs one: without it the ID
// token's iss, and the callback's, would go unchecked, and a token of
// another tenant of a multi-tenant provider, signed with the same keys,
// would pass.
func (b *CLITokenClientBuilder) expectedIssuer() (string, error) {
	sources := [...]struct{ method, issuer string }{
		{"Issuer", b.explicitIssuer},
		{"FromIssuer", b.lazyIssuer},
		{"FromOpenIDConfiguration", b.cfgIssuer},
		{"WithOpenIDConfigurationJWKSValidator", b.jwksIssuer},
	}
	first := -1
	for i, s := range sources {
		switch {
		case s.issuer == "":
		case first < 0:
			first = i
		case s.issuer != sources[first].issuer:
			return "", errorf("%w: the expected issuer differs between %s (%q) and %s (%q): use one provider's configuration, and call Issuer only with its issuer",
				ErrInvalidConfig, sources[first].method, sanitizeText(sources[first].issuer, 256), s.method, sanitizeText(s.issuer, 256))
		}
	}
	switch {
	case first >= 0:
		return sources[first].issuer, nil
	case b.openID:
		return "", errorf("%w: OpenID mode needs the expected issuer, to check the ID token's iss: call Issuer, or start from FromOpenIDConfiguration", ErrInvalidConfig)
	}
	return "", nil
}

// parseEndpoint checks a provider endpoint: absolute, https (or http to a
// loopback host, for local providers and tests), a host, no userinfo and
// no fragment (RFC 6749 §3.1).
func parseEndpoint(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("not set")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errorf("not a valid URL: %v", errors.Unwrap(err))
	}
	switch {
	case !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return nil, errorf("%q is not an absolute URL with a host", raw)
	case u.User != nil:
		return nil, errors.New("user information in the URL is not allowed")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, errors.New("a fragment is not allowed (RFC 6749 §3.1)")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return nil, errorf("scheme %q is not allowed: use https (http only for a loopback host)", u.Scheme)
	}
	return u, nil
}

// isLoopbackHost reports whether host names this machine: a loopback IP
// literal or "localhost".
func isLoopbackHost(host string) bool {
	return strings.EqualFold(host, "localhost") || isLoopbackIP(host)
}

// isLoopbackIP reports whether host is a loopback IP literal.
func isLoopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// normalizeScopes validates scopes, drops duplicates and sorts them. In
// OpenID mode a requested "openid" is dropped (the flow adds it);
// otherwise it is an error, so that it cannot go out without the ID-token
// checks it calls for (the Rust crate's auth example sent it that way).
func normalizeScopes(in []Scope, openID bool) ([]Scope, error) {
	var errs []error
	out := make([]Scope, 0, len(in))
	for _, s := range in {
		switch {
		case s == ScopeOpenID && openID:
		case s == ScopeOpenID:
			errs = append(errs, errorf("%w: the %q scope cannot be added with AddScopes: call WithOpenIDScope (or start from FromOpenIDConfiguration), which also verifies the ID token", ErrInvalidConfig, ScopeOpenID))
		case !isNQCHAR(string(s)):
			errs = append(errs, errorf("%w: scope %q contains characters RFC 6749 does not allow (space, quote, backslash, control or non-ASCII): check AddScopes", ErrInvalidConfig, sanitizeText(string(s), 64)))
		case !slices.Contains(out, s):
			out = append(out, s)
		}
	}
	slices.SortFunc(out, compareScopes)
	return out, errors.Join(errs...)
}

// discardHandler is a slog.Handler that drops everything (slog.DiscardHandler
// needs Go 1.24).
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

// String describes the builder without its client secret, for a builder
// and a *CLITokenClientBuilder alike.
func (b CLITokenClientBuilder) String() string {
	return b.settings.describe("CLITokenClientBuilder", b.authURL, b.tokenURL)
}

// GoString is String, so %#v cannot print the client secret either.
func (b CLITokenClientBuilder) GoString() string { return b.String() }

// Format makes every fmt verb print String.
func (b CLITokenClientBuilder) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, b.String()) }

// LogValue describes the builder to log/slog without its client secret.
func (b CLITokenClientBuilder) LogValue() slog.Value { return slog.StringValue(b.String()) }

// describe is the redacted description of a builder or client: the client
// secret is never printed, only whether there is one.
func (s *settings) describe(kind, authURL, tokenURL string) string {
	shown := "none"
	if s.clientSecret.p != nil {
		shown = "[redacted]"
	}
	return fmt.Sprintf("%s{client_id: %q, client_secret: %s, auth_url: %q, token_url: %q, scopes: %q, openid: %v}",
		kind, s.clientID, shown, authURL, tokenURL, joinScopes(s.scopes), s.openID)
}
