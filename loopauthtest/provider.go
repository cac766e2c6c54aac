// Package loopauthtest runs an in-process OAuth 2.0 / OpenID Connect
// provider for testing programs that use loopauth, the way net/http/httptest
// runs an HTTP server for testing clients.
//
// The provider implements the authorization code grant with PKCE (S256
// only), refresh tokens with rotation and reuse detection, signed ID tokens
// (ES256 or RS256), a JWKS, token revocation, token introspection and an
// OpenID Connect discovery document. It is served over plain HTTP on
// 127.0.0.1 and never contacts anything else.
//
// The package deliberately does not import loopauth: it speaks only the
// wire protocol (HTTP, forms, JSON, JWS), so a test exercises the library
// against an independent implementation rather than against itself.
//
// A typical test starts a provider, points the code under test at its
// Issuer (or AuthURL and TokenURL), and uses Browser as the function that
// "opens" the authorization URL:
//
//	p := loopauthtest.NewProvider(t, loopauthtest.WithClient("cli", ""))
//	cfg := myapp.Config{Issuer: p.Issuer(), ClientID: "cli", OpenBrowser: p.Browser()}
//	tok, err := myapp.Login(ctx, cfg)
//	// then assert on tok, and on p.AuthorizeRequests() and p.TokenRequests().
//
// Options inject failures and provider quirks: error responses (HTTP 200
// ones too, as GitHub sends), raw token bodies, mutated token responses
// and ID-token claims, missing or non-rotating refresh tokens, refresh
// tokens only for requests that ask the provider's way, issuers with a
// path or a trailing slash, delays, RFC 9207 iss parameters, a wrong
// discovery issuer, and an injectable clock.
//
// After the sign-in, the provider revokes tokens (RFC 7009, at
// RevocationURL; revoked tokens are refused from then on), and tells a
// fake API whether an access token it issued is still good: in the test's
// process with CheckAccessToken, from another process through its RFC 7662
// introspection endpoint (IntrospectionURL). The command
// loopauthtest/cmd/loopauthtest serves a provider as a process of its own,
// on a fixed address with a state file, for integration tests that run a
// CLI's commands (login, whoami, logout) as separate processes.
//
// This is test infrastructure, not for production: it keeps everything in
// memory (or in a plain file, with WithStateFile), accepts any user without
// authentication, and panics on setup failures that cannot happen on a
// working machine.
package loopauthtest

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Provider is a running test OAuth 2.0 / OpenID Connect provider. Its
// methods are safe for concurrent use.
type Provider struct {
	cfg    *config
	srv    *httptest.Server
	issuer string // "http://127.0.0.1:PORT" plus WithIssuerPath's path
	base   string // issuer without a trailing "/": endpoints hang below it
	host   string // "127.0.0.1:PORT"

	done      chan struct{} // closed when Close starts; ends delays
	closeOnce sync.Once

	saveMu sync.Mutex // orders writes of the state file

	mu         sync.Mutex
	keys       []*signingKey // current key first
	codes      map[string]*authCode
	pending    map[string]*authzRequest // consent page request id -> request
	refresh    map[string]*grant        // refresh token -> its grant
	access     map[string]*accessToken  // access token -> what it grants
	authzReqs  []url.Values
	tokenReqs  []url.Values
	revokeReqs []url.Values
}

// authzRequest is a validated authorization request.
type authzRequest struct {
	clientID    string
	redirectURI string
	state       string
	challenge   string
	scope       string
	nonce       string
	noRefresh   bool      // WithRefreshTokenOnlyWhen said no
	expires     time.Time // for pending consent requests
}

// authCode is an issued authorization code and what it is bound to.
type authCode struct {
	req      authzRequest
	authTime time.Time
	expires  time.Time
	used     bool
	grant    *grant // set on first exchange so a replay can revoke it
}

// grant is what a successful code exchange created: one family of refresh
// tokens of which only current is valid.
type grant struct {
	clientID string
	subject  string
	scope    string // granted scope
	openid   bool   // requested scope contained openid
	authTime time.Time
	current  string // the only valid refresh token
	revoked  bool   // also ends the access tokens issued under it
}

// accessToken is an issued access token.
type accessToken struct {
	grant   *grant
	scope   string
	expires time.Time
	revoked bool
}

