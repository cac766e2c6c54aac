package loopauth

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file turns a JSON Web Key Set (RFC 7517) into typed public keys and
// verifies compact JWS signatures with them (RFC 7515, RFC 7518). The rule
// throughout is that the key decides: a key is bound to a key type, a
// curve and, when its JWK says so, one algorithm, and a token's alg must fit
// the key; there is no path from a public key to a MAC key.

const (
	// maxJWKSKeys caps the keys in a set; providers publish 2-10.
	maxJWKSKeys = 64
	// RSA bounds: RFC 7518 §3.3 requires 2048 bits; 8192 is Go's own TLS
	// ceiling and keeps verification cheap.
	minRSABits = 2048
	maxRSABits = 8192
	// RSA public exponent bounds: NIST SP 800-56B asks for e > 2^16; Go
	// refuses e above 2^31-1.
	minRSAExponent = 65537
	maxRSAExponent = 1<<31 - 1
)

// jsonWebKey is one public key, checked and ready to verify with.
type jsonWebKey struct {
	kid string
	alg string // "" when the JWK does not restrict the algorithm
	rsa *rsa.PublicKey
	ec  *ecdsa.PublicKey
	ed  ed25519.PublicKey
}

// JSONWebKeySet is a parsed JSON Web Key Set: the usable public signing
// keys of a provider. Keys this package cannot use safely (unknown kty,
// encryption keys, weak RSA keys, points off the curve...) are skipped, as
// RFC 7517 §5 asks. It is immutable and safe for concurrent use.
type JSONWebKeySet struct {
	keys    []jsonWebKey
	skipped []skippedKey
}

// The JWK members read. The private members are read only to refuse a
// set that carries them.
const (
	jwkKty = iota
	jwkUse
	jwkKeyOps
	jwkAlg
	jwkKid
	jwkN
	jwkE
	jwkCrv
	jwkX
	jwkY
	jwkPrivate // d, p, q, dp, dq, qi, oth, k
)

var jwkMembers = []string{
	jwkKty: "kty", jwkUse: "use", jwkKeyOps: "key_ops", jwkAlg: "alg", jwkKid: "kid",
	jwkN: "n", jwkE: "e", jwkCrv: "crv", jwkX: "x", jwkY: "y",
	jwkPrivate: "d", "p", "q", "dp", "dq", "qi", "oth", "k",
}

// ParseJSONWebKeySet parses a JWKS document ({"keys": [...]}) strictly: one
// JSON object, no duplicate or case-variant members, at most 64 keys. A key
// holding private material makes the whole set an error: a provider that
// publishes it has leaked its signing key. Other unusable keys are skipped;
// a set with no usable key is an error wrapping ErrNoUsableKey.
func ParseJSONWebKeySet(data []byte) (*JSONWebKeySet, error) {
	doc, err := decodeStrictMembers(data, jwksMembers)
	if err != nil {
		return nil, errorf("%w: %v", ErrInvalidJWKS, err)
	}
	keysRaw := doc[0]
	if len(keysRaw) == 0 || keysRaw[0] != '[' {
		return nil, errorf("%w: keys is missing or not an array", ErrInvalidJWKS)
	}
	set := &JSONWebKeySet{}
	err = forEachJSONElement(keysRaw, maxJWKSKeys, func(elem []byte) error {
		key, skip, err := parseJWK(elem)
		switch {
		case err != nil:
		case skip == "":
			set.keys = append(set.keys, key)
		default:
			set.skipped = append(set.skipped, skippedKey{key.kid, skip})
		}
		return err
	})
	if err != nil {
		return nil, errorf("%w: %v", ErrInvalidJWKS, err)
	}
	if len(set.keys) == 0 {
		why := "it has none"
		if len(set.skipped) > 0 {
			why = fmt.Sprintf("none of its %d can verify signatures; the first: %s", len(set.skipped), set.skipped[0].why)
		}
		return nil, errorf("%w: %w: %s", ErrInvalidJWKS, ErrNoUsableKey, why)
	}
	return set, nil
}

