package loopauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// maxNumericDate is the last second of year 9999: later dates are refused
// rather than overflowing time arithmetic.
const maxNumericDate = 253402300799

// maxCompactJWTBytes caps a compact JWT before any parsing. ID tokens are
// 1–4 KiB, with large group claims about 16 KiB.
const maxCompactJWTBytes = 64 << 10

// errMalformedJWT is the cause of every compact-JWT syntax failure.
var errMalformedJWT = errors.New("malformed JWT")

// IDToken is an OpenID Connect ID token: its compact form and its claims.
type IDToken struct {
	raw    string
	claims *Claims
}

// Raw returns the compact ID token as the provider issued it.
func (t *IDToken) Raw() string { return t.raw }

// Claims returns the decoded claims.
func (t *IDToken) Claims() *Claims { return t.claims }

// String describes the ID token without the token itself.
func (t *IDToken) String() string {
	return fmt.Sprintf("IDToken{iss: %q, sub: %q, token: [redacted]}", t.claims.Issuer, t.claims.Subject)
}

// GoString is String, so %#v does not print the token.
func (t *IDToken) GoString() string { return t.String() }

// Claims are the standard claims of an ID token (OpenID Connect Core §2,
// §5.1). Unmarshal reads any other claim.
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
	Picture         string

	raw json.RawMessage
}

// Unmarshal decodes the claims payload into v, for claims this type does
// not have fields for.
func (c *Claims) Unmarshal(v any) error {
	if err := json.Unmarshal(c.raw, v); err != nil {
		return fmt.Errorf("loopauth: decoding ID token claims: %w", err)
	}
	return nil
}

type claimsJSON struct {
	Sub           string          `json:"sub"`
	Iss           string          `json:"iss"`
	Aud           json.RawMessage `json:"aud"`
	Exp           json.RawMessage `json:"exp"`
	Iat           json.RawMessage `json:"iat"`
	Nbf           json.RawMessage `json:"nbf"`
	Nonce         string          `json:"nonce"`
	Azp           string          `json:"azp"`
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
	Name          string          `json:"name"`
	Picture       string          `json:"picture"`
}

// parseIDTokenUnverified splits a compact JWT and decodes its claims
// without checking the signature. It is used for token sets read back from
// storage, whose ID token was verified when it was issued.
func parseIDTokenUnverified(raw string) (*IDToken, error) {
	_, payload, _, err := splitCompact(raw)
	if err != nil {
		return nil, err
	}
	claims, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	return &IDToken{raw: raw, claims: claims}, nil
}

// splitCompact checks the JWS compact serialization and returns its three
// decoded parts. The length and the dot count are checked before any split
// or decode, and every segment must be non-empty unpadded base64url of the
// exact alphabet: Go's decoder would otherwise skip CR and LF.
func splitCompact(raw string) (header, payload, sig []byte, err error) {
	if len(raw) > maxCompactJWTBytes {
		return nil, nil, nil, fmt.Errorf("%w: longer than %d bytes", errMalformedJWT, maxCompactJWTBytes)
	}
	if strings.Count(raw, ".") != 2 {
		return nil, nil, nil, fmt.Errorf("%w: not three dot-separated segments", errMalformedJWT)
	}
	parts := strings.SplitN(raw, ".", 3)
	var out [3][]byte
	for i, p := range parts {
		if p == "" || !isBase64URL(p) {
			return nil, nil, nil, fmt.Errorf("%w: segment %d is not unpadded base64url", errMalformedJWT, i+1)
		}
		out[i], err = base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: segment %d is not canonical base64url", errMalformedJWT, i+1)
		}
	}
	return out[0], out[1], out[2], nil
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

// parseClaims decodes an ID-token payload strictly, tolerating what real
// providers send: aud as a string or an array, numeric dates with a
// fraction, email_verified as "true"/"false" (AWS Cognito, older Azure AD).
func parseClaims(payload []byte) (*Claims, error) {
	var in claimsJSON
	if err := decodeStrictJSON(payload, &in); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", errMalformedJWT, err)
	}
	c := &Claims{
		Subject:         in.Sub,
		Issuer:          in.Iss,
		Nonce:           in.Nonce,
		AuthorizedParty: in.Azp,
		Email:           in.Email,
		Name:            in.Name,
		Picture:         in.Picture,
		raw:             append(json.RawMessage(nil), payload...),
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("%w: sub claim is missing", errMalformedJWT)
	}
	if c.Issuer == "" {
		return nil, fmt.Errorf("%w: iss claim is missing", errMalformedJWT)
	}
	var err error
	if c.Audience, err = parseAudience(in.Aud); err != nil {
		return nil, err
	}
	for _, d := range []struct {
		name     string
		raw      json.RawMessage
		dst      *time.Time
		required bool
	}{
		{"exp", in.Exp, &c.Expiry, true},
		{"iat", in.Iat, &c.IssuedAt, true},
		{"nbf", in.Nbf, &c.NotBefore, false},
	} {
		if *d.dst, err = parseNumericDate(d.name, d.raw, d.required); err != nil {
			return nil, err
		}
	}
	switch v := string(bytes.TrimSpace(in.EmailVerified)); v {
	case "", "null", "false", `"false"`:
	case "true", `"true"`:
		c.EmailVerified = true
	default:
		return nil, fmt.Errorf("%w: email_verified is not a boolean", errMalformedJWT)
	}
	return c, nil
}

func parseAudience(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("%w: aud is neither a string nor an array of strings", errMalformedJWT)
	}
	return many, nil
}

// parseNumericDate reads a JSON number (never a string) of seconds since
// the epoch, in 0..year 9999.
func parseNumericDate(name string, raw json.RawMessage, required bool) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			return time.Time{}, fmt.Errorf("%w: %s claim is missing", errMalformedJWT, name)
		}
		return time.Time{}, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil || raw[0] == '"' {
		return time.Time{}, fmt.Errorf("%w: %s is not a number", errMalformedJWT, name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("%w: %s is out of range", errMalformedJWT, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// supportedAlgs are the JWS algorithms this package verifies, and the only
// ones: never "none", never HS* (a public client has no MAC key, and a
// public key must never become one). Matching is exact and case-sensitive.
var supportedAlgs = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// isSupportedAlg reports whether alg is one of supportedAlgs.
func isSupportedAlg(alg string) bool {
	for _, a := range supportedAlgs {
		if a == alg {
			return true
		}
	}
	return false
}
