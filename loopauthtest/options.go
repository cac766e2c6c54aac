package loopauthtest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Option configures a Provider. Options are applied in order by
// NewProvider and StartProvider; a later option overrides an earlier one
// that sets the same thing. The configuration is fixed once the provider
// has started, so options never race with requests.
type Option func(*config)

// User is the account the provider signs in. A zero field keeps its
// default (Subject "user-1234", Email "user@example.com", Name "Test User");
// use WithIDTokenClaims to remove claims altogether.
type User struct {
	Subject string
	Email   string
	Name    string
}

// oauthError is an RFC 6749 error the provider is told to answer with.
type oauthError struct {
	status      int // token endpoint only
	code        string
	description string
	uri         string // authorize endpoint only
}

// rawResponse is a token response sent byte for byte.
type rawResponse struct {
	status      int
	contentType string
	body        []byte
}

// config is everything the options can set. It is written only before the
// server starts and read-only afterwards.
type config struct {
	err error // first invalid option; reported by StartProvider

	alg             string
	dropOldKeys     bool
	clients         map[string]string // client id -> secret; nil accepts any public client
	authMethod      string            // "" accepts both secret methods
	consent         bool
	authorizeErr    *oauthError
	codeErr         *oauthError
	refreshErr      *oauthError
	rawToken        *rawResponse
	tokenHook       func(grantType string, resp map[string]any)
	noRefresh       bool
	noRefreshOnRef  bool
	noRotation      bool
	tokenLifetime   time.Duration
	idTokenLifetime time.Duration
	codeLifetime    time.Duration
	claimsHook      func(claims map[string]any)
	omitIDToken     bool
	tokenDelay      time.Duration
	authorizeDelay  time.Duration
	issParam        bool
	issParamValue   string // "" means the real issuer
	discoveryIssuer string
	issuerPath      string                      // "" or "/..." after the host
	refreshWhen     func(query url.Values) bool // nil: always a refresh token
	user            User
	grantedScope    *string
	now             func() time.Time

	addr             string // listen address, a loopback IP and port
	stateFile        string
	revocationErr    *oauthError
	noRevocation     bool
	unrevocable      map[string]bool // token types /revoke refuses
	introspectID     string
	introspectSecret string
}

func defaultConfig() *config {
	return &config{
		alg:              AlgES256,
		tokenLifetime:    time.Hour,
		idTokenLifetime:  time.Hour,
		codeLifetime:     10 * time.Minute,
		user:             User{Subject: "user-1234", Email: "user@example.com", Name: "Test User"},
		now:              time.Now,
		addr:             "127.0.0.1:0",
		introspectID:     DefaultIntrospectionID,
		introspectSecret: DefaultIntrospectionSecret,
	}
}

func (c *config) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("loopauthtest: "+format, args...)
	}
}

// Signing algorithms accepted by WithSigningAlg.
const (
	AlgES256 = "ES256" // ECDSA P-256 with SHA-256; the default
	AlgRS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, RSA 2048
)

// WithSigningAlg selects the ID-token signing algorithm: AlgES256 (the
// default, because P-256 keys are generated in microseconds) or AlgRS256
// (one RSA-2048 key is generated per test process and shared by providers;
// RotateKey always makes a fresh one). Any other value fails the setup.
func WithSigningAlg(alg string) Option {
	return func(c *config) {
		if alg != AlgES256 && alg != AlgRS256 {
			c.fail("unsupported signing alg %q (want ES256 or RS256)", alg)
			return
		}
		c.alg = alg
	}
}

// WithoutPreviousKeys makes the JWKS serve only the current key, so after
// RotateKey tokens signed with the old key no longer verify. By default
// the JWKS lists the current key first and every previous key after it.
func WithoutPreviousKeys() Option {
	return func(c *config) { c.dropOldKeys = true }
}

// WithClient registers an accepted client; give it once per client (a
// later WithClient with the same id replaces its secret). With a non-empty
// secret the client is confidential: /token and /revoke require
// client_secret (in the form, client_secret_post, or by HTTP Basic).
// Without WithClient any client_id is accepted as a public client and ID
// tokens are issued to it.
func WithClient(id, secret string) Option {
	return func(c *config) {
		if id == "" {
			c.fail("WithClient: empty client id")
			return
		}
		if c.clients == nil {
			c.clients = make(map[string]string)
		}
		c.clients[id] = secret
	}
}

// client reports whether id may use the provider, and its secret ("" for
// a public client).
func (c *config) client(id string) (secret string, ok bool) {
	if c.clients == nil {
		return "", true
	}
	secret, ok = c.clients[id]
	return secret, ok
}