var jwksMembers = []string{"keys"}

var errPrivateKey = errors.New("a key holds private key material; the provider must publish public keys only")

// skippedKey is a key ParseJSONWebKeySet left out, with why: a
// RemoteJWKSValidator logs these, as a provider's mistake shows there.
type skippedKey struct{ kid, why string }

// parseJWK reads one key. It reports a key to skip (RFC 7517 §5) with
// the reason, and a key holding private material with errPrivateKey.
func parseJWK(elem []byte) (k jsonWebKey, skip string, err error) {
	m, err := decodeStrictMembers(elem, jwkMembers)
	if err != nil {
		return k, "not a strict JSON object", nil
	}
	for _, v := range m[jwkPrivate:len(jwkMembers)] {
		if v != nil {
			return k, "", errPrivateKey
		}
	}
	// str reads an optional member that must be a string when present.
	str := func(member int) (string, bool) {
		v := m[member]
		if v == nil {
			return "", true
		}
		s, err := jsonString(v)
		return s, err == nil && v[0] == '"'
	}
	kty, ok1 := str(jwkKty)
	kid, ok2 := str(jwkKid)
	alg, ok3 := str(jwkAlg)
	if !ok1 || !ok2 || !ok3 || len(kid) > maxKIDBytes {
		return k, "kty, kid or alg is not a string, or kid is longer than 256 bytes", nil
	}
	k.kid, k.alg = kid, alg
	if !signingKey(m[jwkUse], m[jwkKeyOps]) {
		return k, "not a signing key (use or key_ops)", nil
	}
	// "oct" keys are secrets, never verification keys; others are unknown.
	switch crv, ok := str(jwkCrv); {
	case kty == "RSA":
		k.rsa = parseRSAKey(m[jwkN], m[jwkE])
	case kty == "EC" && ok:
		k.ec = parseECKey(crv, m[jwkX], m[jwkY])
	case kty == "OKP" && ok && crv == "Ed25519":
		k.ed = decodeFixed(m[jwkX], ed25519.PublicKeySize)
	default:
		return k, "unsupported key type (kty) or curve", nil
	}
	switch {
	case k.rsa == nil && k.ec == nil && k.ed == nil:
		return k, "unusable " + kty + " key parameters (RSA: 2048 to 8192 bits; EC: a point on the curve)", nil
	case k.alg != "" && !k.fits(k.alg):
		return k, "its alg does not fit the key", nil
	}
	return k, "", nil
}

// signingKey reports whether a key is meant for signatures: use absent or
// "sig", and key_ops absent or containing "verify" (RFC 7517 §4.2, §4.3).
func signingKey(use, ops []byte) bool {
	if use != nil {
		if u, err := jsonString(use); err != nil || u != "sig" {
			return false
		}
	}
	if ops != nil {
		list, err := jsonStrings(ops, 16)
		return err == nil && slices.Contains(list, "verify")
	}
	return true
}

// decodeBase64URL decodes a JWK member that must be an escape-free JSON
// string of unpadded base64url. The alphabet is checked first because the
// strict decoder skips CR and LF.
func decodeBase64URL(v []byte) ([]byte, bool) {
	s, ok := jsonStringBytes(v)
	if !ok || !isBase64URL(string(s)) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(string(s))
	return b, err == nil
}

// decodeUInt decodes a Base64urlUInt, which RFC 7518 §2 requires to use
// the minimum number of octets (no leading zero); nil if it is not one.
func decodeUInt(v []byte) []byte {
	if b, ok := decodeBase64URL(v); ok && len(b) > 0 && b[0] != 0 {
		return b
	}
	return nil
}

// decodeFixed decodes a base64url string member of exactly size bytes;
// nil if it is not one.
func decodeFixed(v []byte, size int) []byte {
	if b, ok := decodeBase64URL(v); ok && len(b) == size {
		return b
	}
	return nil
}