const (
	maxFormBytes   = 64 << 10
	maxHeaderBytes = 64 << 10
	// maxPending bounds stored codes and consent requests; beyond it
	// expired entries are swept before adding more.
	maxPending = 1024
	// maxAccess is where expired and revoked access tokens are swept.
	maxAccess = 4096
)

// NewProvider starts a provider for a test and closes it when the test
// ends. A setup error (such as an invalid option) fails the test.
func NewProvider(tb testing.TB, opts ...Option) *Provider {
	tb.Helper()
	p, err := StartProvider(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

// StartProvider starts a provider without a testing.TB, for demos and
// TestMain. The caller must call Close.
func StartProvider(opts ...Option) (*Provider, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(cfg)
		}
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	p := &Provider{
		cfg:     cfg,
		done:    make(chan struct{}),
		codes:   make(map[string]*authCode),
		pending: make(map[string]*authzRequest),
		refresh: make(map[string]*grant),
		access:  make(map[string]*accessToken),
	}
	if err := p.loadState(); err != nil {
		return nil, err
	}
	if len(p.keys) == 0 {
		key, err := newSigningKey(cfg.alg, false)
		if err != nil {
			return nil, fmt.Errorf("loopauthtest: generating signing key: %w", err)
		}
		p.keys = []*signingKey{key}
	}
	if err := p.persist(); err != nil {
		return nil, err
	}
	// Listen ourselves rather than let httptest panic: loopback only.
	l, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("loopauthtest: listening on %s: %w", cfg.addr, err)
	}
	p.host = l.Addr().String()
	p.issuer = "http://" + p.host + cfg.issuerPath
	p.base = strings.TrimSuffix(p.issuer, "/")

	prefix := strings.TrimSuffix(cfg.issuerPath, "/")
	mux := http.NewServeMux()
	mux.HandleFunc(prefix+"/.well-known/openid-configuration", p.handleDiscovery)
	mux.HandleFunc(prefix+"/jwks", p.handleJWKS)
	mux.HandleFunc(prefix+"/authorize", p.handleAuthorize)
	mux.HandleFunc(prefix+"/authorize/decision", p.handleDecision)
	mux.HandleFunc(prefix+"/token", p.handleToken)
	mux.HandleFunc(prefix+"/revoke", p.handleRevoke)
	mux.HandleFunc(prefix+"/introspect", p.handleIntrospect)

	p.srv = &httptest.Server{
		Listener: l,
		Config: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       30 * time.Second,
			MaxHeaderBytes:    maxHeaderBytes,
		},
	}
	p.srv.Start()
	return p, nil
}

// Close shuts the provider down and blocks until its server has stopped.
// Pending delays end at once. Close may be called more than once.
func (p *Provider) Close() {
	p.closeOnce.Do(func() {
		close(p.done)
		p.srv.Close()
	})
}

// Issuer returns the issuer identifier: "http://127.0.0.1:PORT" without a
// trailing slash, or with WithIssuerPath's path after it. Discovery is at
// Issuer()+"/.well-known/openid-configuration", with one trailing "/" of
// the issuer removed first (OpenID Connect Discovery §4.1); so are the
// endpoints below.
func (p *Provider) Issuer() string { return p.issuer }

// DiscoveryURL returns Issuer()+"/.well-known/openid-configuration".
func (p *Provider) DiscoveryURL() string { return p.base + "/.well-known/openid-configuration" }

// AuthURL returns the authorization endpoint, Issuer()+"/authorize".
func (p *Provider) AuthURL() string { return p.base + "/authorize" }

// TokenURL returns the token endpoint, Issuer()+"/token".
func (p *Provider) TokenURL() string { return p.base + "/token" }

// JWKSURL returns the JSON Web Key Set endpoint, Issuer()+"/jwks".
func (p *Provider) JWKSURL() string { return p.base + "/jwks" }

// RevocationURL returns the RFC 7009 revocation endpoint,
// Issuer()+"/revoke" (which answers 404 under WithoutRevocation).
func (p *Provider) RevocationURL() string { return p.base + "/revoke" }

// IntrospectionURL returns the RFC 7662 introspection endpoint,
// Issuer()+"/introspect".
func (p *Provider) IntrospectionURL() string { return p.base + "/introspect" }

// SignIDToken signs claims exactly as given (no defaults, no claims hook)
// with the provider's current key and returns the compact JWS, with header
// alg, kid and typ "JWT". It panics if claims cannot be encoded as JSON.
func (p *Provider) SignIDToken(claims map[string]any) string {
	jws, err := p.currentKey().sign(claims)
	if err != nil {
		panic("loopauthtest: SignIDToken: " + err.Error())
	}
	return jws
}

