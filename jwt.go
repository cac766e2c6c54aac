package loopauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file reads compact JWS tokens (RFC 7515 §7.1) and ID-token claims
// (OpenID Connect Core §2, §3.1.3.7). Keys and signatures are in jwk.go.

const (
	// maxCompactJWTBytes caps a compact JWT before any parsing. ID tokens
	// are 1–4 KiB, with large group claims about 16 KiB.
	maxCompactJWTBytes = 64 << 10
	// maxJWTHeaderBytes caps the encoded header; real ones are < 300 bytes.
	maxJWTHeaderBytes = 8 << 10
	// maxKIDBytes caps a key ID; it is only ever a map key.
	maxKIDBytes = 256
	// maxAudiences caps the aud array.
	maxAudiences = 32
	// maxSubjectBytes is OpenID Connect Core §2's limit on sub.
	maxSubjectBytes = 255
	// maxNumericDate is the last second of year 9999: later dates are
	// refused rather than overflowing time arithmetic.
	maxNumericDate = 253402300799
	// clockLeeway is the skew allowed on exp, nbf and iat (RFC 7519 §4.1.4
	// allows "a few minutes"; 60 s as the Rust crate and go-oidc use).
	clockLeeway = 60 * time.Second
)

// supportedAlgs are the JWS algorithms this package verifies, and the only
// ones: never "none", never HS* (a public client has no MAC key, and a
// public key must never become one). Matching is exact and case-sensitive.
var supportedAlgs = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// supportedAlg returns the canonical string for alg if it is supported, so
// that callers hold a constant rather than a copy of attacker bytes.
func supportedAlg(alg []byte) (string, bool) {
	for _, a := range supportedAlgs {
		if a == string(alg) {
			return a, true
		}
	}
	return "", false
}

// compactJWS is a syntactically valid compact JWS whose header passed the
// checks of parseCompactJWS. Nothing in it is verified yet.
type compactJWS struct {
	alg          string // one of supportedAlgs
	kid          []byte // nil when absent
	signingInput []byte // ASCII(BASE64URL(header) || '.' || BASE64URL(payload))
	payload      []byte
	signature    []byte
}

// malformed builds the error of a token that is not a usable compact JWS.
func malformed(format string, args ...any) error {
	return errorf("%w: "+format, append([]any{ErrMalformedJWT}, args...)...)
}

// The header parameters read. jwk, jku, x5u, x5c and x5t are deliberately
// absent: keys come only from the issuer's key set (CVE-2018-0114), so
// those parameters are ignored. The last four are refused when present.
const (
	hdrAlg = iota
	hdrKid
	hdrTyp
	hdrUnsupported // crit, b64, zip, cty and beyond
)

var jwsHeaderMembers = []string{hdrAlg: "alg", hdrKid: "kid", hdrTyp: "typ", hdrUnsupported: "crit", "b64", "zip", "cty"}