// parseRSAKey returns the key of n and e, or nil for a key to skip.
func parseRSAKey(nRaw, eRaw []byte) *rsa.PublicKey {
	nb, eb := decodeUInt(nRaw), decodeUInt(eRaw)
	if nb == nil || eb == nil || len(eb) > 4 {
		return nil // not minimal integers, or e does not fit an int32
	}
	n := new(big.Int).SetBytes(nb)
	var e int64
	for _, b := range eb {
		e = e<<8 | int64(b)
	}
	if n.BitLen() < minRSABits || n.BitLen() > maxRSABits || n.Bit(0) == 0 {
		return nil // too small or too large (see minRSABits), or an even modulus
	}
	if e < minRSAExponent || e > maxRSAExponent || e%2 == 0 {
		return nil
	}
	return &rsa.PublicKey{N: n, E: int(e)}
}

// ecCurve returns the curves of a JWK crv, with the coordinate size.
func ecCurve(crv string) (elliptic.Curve, ecdh.Curve, int) {
	switch crv {
	case "P-256":
		return elliptic.P256(), ecdh.P256(), 32
	case "P-384":
		return elliptic.P384(), ecdh.P384(), 48
	case "P-521":
		return elliptic.P521(), ecdh.P521(), 66
	}
	return nil, nil, 0
}

// parseECKey returns the key, or nil for a key to skip: an unsupported
// crv, coordinates not of the curve's exact length (RFC 7518 §6.2.1.2),
// or a point not on the curve (RFC 8725 §3.4), which crypto/ecdh's
// validating parser refuses.
func parseECKey(crv string, xRaw, yRaw []byte) *ecdsa.PublicKey {
	curve, ecdhCurve, size := ecCurve(crv)
	x, y := decodeFixed(xRaw, size), decodeFixed(yRaw, size)
	if curve == nil || x == nil || y == nil {
		return nil
	}
	point := make([]byte, 0, 1+2*size)
	point = append(append(append(point, 4), x...), y...)
	if _, err := ecdhCurve.NewPublicKey(point); err != nil {
		return nil
	}
	return &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
}

// fits reports whether the key can verify alg: the key type and curve
// must match, and a JWK alg, when present, must be exactly alg.
func (k *jsonWebKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return k.rsa != nil
	case "ES256":
		return k.ec != nil && k.ec.Curve == elliptic.P256()
	case "ES384":
		return k.ec != nil && k.ec.Curve == elliptic.P384()
	case "ES512":
		return k.ec != nil && k.ec.Curve == elliptic.P521()
	case "EdDSA":
		return k.ed != nil
	}
	return false
}

// Verify checks the signature of a compact JWS against the set and returns
// its payload. It is signature-only: claims, exp and nbf included, are not
// looked at (RemoteJWKSValidator.Validate checks those). The token's alg
// must be supported and fit the key; a kid selects exactly one key (an
// unknown or ambiguous kid is ErrNoUsableKey); a token without kid is tried
// against every key that fits its alg. Header jwk, jku, x5u and x5c are
// never used to find a key.
//
// A token with an empty payload is refused with ErrMalformedJWT, even when
// its signature verifies. RFC 7515 Appendix F lets the payload be sent
// apart from the token ("detached content"), which this package does not
// support: a signature over nothing proves nothing, and a caller that took
// a nil payload with a nil error as "verified" could go on to trust content
// that was never signed.
func (s *JSONWebKeySet) Verify(compactJWS string) (payload []byte, err error) {
	tok, err := parseCompactJWS(compactJWS)
	if err != nil {
		return nil, err
	}
	if err := s.verify(tok); err != nil {
		return nil, err
	}
	return tok.payload, nil
}