func (c *config) knows(id string) bool {
	_, ok := c.client(id)
	return ok
}

// Client authentication methods accepted by WithClientAuthMethod.
const (
	ClientSecretBasic = "client_secret_basic" // HTTP Basic (RFC 6749 §2.3.1)
	ClientSecretPost  = "client_secret_post"  // client_id and client_secret in the form
)

// WithClientAuthMethod makes the token endpoint accept the client secret
// of WithClient only by method (ClientSecretBasic or ClientSecretPost), as
// providers that enforce the registered method do (Ory Hydra does):
// the other method is refused with invalid_client. Discovery then lists
// only method in token_endpoint_auth_methods_supported. By default both
// are accepted and listed. Any other value fails the setup.
func WithClientAuthMethod(method string) Option {
	return func(c *config) {
		if method != ClientSecretBasic && method != ClientSecretPost {
			c.fail("WithClientAuthMethod: %q is not %s or %s", method, ClientSecretBasic, ClientSecretPost)
			return
		}
		c.authMethod = method
	}
}

// WithConsentPage makes GET /authorize show an HTML consent page with
// Approve and Deny buttons instead of approving at once. It is meant for
// people using a real browser; Browser() clicks Approve by itself.
func WithConsentPage() Option {
	return func(c *config) { c.consent = true }
}

// WithAuthorizeError makes every valid authorization request fail: the
// provider redirects to the redirect_uri with error=code, and
// error_description and error_uri when non-empty (for example
// "access_denied"). Invalid requests still get their own errors.
func WithAuthorizeError(code, description, uri string) Option {
	return func(c *config) {
		c.authorizeErr = &oauthError{code: code, description: description, uri: uri}
	}
}

// tokenErr builds an injected token error; an unusable status is a setup
// error rather than a panic inside the server.
func tokenErr(c *config, status int, code, description string) *oauthError {
	if status == 0 {
		status = 400
	}
	if status < 200 || status > 599 {
		c.fail("token error status %d is not in 200..599", status)
	}
	return &oauthError{status: status, code: code, description: description}
}

// WithTokenError makes every /token request (both grants) fail with an
// RFC 6749 §5.2 JSON error: HTTP status (0 means 400), error code and
// error_description (each omitted when empty). Status 200 imitates GitHub,
// which answers errors such as bad_verification_code with HTTP 200. A
// status outside 200..599 fails the setup. The request is still recorded; codes and refresh tokens
// are not consumed.
func WithTokenError(status int, code, description string) Option {
	return func(c *config) {
		e := tokenErr(c, status, code, description)
		c.codeErr, c.refreshErr = e, e
	}
}

// WithCodeExchangeError is WithTokenError for grant_type=authorization_code
// only.
func WithCodeExchangeError(status int, code, description string) Option {
	return func(c *config) { c.codeErr = tokenErr(c, status, code, description) }
}

// WithRefreshError is WithTokenError for grant_type=refresh_token only.
func WithRefreshError(status int, code, description string) Option {
	return func(c *config) { c.refreshErr = tokenErr(c, status, code, description) }
}

// WithRawTokenResponse makes every /token request get exactly this answer:
// status, Content-Type (omitted when empty) and body bytes. Use it to feed
// the client HTML error pages, truncated JSON, or anything else.
func WithRawTokenResponse(status int, contentType, body string) Option {
	return func(c *config) {
		if status < 200 || status > 599 {
			c.fail("raw token response status %d is not in 200..599", status)
		}
		c.rawToken = &rawResponse{status: status, contentType: contentType, body: []byte(body)}
	}
}

// WithTokenResponse registers a hook that may change the successful token
// response JSON object before it is encoded, for example to send
// expires_in as the string "3600", token_type "bearer", drop scope, or add
// unknown members. grantType is "authorization_code" or "refresh_token".
// The hook runs on the server's goroutine; it must be safe for that.
func WithTokenResponse(hook func(grantType string, resp map[string]any)) Option {
	return func(c *config) { c.tokenHook = hook }
}

// WithoutRefreshToken makes the provider never issue refresh tokens.
func WithoutRefreshToken() Option {
	return func(c *config) { c.noRefresh = true }
}

// WithoutRefreshTokenOnRefresh omits refresh_token from refresh responses
// and keeps the original refresh token valid, as Google does.
func WithoutRefreshTokenOnRefresh() Option {
	return func(c *config) { c.noRefreshOnRef = true }
}

// WithoutRefreshTokenRotation turns rotation off: a refresh response
// returns the same refresh token, which stays valid. By default each
// refresh returns a new token, and reusing an old one is treated as theft.
func WithoutRefreshTokenRotation() Option {
	return func(c *config) { c.noRotation = true }
}