// parseCompactJWS checks the compact serialization and the protected
// header. The length and the dot count are checked before anything is
// split or decoded (CVE-2025-30204 and its family); every segment must be
// non-empty unpadded base64url of the exact alphabet, because Go's decoder
// skips CR and LF. The header must be strict JSON with an allowed alg and
// no feature this package does not implement (crit, b64, zip, cty).
func parseCompactJWS(raw string) (*compactJWS, error) {
	if len(raw) > maxCompactJWTBytes {
		return nil, malformed("longer than %d bytes", maxCompactJWTBytes)
	}
	if strings.Count(raw, ".") != 2 {
		return nil, malformed("not three dot-separated segments (JWE and JSON serializations are not supported)")
	}
	d1 := strings.IndexByte(raw, '.')
	d2 := d1 + 1 + strings.IndexByte(raw[d1+1:], '.')
	// An empty signature is reported after the header, so that an
	// unsecured token is named for its alg "none". An empty payload is
	// refused: see JSONWebKeySet.Verify.
	switch {
	case d1 > maxJWTHeaderBytes:
		return nil, malformed("header longer than %d bytes", maxJWTHeaderBytes)
	case strings.ContainsAny(raw, "\r\n"):
		// The strict decoder refuses every byte outside the base64url
		// alphabet except CR and LF, which it skips: refuse those here.
		return nil, malformed("line breaks in the token")
	case d1 == 0:
		return nil, malformed("the header is empty")
	case d2 == d1+1:
		return nil, malformed("the payload is empty (detached payloads are not supported)")
	}
	enc := base64.RawURLEncoding.Strict()
	// One allocation holds a copy of the token (whose first two segments
	// are the signing input) and the three decoded segments, which
	// together decode to no more than the whole token would.
	buf := make([]byte, len(raw)+enc.DecodedLen(len(raw)))
	copy(buf, raw)
	tok := &compactJWS{signingInput: buf[:d2:d2]}
	rest := buf[len(raw):]
	var parts [3][]byte
	for i, seg := range [3][]byte{buf[:d1], buf[d1+1 : d2], buf[d2+1 : len(raw)]} {
		n, err := enc.Decode(rest, seg)
		if err != nil {
			return nil, malformed("segment %d is not canonical base64url", i+1)
		}
		parts[i], rest = rest[:n:n], rest[n:]
	}
	tok.payload, tok.signature = parts[1], parts[2]
	if err := tok.readHeader(parts[0]); err != nil {
		return nil, err
	}
	if len(tok.signature) == 0 {
		return nil, malformed("the signature is empty")
	}
	return tok, nil
}