// verify checks tok's signature with the key its header selects.
func (s *JSONWebKeySet) verify(tok *compactJWS) error {
	if tok.kid != nil {
		var match *jsonWebKey
		several := false
		for i := range s.keys {
			if s.keys[i].kid == string(tok.kid) {
				several = several || match != nil
				match = &s.keys[i]
			}
		}
		var problem string
		switch {
		case several:
			problem = "several keys have kid %q"
		case match == nil:
			problem = "no key has kid %q"
		case !match.fits(tok.alg):
			problem = "key %q cannot verify " + tok.alg
		case !match.verifySignature(tok):
			return ErrInvalidSignature
		default:
			return nil
		}
		return errorf("%w: "+problem, ErrNoUsableKey, sanitizeText(string(tok.kid), 64))
	}
	tried := false
	for i := range s.keys {
		if s.keys[i].fits(tok.alg) {
			if s.keys[i].verifySignature(tok) {
				return nil
			}
			tried = true
		}
	}
	if !tried {
		return errorf("%w: no key for %s", ErrNoUsableKey, tok.alg)
	}
	return ErrInvalidSignature
}

// hasKID reports whether a key of the set has this kid.
func (s *JSONWebKeySet) hasKID(kid []byte) bool {
	for i := range s.keys {
		if s.keys[i].kid == string(kid) {
			return true
		}
	}
	return false
}

// verifySignature checks tok's signature with k, which fits tok.alg.
func (k *jsonWebKey) verifySignature(tok *compactJWS) bool {
	alg, in, sig := tok.alg, tok.signingInput, tok.signature
	if alg == "EdDSA" {
		return ed25519.Verify(k.ed, in, sig)
	}
	digest, hash := hashFor(alg, in)
	switch alg[:2] {
	case "RS":
		return rsa.VerifyPKCS1v15(k.rsa, hash, digest, sig) == nil
	case "PS":
		// RFC 7518 §3.5: the salt is as long as the hash. Go's default
		// (PSSSaltLengthAuto) would also accept a salt of 0.
		return rsa.VerifyPSS(k.rsa, hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: hash}) == nil
	}
	return verifyECDSA(k.ec, digest, sig)
}

// hashFor returns the hash of data with the hash of a JWS alg (RFC 7518
// §3), named by its last three characters; EdDSA, whose signature needs
// none, gets SHA-512, the at_hash hash for Ed25519 (OpenID Connect Core
// §3.1.3.6).
func hashFor(alg string, data []byte) ([]byte, crypto.Hash) {
	switch alg[len(alg)-3:] {
	case "256":
		d := sha256.Sum256(data)
		return d[:], crypto.SHA256
	case "384":
		d := sha512.Sum384(data)
		return d[:], crypto.SHA384
	}
	d := sha512.Sum512(data)
	return d[:], crypto.SHA512
}

// verifyECDSA checks a JWS ECDSA signature: R||S, each exactly the size of
// the curve order (RFC 7518 §3.4; a DER signature is refused by length).
func verifyECDSA(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	size := (pub.Curve.Params().BitSize + 7) / 8
	if len(sig) != 2*size {
		return false
	}
	// crypto/ecdsa range-checks r and s (0 < r, s < n), so the all-zero
	// signature of CVE-2022-21449 fails there.
	var buf [3 + 2*(2+1+66)]byte
	return ecdsa.VerifyASN1(pub, digest, appendASN1Signature(buf[:0], sig[:size], sig[size:]))
}

// appendASN1Signature encodes (r, s) as the DER SEQUENCE of two INTEGERs
// that ecdsa.VerifyASN1 takes, without big.Int allocations.
func appendASN1Signature(b, r, s []byte) []byte {
	var ints [2 * (2 + 1 + 66)]byte
	body := appendASN1Int(appendASN1Int(ints[:0], r), s)
	if len(body) < 128 {
		b = append(b, 0x30, byte(len(body)))
	} else {
		b = append(b, 0x30, 0x81, byte(len(body)))
	}
	return append(b, body...)
}

// appendASN1Int appends a big-endian unsigned integer as a DER INTEGER:
// leading zeros dropped, and a zero byte in front of a value whose top
// bit is set (DER integers are two's complement) or of zero itself.
func appendASN1Int(b, v []byte) []byte {
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) == 0 || v[0]&0x80 != 0 {
		return append(append(b, 0x02, byte(len(v)+1), 0), v...)
	}
	return append(append(b, 0x02, byte(len(v))), v...)
}