// WithTokenLifetime sets the access-token lifetime announced in expires_in
// (default one hour). Zero or negative values are sent as they are
// (truncated to seconds), to test clients against expired tokens.
func WithTokenLifetime(d time.Duration) Option {
	return func(c *config) { c.tokenLifetime = d }
}

// WithIDTokenLifetime sets exp - iat of ID tokens (default one hour).
func WithIDTokenLifetime(d time.Duration) Option {
	return func(c *config) { c.idTokenLifetime = d }
}

// WithCodeLifetime sets how long authorization codes stay valid (default
// ten minutes, measured with the provider's clock).
func WithCodeLifetime(d time.Duration) Option {
	return func(c *config) { c.codeLifetime = d }
}

// WithIDTokenClaims registers a hook that may change ID-token claims just
// before signing: a wrong aud or iss, an expired exp, a missing nonce.
// It is not applied to SignIDToken, whose claims the caller chooses.
func WithIDTokenClaims(hook func(claims map[string]any)) Option {
	return func(c *config) { c.claimsHook = hook }
}

// WithoutIDToken omits id_token from token responses even for openid.
func WithoutIDToken() Option {
	return func(c *config) { c.omitIDToken = true }
}

// WithTokenDelay makes /token wait d before answering. The wait ends early
// when the client gives up or the provider is closed.
func WithTokenDelay(d time.Duration) Option {
	return func(c *config) { c.tokenDelay = d }
}

// WithAuthorizeDelay makes GET /authorize wait d before answering, like a
// person taking their time. It ends early like WithTokenDelay.
func WithAuthorizeDelay(d time.Duration) Option {
	return func(c *config) { c.authorizeDelay = d }
}

// WithIssParameter turns on RFC 9207: authorization responses (codes and
// errors) carry iss=Issuer(), and discovery announces
// authorization_response_iss_parameter_supported.
func WithIssParameter() Option {
	return func(c *config) { c.issParam, c.issParamValue = true, "" }
}

// WithIssParameterValue is WithIssParameter with a chosen (typically wrong)
// iss value, to test mix-up defences.
func WithIssParameterValue(iss string) Option {
	return func(c *config) { c.issParam, c.issParamValue = true, iss }
}

// WithDiscoveryIssuer makes the discovery document claim a different
// issuer than the one the provider is served at (and signs tokens with),
// which OpenID Connect Discovery §4.3 requires clients to reject.
func WithDiscoveryIssuer(iss string) Option {
	return func(c *config) { c.discoveryIssuer = iss }
}

// WithIssuerPath serves the provider under a path, so that its issuer is
// "http://127.0.0.1:PORT"+path, like Keycloak's ".../realms/NAME" or
// Okta's ".../oauth2/default". A path ending in "/" gives an issuer with a
// trailing slash, like Auth0's "https://TENANT.auth0.com/" (path "/").
// Every endpoint and the discovery document live under the issuer without
// its trailing slash (OpenID Connect Discovery §4.1), so AuthURL is
// Issuer() minus any final "/" plus "/authorize"; ID tokens, discovery
// and the RFC 9207 iss parameter carry Issuer() exactly. path must start
// with "/" and hold only letters, digits and "-._~" between single
// slashes ("." and ".." segments are refused); anything else fails the
// setup.
func WithIssuerPath(path string) Option {
	return func(c *config) {
		if !validIssuerPath(path) {
			c.fail("WithIssuerPath(%q): want a path such as /realms/demo or /", path)
			return
		}
		c.issuerPath = path
	}
}

func validIssuerPath(path string) bool {
	switch {
	case path == "/":
		return true
	case !strings.HasPrefix(path, "/") || len(path) > 256:
		return false
	}
	for _, seg := range strings.Split(strings.TrimSuffix(path[1:], "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
				return false
			}
		}
	}
	return true
}

// WithRefreshTokenOnlyWhen makes the code exchange issue a refresh token
// only when when(query) is true for the query of the authorization
// request the code came from, as providers do that want the client to ask
// for one: Google only with access_type=offline (and, after the first
// consent, prompt=consent), Okta and Microsoft Entra only with the
// offline_access scope. A nil when restores the default (always, unless
// WithoutRefreshToken). It runs on the server's goroutine.
func WithRefreshTokenOnlyWhen(when func(query url.Values) bool) Option {
	return func(c *config) { c.refreshWhen = when }
}

// WithUser sets the signed-in user; zero fields keep their defaults.
func WithUser(u User) Option {
	return func(c *config) {
		if u.Subject != "" {
			c.user.Subject = u.Subject
		}
		if u.Email != "" {
			c.user.Email = u.Email
		}
		if u.Name != "" {
			c.user.Name = u.Name
		}
	}
}