// RotateKey switches to a freshly generated key (with a new kid) for all
// later tokens. The JWKS lists the new key first and keeps the old ones
// after it unless WithoutPreviousKeys was given. It returns the new kid and
// panics if key generation, or saving the WithStateFile file, fails.
func (p *Provider) RotateKey() string {
	key, err := newSigningKey(p.cfg.alg, true)
	if err != nil {
		panic("loopauthtest: RotateKey: " + err.Error())
	}
	p.mu.Lock()
	p.keys = append([]*signingKey{key}, p.keys...)
	p.mu.Unlock()
	if err := p.persist(); err != nil {
		panic("loopauthtest: RotateKey: " + err.Error())
	}
	return key.kid
}

// KeyID returns the kid of the current signing key.
func (p *Provider) KeyID() string { return p.currentKey().kid }

// PublicKey returns the current signing key's public half
// (*ecdsa.PublicKey or *rsa.PublicKey), for verifying tokens in tests.
func (p *Provider) PublicKey() crypto.PublicKey { return p.currentKey().priv.Public() }

func (p *Provider) currentKey() *signingKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[0]
}

// AuthorizeRequests returns a copy of the query of every request to
// /authorize so far, in arrival order.
func (p *Provider) AuthorizeRequests() []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return copyValuesList(p.authzReqs)
}

// TokenRequests returns a copy of the form of every POST to /token so far,
// in arrival order. A client_id sent only by HTTP Basic is not included.
func (p *Provider) TokenRequests() []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return copyValuesList(p.tokenReqs)
}

// RevocationRequests returns a copy of the form of every request to
// /revoke so far, in arrival order, like TokenRequests.
func (p *Provider) RevocationRequests() []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return copyValuesList(p.revokeReqs)
}

func copyValuesList(in []url.Values) []url.Values {
	out := make([]url.Values, len(in))
	for i, v := range in {
		c := make(url.Values, len(v))
		for k, vs := range v {
			c[k] = append([]string(nil), vs...)
		}
		out[i] = c
	}
	return out
}

func (p *Provider) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	iss := p.issuer
	if p.cfg.discoveryIssuer != "" {
		iss = p.cfg.discoveryIssuer
	}
	doc := map[string]any{
		"issuer":                                         iss,
		"authorization_endpoint":                         p.AuthURL(),
		"token_endpoint":                                 p.TokenURL(),
		"jwks_uri":                                       p.JWKSURL(),
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          p.authMethods(),
		"id_token_signing_alg_values_supported":          []string{p.cfg.alg},
		"scopes_supported":                               []string{"openid", "email", "profile", "offline_access"},
		"subject_types_supported":                        []string{"public"},
		"claims_supported":                               []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "email", "email_verified", "name"},
		"authorization_response_iss_parameter_supported": p.cfg.issParam,
		"introspection_endpoint":                         p.IntrospectionURL(),
		"introspection_endpoint_auth_methods_supported":  []string{"client_secret_basic"},
	}
	if !p.cfg.noRevocation {
		doc["revocation_endpoint"] = p.RevocationURL()
		doc["revocation_endpoint_auth_methods_supported"] = p.authMethods()
	}
	writeJSON(w, http.StatusOK, doc)
}

// authMethods are the client authentication methods of /token and
// /revoke, which share authenticateClient (and discovery lists them).
func (p *Provider) authMethods() []string {
	if p.cfg.authMethod != "" {
		return []string{p.cfg.authMethod}
	}
	return []string{"none", ClientSecretPost, ClientSecretBasic}
}

func (p *Provider) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	p.mu.Lock()
	keys := p.keys
	if p.cfg.dropOldKeys {
		keys = keys[:1]
	}
	jwks := make([]map[string]any, len(keys))
	for i, k := range keys {
		jwks[i] = k.jwk // never mutated after creation
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"keys": jwks})
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a test hook can put unencodable values here.
		http.Error(w, "loopauthtest: encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// wait sleeps d unless the request is abandoned or the provider closes; it
// reports whether the full delay elapsed.
func (p *Provider) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-p.done:
	}
	return false
}

// randomToken returns n random bytes, base64url without padding. Codes and
// tokens use 32 bytes (256 bits).
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("loopauthtest: crypto/rand failed: " + err.Error())
	}
	return b64.EncodeToString(b)
}
