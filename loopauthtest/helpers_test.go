package loopauthtest

// These helpers play the part of a client library, using net/http and the
// crypto packages only, so the provider is tested against the protocol and
// not against itself.

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

var rawURL = base64.RawURLEncoding

// newPKCE returns a fresh RFC 7636 verifier and its S256 challenge.
func newPKCE(t *testing.T) (verifier, challenge string) {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	verifier = rawURL.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, rawURL.EncodeToString(sum[:])
}

// callback stands in for the library's loopback redirect listener.
type callback struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []url.Values
	status int
}

func newCallback(t *testing.T) *callback {
	t.Helper()
	c := &callback{status: http.StatusOK}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.got = append(c.got, r.URL.Query())
		status := c.status
		c.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "you may close this window")
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *callback) URL() string { return c.srv.URL + "/callback" }

func (c *callback) last(t *testing.T) url.Values {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		t.Fatal("callback was never called")
	}
	return c.got[len(c.got)-1]
}

// flow is one authorization request as a client builds it.
type flow struct {
	clientID, redirectURI, state, nonce, scope string
	verifier, challenge                        string
}

func newFlow(t *testing.T, redirectURI string) *flow {
	t.Helper()
	v, c := newPKCE(t)
	return &flow{
		clientID:    "cli",
		redirectURI: redirectURI,
		state:       "st-" + c[:12],
		nonce:       "n-" + v[:10],
		scope:       "openid email offline_access",
		verifier:    v,
		challenge:   c,
	}
}

func (f *flow) params() url.Values {
	v := url.Values{
		"response_type":         {"code"},
		"client_id":             {f.clientID},
		"redirect_uri":          {f.redirectURI},
		"state":                 {f.state},
		"code_challenge":        {f.challenge},
		"code_challenge_method": {"S256"},
	}
	if f.scope != "" {
		v.Set("scope", f.scope)
	}
	if f.nonce != "" {
		v.Set("nonce", f.nonce)
	}
	return v
}

func authURL(p *Provider, v url.Values) string { return p.AuthURL() + "?" + v.Encode() }

// authorize runs the browser part of the flow and returns the callback
// query, failing the test if no code came back.
func authorize(t *testing.T, p *Provider, f *flow, cb *callback) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Browser()(ctx, authURL(p, f.params())); err != nil {
		t.Fatalf("Browser: %v", err)
	}
	q := cb.last(t)
	if q.Get("state") != f.state {
		t.Fatalf("callback state = %q, want %q", q.Get("state"), f.state)
	}
	code := q.Get("code")
	if code == "" {
		t.Fatalf("callback got no code: %v", q)
	}
	return code
}

func (f *flow) exchangeForm(code string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {f.redirectURI},
		"client_id":     {f.clientID},
		"code_verifier": {f.verifier},
	}
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type tokenResult struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r tokenResult) str(name string) string {
	s, _ := r.body[name].(string)
	return s
}

func postForm(t *testing.T, target string, form url.Values, setup func(*http.Request)) tokenResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if setup != nil {
		setup(req)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	res := tokenResult{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &res.body) // raw-response tests send non-JSON
	return res
}

func postToken(t *testing.T, p *Provider, form url.Values) tokenResult {
	t.Helper()
	return postForm(t, p.TokenURL(), form, nil)
}

// wantTokenError asserts an RFC 6749 §5.2 error response.
func wantTokenError(t *testing.T, r tokenResult, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d with error %q", r.status, r.raw, status, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("error Cache-Control = %q", cc)
	}
}

func wantTokens(t *testing.T, r tokenResult) {
	t.Helper()
	if r.status != http.StatusOK || r.str("access_token") == "" {
		t.Fatalf("token response %d %s, want 200 with access_token", r.status, r.raw)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
}

// login runs the whole flow and returns the successful token response.
func login(t *testing.T, p *Provider, f *flow, cb *callback) tokenResult {
	t.Helper()
	code := authorize(t, p, f, cb)
	r := postToken(t, p, f.exchangeForm(code))
	wantTokens(t, r)
	return r
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %s, Content-Type %q", u, resp.Status, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

type jwk struct {
	Kty, Kid, Use, Alg, Crv, X, Y, N, E string
}

func fetchJWKS(t *testing.T, p *Provider) []jwk {
	t.Helper()
	var set struct{ Keys []jwk }
	getJSON(t, p.JWKSURL(), &set)
	return set.Keys
}

func b64dec(t *testing.T, s string) []byte {
	t.Helper()
	b, err := rawURL.DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

// publicKey turns a JWK into a Go key without the deprecated ecdsa X/Y
// fields: ecdh checks the point, x509 converts it.
func (k jwk) publicKey(t *testing.T) crypto.PublicKey {
	t.Helper()
	switch k.Kty {
	case "EC":
		x, y := b64dec(t, k.X), b64dec(t, k.Y)
		if k.Crv != "P-256" || len(x) != 32 || len(y) != 32 {
			t.Fatalf("EC JWK crv=%q len(x)=%d len(y)=%d", k.Crv, len(x), len(y))
		}
		pt := append(append([]byte{4}, x...), y...)
		ek, err := ecdh.P256().NewPublicKey(pt)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(ek)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			t.Fatal(err)
		}
		return pub
	case "RSA":
		e := new(big.Int).SetBytes(b64dec(t, k.E))
		return &rsa.PublicKey{N: new(big.Int).SetBytes(b64dec(t, k.N)), E: int(e.Int64())}
	}
	t.Fatalf("unexpected kty %q", k.Kty)
	return nil
}

// verifyJWT checks a compact JWS against the provider's JWKS, as a client
// would, and returns its header and claims.
func verifyJWT(t *testing.T, p *Provider, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("JWS has %d parts", len(parts))
	}
	if err := json.Unmarshal(b64dec(t, parts[0]), &header); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b64dec(t, parts[1]), &claims); err != nil {
		t.Fatal(err)
	}
	if header["typ"] != "JWT" {
		t.Errorf("typ = %v", header["typ"])
	}
	var key *jwk
	keys := fetchJWKS(t, p)
	for i := range keys {
		if keys[i].Kid == header["kid"] {
			key = &keys[i]
		}
	}
	if key == nil {
		t.Fatalf("kid %v not in JWKS", header["kid"])
	}
	if key.Alg != header["alg"] || key.Use != "sig" {
		t.Fatalf("JWK alg %q use %q, header alg %v", key.Alg, key.Use, header["alg"])
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	sig := b64dec(t, parts[2])
	switch pub := key.publicKey(t).(type) {
	case *ecdsa.PublicKey:
		if header["alg"] != AlgES256 || len(sig) != 64 {
			t.Fatalf("alg %v with %d-byte signature, want ES256 with raw R||S", header["alg"], len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, digest[:], r, s) {
			t.Fatal("ES256 signature does not verify")
		}
	case *rsa.PublicKey:
		if header["alg"] != AlgRS256 {
			t.Fatalf("alg %v for RSA key", header["alg"])
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			t.Fatalf("RS256 signature: %v", err)
		}
	default:
		t.Fatalf("unexpected key %T", pub)
	}
	return header, claims
}

// num reads a JSON number claim.
func num(t *testing.T, claims map[string]any, name string) int64 {
	t.Helper()
	f, ok := claims[name].(float64)
	if !ok {
		t.Fatalf("claim %s = %#v, want a number", name, claims[name])
	}
	return int64(f)
}

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// fakeClock is a settable clock safe to read from server goroutines.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