// WithGrantedScope makes the provider grant this space-separated scope
// instead of the requested one. It is what the token response's scope
// member says and what refresh requests may narrow. An empty string grants
// nothing and omits scope from the response. Whether an ID token is issued
// still depends on the requested scope containing openid.
func WithGrantedScope(scope string) Option {
	return func(c *config) { c.grantedScope = &scope }
}

// WithNow sets the provider's clock, used for code expiry and ID-token
// iat, exp and auth_time. It must be safe for concurrent use.
func WithNow(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.fail("WithNow: nil clock")
			return
		}
		c.now = now
	}
}

// WithAddr makes the provider listen on addr, "IP:PORT" with a loopback IP
// (127.0.0.1 by default; [::1] works too) and a fixed port, so its issuer
// stays the same across runs, as the loopauthtest command needs. Port 0,
// the default, picks a free port. Any other host fails the setup: the
// provider accepts any user and must never be reachable from elsewhere.
func WithAddr(addr string) Option {
	return func(c *config) {
		host, port, err := net.SplitHostPort(addr)
		ip := net.ParseIP(host)
		n, perr := strconv.Atoi(port)
		if err != nil || ip == nil || !ip.IsLoopback() || perr != nil || n < 0 || n > 65535 {
			c.fail("WithAddr(%q): want a loopback IP and a port, such as 127.0.0.1:8080", addr)
			return
		}
		c.addr = addr
	}
}

// WithRevocationError makes every well-formed /revoke request fail with an
// RFC 7009 §2.2.1 error: HTTP status (0 means 400), error code (such as
// "unsupported_token_type", or "temporarily_unavailable" with 503) and
// error_description (each omitted when empty). A status outside 200..599
// fails the setup. Nothing is revoked; the request is still recorded.
func WithRevocationError(status int, code, description string) Option {
	return func(c *config) { c.revocationErr = tokenErr(c, status, code, description) }
}

// WithoutRevocation leaves revocation_endpoint out of the discovery
// document and makes /revoke answer 404, like a provider without RFC 7009.
// Requests to /revoke are still recorded, so a test can see that a client
// did not call it.
func WithoutRevocation() Option {
	return func(c *config) { c.noRevocation = true }
}

// Token types, as RFC 7009 and RFC 7662 name them in token_type_hint.
const (
	AccessTokenType  = "access_token"
	RefreshTokenType = "refresh_token"
)

// WithoutRevocationOf makes /revoke refuse one token type, AccessTokenType or
// RefreshTokenType, with 400 unsupported_token_type (RFC 7009 §2.2.1): a
// request is refused when its token is of that type, or when its
// token_type_hint names that type. Many providers revoke only refresh
// tokens. Any other value fails the setup.
func WithoutRevocationOf(tokenType string) Option {
	return func(c *config) {
		if tokenType != AccessTokenType && tokenType != RefreshTokenType {
			c.fail("WithoutRevocationOf(%q): want %q or %q", tokenType, AccessTokenType, RefreshTokenType)
			return
		}
		if c.unrevocable == nil {
			c.unrevocable = make(map[string]bool)
		}
		c.unrevocable[tokenType] = true
	}
}

// The resource-server credential that /introspect requires by default, by
// HTTP Basic. They are fixed and public: this is a test kit.
const (
	DefaultIntrospectionID     = "api"
	DefaultIntrospectionSecret = "api-secret"
)

// WithIntrospectionCredentials sets the HTTP Basic credential a fake API
// must send to /introspect (default DefaultIntrospectionID and
// DefaultIntrospectionSecret). Both must be non-empty.
func WithIntrospectionCredentials(id, secret string) Option {
	return func(c *config) {
		if id == "" || secret == "" {
			c.fail("WithIntrospectionCredentials: empty id or secret")
			return
		}
		c.introspectID, c.introspectSecret = id, secret
	}
}

// WithStateFile keeps the provider's state in the file at path, so that a
// provider started again with the same file carries on: its signing keys,
// the grants it made with their refresh tokens, the access tokens it
// issued, and what was revoked. StartProvider reads the file when it
// exists (an unreadable or malformed file, or keys of another algorithm
// than WithSigningAlg's, fail the setup) and writes it, mode 0600, at start
// and after every change, by writing a temporary file and renaming it.
// Authorization codes and consent pages in progress are not kept. The file
// holds live tokens and private keys in clear: keep it in a test's
// temporary directory.
func WithStateFile(path string) Option {
	return func(c *config) {
		if path == "" {
			c.fail("WithStateFile: empty path")
			return
		}
		c.stateFile = path
	}
}