// String describes the set for diagnostics.
func (s *JSONWebKeySet) String() string {
	kids := make([]string, len(s.keys))
	for i, k := range s.keys {
		kids[i] = k.kid
	}
	return fmt.Sprintf("JSONWebKeySet{keys: %d [%s], skipped: %d}", len(s.keys), strings.Join(kids, " "), len(s.skipped))
}

// JWKSValidator verifies the signature of an ID token. The flow calls
// Validate with the compact token as the provider sent it, and checks the
// standard claims itself afterwards, signature first. An error from
// Validate fails the flow with an error matching ErrInvalidIDToken and
// Validate's error.
type JWKSValidator interface {
	Validate(ctx context.Context, rawIDToken string) error
}

// Key-set cache bounds. A provider's Cache-Control max-age is honoured
// within them; without one, keys are kept for an hour.
const (
	maxJWKSBytes     = 512 << 10
	jwksDefaultTTL   = time.Hour
	jwksMinTTL       = 5 * time.Minute
	jwksMaxTTL       = 24 * time.Hour
	jwksRefetchPause = time.Minute // at most one refetch per minute for unknown kids
)

// RemoteJWKSValidator verifies ID-token signatures with the key set
// published at a provider's jwks_uri. It caches the set (honouring
// Cache-Control max-age between 5 minutes and 24 hours), fetches it again
// when a token names an unknown kid, at most once a minute (OpenID Connect
// Core §10.1.1 rotation without letting each forged token cost a request),
// and keeps using the cached keys when a fetch fails. It is safe for
// concurrent use; concurrent callers share one fetch.
type RemoteJWKSValidator struct {
	jwksURL  string
	clientID string
	algs     []string // nil: every supported alg
	client   *http.Client
	logger   *slog.Logger // nil: none (logCall and the skipped keys)
	now      func() time.Time

	mu          sync.Mutex
	set         *JSONWebKeySet
	expires     time.Time
	lastRefetch time.Time // last fetch caused by an unknown kid
	inflight    *jwksFetch
}

type jwksFetch struct {
	done chan struct{}
	set  *JSONWebKeySet
	ttl  time.Duration
	err  error
}

// NewRemoteJWKSValidator returns a validator for the key set at jwksURL
// (https, or http to a loopback host). clientID, when not empty, must be
// in the token's aud. The URL is checked on first use.
func NewRemoteJWKSValidator(jwksURL, clientID string) *RemoteJWKSValidator {
	return NewRemoteJWKSValidatorWithClient(nil, jwksURL, clientID)
}

// NewRemoteJWKSValidatorWithClient is NewRemoteJWKSValidator fetching
// through client (a proxy, a private CA); nil means the default client.
// The client is copied, never modified: the copy follows at most 3
// redirects, never from https to http, and the set is capped at 256 KiB.
func NewRemoteJWKSValidatorWithClient(client *http.Client, jwksURL, clientID string) *RemoteJWKSValidator {
	return &RemoteJWKSValidator{jwksURL: jwksURL, clientID: clientID, client: metadataHTTPClientFrom(client), now: time.Now}
}

// Validate verifies rawIDToken's signature, then that it has not expired
// and is valid already (exp and nbf, with the 60 seconds of clock leeway
// the flow allows) and, when the validator has a client ID, that its aud
// contains it. An expired token fails with ErrIDTokenExpired, one not yet
// valid with ErrIDTokenNotYetValid. The issuer, nonce and iat are not
// checked: the flow checks those (and calls the signature check directly,
// so nothing is checked or reported twice). For the signature alone, use
// JSONWebKeySet.Verify.
func (v *RemoteJWKSValidator) Validate(ctx context.Context, rawIDToken string) error {
	tok, err := parseCompactJWS(rawIDToken)
	if err != nil {
		return err
	}
	if err := v.verify(ctx, tok); err != nil {
		return err
	}
	claims, err := parseClaims(tok.payload)
	if err != nil {
		return err
	}
	if err := checkValidity(claims, v.now()); err != nil || v.clientID == "" {
		return err
	}
	return checkAudience(claims, v.clientID)
}