// readHeader applies the header rules of RFC 7515 §4 and RFC 8725.
func (t *compactJWS) readHeader(header []byte) error {
	h, err := decodeStrictMembers(header, jwsHeaderMembers)
	if err != nil {
		return malformed("header: %v", err)
	}
	for i := hdrUnsupported; i < len(jwsHeaderMembers); i++ {
		if h[i] != nil {
			// RFC 7515 §4.1.11: an extension listed in crit that is not
			// understood makes the JWS invalid; none is understood here.
			return malformed("header parameter %q is not supported", jwsHeaderMembers[i])
		}
	}
	if h[hdrKid] != nil {
		kid, ok := jsonStringBytes(h[hdrKid])
		if !ok || len(kid) == 0 || len(kid) > maxKIDBytes {
			return malformed("kid is not a string of 1-%d bytes", maxKIDBytes)
		}
		t.kid = kid
	}
	if h[hdrTyp] != nil {
		// RFC 8725 §3.11: an ID token is a plain JWT; other types
		// (at+jwt, logout+jwt...) must not be taken for one.
		typ, ok := jsonStringBytes(h[hdrTyp])
		if !ok || !(strings.EqualFold(string(typ), "JWT") || strings.EqualFold(string(typ), "application/jwt")) {
			return malformed("typ is not JWT")
		}
	}
	if h[hdrAlg] == nil {
		return malformed("header has no alg")
	}
	alg, ok := jsonStringBytes(h[hdrAlg])
	if !ok {
		return malformed("alg is not a string")
	}
	if t.alg, ok = supportedAlg(alg); !ok {
		return errorf("%w: %q", ErrAlgNotAllowed, sanitizeText(string(alg), 32))
	}
	return nil
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// IDToken is an OpenID Connect ID token: its compact form and its claims.
// String, GoString, Format and LogValue describe it without the compact
// token, for an IDToken and an *IDToken alike.
type IDToken struct {
	raw    secret // behind a pointer: see secret
	alg    string // the verified header alg, for at_hash
	claims *Claims
}

// Raw returns the compact ID token as the provider issued it.
func (t *IDToken) Raw() string { return t.raw.reveal() }

// Claims returns the decoded claims.
func (t *IDToken) Claims() *Claims { return t.claims }

// String describes the ID token without the token itself.
func (t IDToken) String() string {
	if t.claims == nil {
		return "IDToken{}"
	}
	return fmt.Sprintf("IDToken{iss: %q, sub: %q, token: [redacted]}", t.claims.Issuer, t.claims.Subject)
}

// GoString is String, so %#v does not print the token.
func (t IDToken) GoString() string { return t.String() }

// Format makes every fmt verb print String.
func (t IDToken) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// LogValue describes the ID token to log/slog without the token itself.
// It is on the pointer so that a nil *IDToken (TokenSet.IDToken without
// one) logs as "nil"; an IDToken value is logged through Format.
func (t *IDToken) LogValue() slog.Value {
	if t == nil {
		return slog.StringValue("nil")
	}
	if t.claims == nil {
		return slog.GroupValue()
	}
	return slog.GroupValue(slog.String("iss", t.claims.Issuer), slog.String("sub", t.claims.Subject))
}

// Claims are the standard claims of an ID token (OpenID Connect Core §2,
// §5.1). Unmarshal reads any other claim. The values are the provider's
// text, verified but not sanitized: a name or email may hold control or
// bidirectional characters, so escape them before writing them to a
// terminal or a page.
type Claims struct {
	Subject         string
	Issuer          string
	Audience        []string
	Expiry          time.Time
	IssuedAt        time.Time
	NotBefore       time.Time // zero when absent
	Nonce           string
	AuthorizedParty string
	Email           string
	EmailVerified   bool
	Name            string
	Picture         string // never loaded by this package's pages

	atHash string
	tid    string // Microsoft Entra's tenant, for IssuerTemplate
	raw    []byte
}

// Unmarshal decodes the claims payload into v, for claims this type does
// not have fields for. encoding/json matches names case-insensitively; the
// payload was read strictly first, so no object in it has two members
// whose names differ only in case ("groups" and "GROUPS"): each field of
// v can match one member at most.
func (c *Claims) Unmarshal(v any) error {
	if err := json.Unmarshal(c.raw, v); err != nil {
		return errorf("loopauth: decoding ID token claims: %w", err)
	}
	return nil
}

// The claims read from an ID-token payload.
const (
	clSub = iota
	clIss
	clAud
	clExp
	clIat
	clNbf
	clNonce
	clAzp
	clEmail
	clEmailVerified
	clName
	clPicture
	clAtHash
	clTid
)

var claimMembers = []string{
	clSub: "sub", clIss: "iss", clAud: "aud", clExp: "exp", clIat: "iat", clNbf: "nbf",
	clNonce: "nonce", clAzp: "azp", clEmail: "email", clEmailVerified: "email_verified",
	clName: "name", clPicture: "picture", clAtHash: "at_hash", clTid: "tid",
}

// parseClaims decodes an ID-token payload strictly: one JSON object, no
// duplicate or case-variant members, each claim of its registered type.
// It tolerates what real providers send: aud as a string or an array,
// numeric dates with a fraction, email_verified as "true"/"false" (AWS
// Cognito, older Azure AD). sub, iss, exp and iat are required (OpenID
// Connect Core §2).
func parseClaims(payload []byte) (*Claims, error) {
	m, err := decodeStrictMembers(payload, claimMembers)
	if err != nil {
		return nil, malformed("claims: %v", err)
	}
	c := &Claims{raw: payload}
	// One string holds every escape-free claim value: the claims are
	// substrings of it instead of one allocation each.
	text := string(payload)
	for _, f := range [...]struct {
		member int
		dst    *string
	}{
		{clSub, &c.Subject}, {clIss, &c.Issuer}, {clNonce, &c.Nonce}, {clAzp, &c.AuthorizedParty},
		{clEmail, &c.Email}, {clName, &c.Name}, {clPicture, &c.Picture}, {clAtHash, &c.atHash}, {clTid, &c.tid},
	} {
		if *f.dst, err = claimString(payload, text, m[f.member]); err != nil {
			return nil, malformed("claims: %s is not a string", claimMembers[f.member])
		}
	}
	if m[clAud] != nil {
		if c.Audience, err = parseAudience(m[clAud]); err != nil {
			return nil, malformed("claims: %v", err)
		}
	}
	switch string(m[clEmailVerified]) {
	case "true", `"true"`:
		c.EmailVerified = true
	case "", "false", `"false"`, "null":
	default:
		return nil, malformed("claims: email_verified is not a boolean")
	}
	switch {
	case c.Subject == "":
		return nil, malformed("sub claim is missing")
	case c.Issuer == "":
		return nil, malformed("iss claim is missing")
	}
	if c.Expiry, err = parseNumericDate("exp", m[clExp], true); err != nil {
		return nil, err
	}
	if c.IssuedAt, err = parseNumericDate("iat", m[clIat], true); err != nil {
		return nil, err
	}
	if c.NotBefore, err = parseNumericDate("nbf", m[clNbf], false); err != nil {
		return nil, err
	}
	return c, nil
}

// claimString reads an optional string claim v, a subslice of payload;
// text is string(payload). null counts as absent.
func claimString(payload []byte, text string, v []byte) (string, error) {
	switch {
	case v == nil || string(v) == "null":
		return "", nil
	case v[0] != '"':
		return "", errNotString
	case bytes.IndexByte(v, '\\') >= 0:
		return jsonString(v)
	}
	// v is a subslice of payload, so their capacities give its offset.
	at := cap(payload) - cap(v)
	return text[at+1 : at+len(v)-1], nil
}

var errNotString = errors.New("not a string")

// parseAudience reads aud: a string or an array of strings
// (CVE-2020-26160 came from handling only one of the two).
func parseAudience(v []byte) ([]string, error) {
	switch v[0] {
	case '"':
		s, err := jsonString(v)
		return []string{s}, err
	case '[':
		return jsonStrings(v, maxAudiences)
	case 'n':
		return nil, nil
	}
	return nil, errors.New("aud is neither a string nor an array of strings")
}

// parseNumericDate reads a JSON number (never a string) of seconds since
// the epoch, from 0 to year 9999. Fractions are allowed (RFC 7519 §2).
func parseNumericDate(name string, raw []byte, required bool) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			return time.Time{}, malformed("%s claim is missing", name)
		}
		return time.Time{}, nil
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return time.Time{}, malformed("%s is not a number", name)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, malformed("%s is out of range", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// parseIDTokenUnverified reads a compact ID token and its claims without
// checking the signature. It is used only for token sets read back from
// storage, whose ID token was verified when it was issued.
func parseIDTokenUnverified(raw string) (*IDToken, error) {
	tok, err := parseCompactJWS(raw)
	if err != nil {
		return nil, err
	}
	claims, err := parseClaims(tok.payload)
	if err != nil {
		return nil, err
	}
	return &IDToken{raw: newSecret(raw), alg: tok.alg, claims: claims}, nil
}

// idTokenChecks are what an ID token is checked against (OpenID Connect
// Core §3.1.3.7). The issuer is always compared: Build refuses OpenID mode
// without one, and an empty issuer matches no token. An empty nonce skips
// that check (refresh); accessToken, when set, is checked against at_hash
// if the token has one.
type idTokenChecks struct {
	clientID    string
	issuer      string
	nonce       string
	accessToken string
	now         time.Time
}

// invalidIDToken wraps a claim failure in ErrInvalidIDToken and its own
// sentinel.
func invalidIDToken(sentinel error, format string, args ...any) error {
	return errorf("%w: %w: "+format, append([]any{ErrInvalidIDToken, sentinel}, args...)...)
}

// check validates claims that belong to a token whose signature has been
// checked already (signature first, then claims, never both reported).
func (k idTokenChecks) check(c *Claims, alg string) error {
	if c.Issuer != k.issuer {
		// Exact comparison: no case folding, no trailing-slash tolerance
		// (OpenID Connect Core §3.1.3.7 step 2, Discovery §5).
		return invalidIDToken(ErrInvalidIssuer, "iss %q, want %q", sanitizeText(c.Issuer, 256), k.issuer)
	}
	if err := checkAudience(c, k.clientID); err != nil {
		return err
	}
	if !isVSCHAR(c.Subject) || len(c.Subject) > maxSubjectBytes {
		return invalidIDToken(ErrInvalidSubject, "sub is not 1-%d printable ASCII characters", maxSubjectBytes)
	}
	if err := checkValidity(c, k.now); err != nil {
		return err
	}
	if c.IssuedAt.After(k.now.Add(clockLeeway)) {
		return invalidIDToken(ErrIDTokenNotYetValid, "iat is %s, in the future; check the system clock", utcRFC3339(c.IssuedAt))
	}
	if k.nonce != "" && !equalSecret(c.Nonce, k.nonce) {
		return invalidIDToken(ErrNonceMismatch, "the nonce is missing or is not the one this sign-in sent")
	}
	if c.atHash != "" && k.accessToken != "" && !equalSecret(c.atHash, accessTokenHash(alg, k.accessToken)) {
		return invalidIDToken(ErrAccessTokenHashMismatch, "the ID token was not issued with this access token")
	}
	return nil
}

// checkValidity checks exp and nbf at now, with clockLeeway either side
// (RFC 7519 §4.1.4, §4.1.5).
func checkValidity(c *Claims, now time.Time) error {
	if now.After(c.Expiry.Add(clockLeeway)) {
		return invalidIDToken(ErrIDTokenExpired, "expired at %s; sign in again", utcRFC3339(c.Expiry))
	}
	if !c.NotBefore.IsZero() && c.NotBefore.After(now.Add(clockLeeway)) {
		return invalidIDToken(ErrIDTokenNotYetValid, "nbf is %s; check the system clock", utcRFC3339(c.NotBefore))
	}
	return nil
}

// utcRFC3339 is how errors and descriptions show a time.
func utcRFC3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// checkAudience applies OpenID Connect Core §3.1.3.7 steps 3-5: aud holds
// the client ID; with several audiences azp must name this client; azp,
// when present, is this client.
func checkAudience(c *Claims, clientID string) error {
	switch {
	case !slices.Contains(c.Audience, clientID):
		return invalidIDToken(ErrInvalidAudience, "aud does not contain the client ID")
	case c.AuthorizedParty != "" && c.AuthorizedParty != clientID:
		return invalidIDToken(ErrInvalidAudience, "azp names another client")
	case len(c.Audience) > 1 && c.AuthorizedParty == "":
		return invalidIDToken(ErrInvalidAudience, "several audiences and no azp")
	}
	return nil
}

// accessTokenHash computes at_hash (OpenID Connect Core §3.1.3.6): the
// left-most half of the hash of the access token, with the hash of the
// token's alg (SHA-512 for EdDSA with Ed25519).
func accessTokenHash(alg, accessToken string) string {
	sum, _ := hashFor(alg, []byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// sameIdentity applies OpenID Connect Core §12.2 to a refreshed ID token:
// same issuer, subject, audience and authorized party as the original, and
// a nonce, if any, equal to the original's.
func sameIdentity(prev, next *Claims) error {
	switch {
	case next.Issuer != prev.Issuer:
		return invalidIDToken(ErrInvalidIssuer, "the refreshed ID token has another issuer")
	case next.Subject != prev.Subject:
		return invalidIDToken(ErrInvalidSubject, "the refreshed ID token names another subject")
	case strings.Join(next.Audience, " ") != strings.Join(prev.Audience, " ") || next.AuthorizedParty != prev.AuthorizedParty:
		return invalidIDToken(ErrInvalidAudience, "the refreshed ID token has another audience")
	case next.Nonce != "" && next.Nonce != prev.Nonce:
		return invalidIDToken(ErrNonceMismatch, "the refreshed ID token has another nonce")
	}
	return nil
}