// verify checks tok's signature with the cached or freshly fetched keys.
func (v *RemoteJWKSValidator) verify(ctx context.Context, tok *compactJWS) error {
	if v.algs != nil && !slices.Contains(v.algs, tok.alg) {
		return errorf("%w: %s is not among the provider's advertised algorithms", ErrAlgNotAllowed, tok.alg)
	}
	set, fetched, err := v.keySet(ctx, nil)
	if err != nil {
		return err
	}
	if tok.kid != nil && !fetched && !set.hasKID(tok.kid) {
		// An unfamiliar kid may mean the provider rotated its keys.
		if set, _, err = v.keySet(ctx, tok.kid); err != nil {
			return err
		}
	}
	return set.verify(tok)
}

// keySet returns the cached set, fetching it when there is none, when it
// has expired, or when unknownKID is not in it and no other unknown kid
// caused a fetch in the last minute. fetched reports whether this call
// waited for a fetch. A failed fetch leaves cached keys in use and is not
// retried for a minute.
func (v *RemoteJWKSValidator) keySet(ctx context.Context, unknownKID []byte) (set *JSONWebKeySet, fetched bool, err error) {
	v.mu.Lock()
	now := v.now()
	set = v.set
	fresh := set != nil && now.Before(v.expires)
	if fresh && (unknownKID == nil || set.hasKID(unknownKID) || now.Sub(v.lastRefetch) < jwksRefetchPause) {
		v.mu.Unlock()
		return set, false, nil
	}
	f := v.inflight
	leader := f == nil
	if leader {
		f = &jwksFetch{done: make(chan struct{})}
		v.inflight = f
		if fresh {
			v.lastRefetch = now
		}
	}
	v.mu.Unlock()

	if leader {
		f.set, f.ttl, f.err = v.fetch(ctx)
		v.mu.Lock()
		if f.err == nil {
			v.set = f.set
			v.expires = v.now().Add(f.ttl)
		} else if v.set != nil {
			v.expires = v.now().Add(jwksRefetchPause)
		}
		v.inflight = nil
		v.mu.Unlock()
		close(f.done)
	} else {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	switch {
	case f.err == nil:
		return f.set, true, nil
	case set != nil:
		return set, true, nil // K-15: a failed refresh does not drop known keys
	}
	return nil, true, f.err
}

// fetch downloads and parses the key set.
func (v *RemoteJWKSValidator) fetch(ctx context.Context) (*JSONWebKeySet, time.Duration, error) {
	if _, err := parseEndpoint(v.jwksURL); err != nil {
		return nil, 0, errorf("%w: jwks_uri: %v", ErrInvalidJWKS, err)
	}
	data, header, err := getJSON(ctx, v.client, v.logger, v.jwksURL, maxJWKSBytes)
	if err != nil {
		return nil, 0, errorf("%w: fetching the key set: %w", ErrInvalidJWKS, err)
	}
	set, err := ParseJSONWebKeySet(data)
	for i := 0; set != nil && v.logger != nil && i < len(set.skipped); i++ {
		k := set.skipped[i]
		v.logger.Warn("loopauth: the key set has a key that cannot be used", "url", sanitizeText(v.jwksURL, maxQuotedURL),
			"kid", sanitizeText(k.kid, 64), "reason", k.why)
	}
	return set, cacheTTL(header.Get("Cache-Control")), err
}

// cacheTTL reads max-age from a Cache-Control header and bounds it:
// no-store or no-cache mean the shortest time, as refetching on every
// token would let each token cost a request.
func cacheTTL(cc string) time.Duration {
	ttl := jwksDefaultTTL
	for _, d := range strings.Split(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "no-store" || d == "no-cache" {
			return jwksMinTTL
		}
		if age, ok := strings.CutPrefix(d, "max-age="); ok {
			if n, err := strconv.ParseInt(age, 10, 64); err == nil && n >= 0 {
				ttl = time.Duration(min(n, int64(jwksMaxTTL/time.Second))) * time.Second
			}
		}
	}
	return max(jwksMinTTL, min(ttl, jwksMaxTTL))
}
