package loopauth

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scope is an OAuth 2.0 scope value (RFC 6749 §3.3). Any string made of
// the characters RFC 6749 allows is a valid custom scope.
type Scope string

// Well-known scopes. Requests send scopes in this order, then custom scopes
// in byte order, so the same configuration always yields the same URL.
const (
	ScopeOpenID        Scope = "openid"
	ScopeEmail         Scope = "email"
	ScopeProfile       Scope = "profile"
	ScopeOfflineAccess Scope = "offline_access"
)

// wellKnownScopes are the well-known scopes in the order requests send
// them.
var wellKnownScopes = [...]Scope{ScopeOpenID, ScopeEmail, ScopeProfile, ScopeOfflineAccess}

// scopeRank orders the well-known scopes before custom ones.
func scopeRank(s Scope) int {
	if i := slices.Index(wellKnownScopes[:], s); i >= 0 {
		return i
	}
	return len(wellKnownScopes)
}

func compareScopes(a, b Scope) int {
	return cmp.Or(scopeRank(a)-scopeRank(b), strings.Compare(string(a), string(b)))
}

// joinScopes renders scopes as the space-separated "scope" parameter.
func joinScopes(scopes []Scope) string {
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = string(s)
	}
	return strings.Join(parts, " ")
}

// TokenSet is what a successful flow or refresh returns. Its accessors are
// the only way to read the tokens: String, GoString, Format and LogValue
// print "[redacted]" in their place, and the tokens are kept behind
// pointers, so fmt prints only addresses where it reaches a TokenSet
// without its methods (in an unexported field of your struct). Logging one
// by mistake with fmt or log/slog leaks nothing.
//
// One way of printing does reach the tokens: MarshalJSON writes them, on
// purpose, for storage. encoding/json calls it for a *TokenSet inside any
// value it encodes, and so does slog's JSONHandler when it encodes a
// struct of yours that holds one in an exported field. A TokenSet or
// *TokenSet given to slog itself is redacted through LogValue.
//
// A TokenSet is immutable and safe for concurrent use.
type TokenSet struct {
	accessToken  secret
	refreshToken secret
	tokenType    string
	expiresAt    time.Time
	idToken      *IDToken
	scopes       []Scope
	obtained     time.Time // when the provider issued it, if this process saw it; not stored
}

// AccessToken returns the access token, to send as a Bearer credential.
func (t *TokenSet) AccessToken() string { return t.accessToken.reveal() }

// RefreshToken returns the refresh token, or "" when none was issued.
func (t *TokenSet) RefreshToken() string { return t.refreshToken.reveal() }

// TokenType returns the token type, normalised to "Bearer".
func (t *TokenSet) TokenType() string { return t.tokenType }

// ExpiresAt returns when the access token expires, or the zero time when
// the provider did not say.
func (t *TokenSet) ExpiresAt() time.Time { return t.expiresAt }

// IDTokenRaw returns the compact ID token, or "" when there is none.
func (t *TokenSet) IDTokenRaw() string {
	if t.idToken == nil {
		return ""
	}
	return t.idToken.raw.reveal()
}

// IDToken returns the decoded ID token, or nil when there is none.
func (t *TokenSet) IDToken() *IDToken { return t.idToken }

// Scopes returns the granted scopes: the provider's "scope" answer, or the
// requested scopes when it did not send one (RFC 6749 §5.1).
func (t *TokenSet) Scopes() []Scope { return append([]Scope(nil), t.scopes...) }

// IsExpired reports whether the access token has an expiry that has passed.
// A token without a known expiry is never reported expired.
func (t *TokenSet) IsExpired() bool { return t.isExpiredAt(time.Now()) }

// ExpiresWithin reports whether the access token expires within d (or has
// expired). A token without a known expiry never does.
func (t *TokenSet) ExpiresWithin(d time.Duration) bool { return t.expiresWithinAt(time.Now(), d) }

// isExpiredAt is IsExpired at now: a token is expired from the instant of
// its expiry on.
func (t *TokenSet) isExpiredAt(now time.Time) bool {
	return !t.expiresAt.IsZero() && !now.Before(t.expiresAt)
}

// expiresWithinAt is ExpiresWithin at now: exactly d left counts as within
// d.
func (t *TokenSet) expiresWithinAt(now time.Time, d time.Duration) bool {
	return !t.expiresAt.IsZero() && t.expiresAt.Sub(now) <= d
}

// String describes the token set without its secrets.
func (t TokenSet) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "TokenSet{type: %s, access_token: [redacted]", t.tokenType)
	if t.refreshToken.p != nil {
		b.WriteString(", refresh_token: [redacted]")
	}
	if t.idToken != nil {
		b.WriteString(", id_token: [redacted]")
	}
	if t.expiresAt.IsZero() {
		b.WriteString(", expires: unknown")
	} else {
		fmt.Fprintf(&b, ", expires: %s", utcRFC3339(t.expiresAt))
	}
	fmt.Fprintf(&b, ", scopes: %q}", joinScopes(t.scopes))
	return b.String()
}

// GoString is String, so %#v cannot print the secrets either.
func (t TokenSet) GoString() string { return t.String() }

// Format makes every fmt verb (%v, %+v, %#v, %s, %q, %x...) print String.
func (t TokenSet) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// LogValue describes the token set to log/slog without its secrets. It is
// on the pointer so that a nil *TokenSet logs as "nil"; a TokenSet value
// is logged through Format.
func (t *TokenSet) LogValue() slog.Value {
	if t == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(
		slog.String("token_type", t.tokenType),
		slog.Time("expires_at", t.expiresAt),
		slog.Bool("has_refresh_token", t.refreshToken.p != nil),
		slog.Bool("has_id_token", t.idToken != nil),
		slog.String("scopes", joinScopes(t.scopes)),
	)
}

// secret holds a secret string behind a pointer. fmt prints a struct whose
// methods it cannot call (one held in an unexported field) by reflection,
// field by field, and prints a pointer it finds there as an address: a
// secret kept this way never reaches %v output, whatever holds it. It has
// no String method on purpose.
type secret struct{ p *string }

// newSecret keeps s; "" is kept as no secret.
func newSecret(s string) secret {
	if s == "" {
		return secret{}
	}
	return secret{&s}
}

// reveal returns the secret, or "".
func (s secret) reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// tokenSetJSON is the storage format, shared with the Rust crate:
// expires_at is in Unix seconds, oidc holds the raw ID token and its claims.
type tokenSetJSON struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken *string   `json:"refresh_token"`
	ExpiresAt    *int64    `json:"expires_at"`
	TokenType    string    `json:"token_type"`
	OIDC         *oidcJSON `json:"oidc"`
	Scopes       []Scope   `json:"scopes"`
}

type oidcJSON struct {
	Raw    string          `json:"raw"`
	Claims json.RawMessage `json:"claims"`
}

// MarshalJSON writes the token set, secrets included, in the storage format
// of the Rust crate. Store the result only where a password would be safe,
// and never encode a value holding a TokenSet into a log (see TokenSet).
func (t *TokenSet) MarshalJSON() ([]byte, error) {
	out := tokenSetJSON{
		AccessToken:  t.AccessToken(),
		RefreshToken: t.refreshToken.p, // null when there is none
		TokenType:    t.tokenType,
		Scopes:       t.scopes,
	}
	if out.Scopes == nil {
		out.Scopes = []Scope{}
	}
	if !t.expiresAt.IsZero() {
		sec := t.expiresAt.Unix()
		out.ExpiresAt = &sec
	}
	if t.idToken != nil {
		out.OIDC = &oidcJSON{Raw: t.idToken.raw.reveal(), Claims: t.idToken.claims.raw}
	}
	return json.Marshal(out)
}

// ErrInvalidTokenSet means stored token-set JSON could not be used.
var ErrInvalidTokenSet = errors.New("loopauth: invalid stored token set")

// UnmarshalJSON reads the storage format strictly: one object, no duplicate
// or case-variant members, access_token and token_type required, tokens
// made of printable ASCII, expires_at an integer. The ID token's claims are decoded again from its
// raw form; stored claims are ignored. The ID token's signature is not
// checked here: a token set read from storage is only as trustworthy as the
// storage.
func (t *TokenSet) UnmarshalJSON(data []byte) error {
	m, err := decodeStrictMembers(data, tokenSetMembers)
	if err != nil {
		return errorf("%w: %v", ErrInvalidTokenSet, err)
	}
	bad := func(what string) error { return errorf("%w: %s", ErrInvalidTokenSet, what) }
	var ts TokenSet
	access, err1 := jsonString(m[tsAccessToken])
	typ, err2 := jsonString(m[tsTokenType])
	refresh, err3 := jsonString(m[tsRefreshToken])
	switch {
	case err1 != nil || !isVSCHAR(access):
		return bad("access_token is missing or not printable ASCII")
	case err2 != nil || typ == "":
		return bad("token_type is missing")
	case !strings.EqualFold(typ, "bearer"):
		return bad("token_type is not Bearer")
	case err3 != nil || refresh != "" && !isVSCHAR(refresh):
		return bad("refresh_token is not printable ASCII")
	}
	ts.accessToken, ts.tokenType, ts.refreshToken = newSecret(access), "Bearer", newSecret(refresh)
	if v := m[tsExpiresAt]; v != nil && string(v) != "null" {
		sec, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || sec < 0 || sec > maxNumericDate {
			return bad("expires_at is not a Unix time in seconds")
		}
		ts.expiresAt = time.Unix(sec, 0)
	}
	scopes, err := jsonStrings(m[tsScopes], maxStoredScopes)
	if err != nil {
		return bad("scopes is not an array of scope strings")
	}
	for _, sc := range scopes {
		if !isNQCHAR(sc) {
			return bad("a scope contains characters RFC 6749 does not allow")
		}
		ts.scopes = append(ts.scopes, Scope(sc))
	}
	if v := m[tsOIDC]; v != nil && string(v) != "null" {
		o, err := decodeStrictMembers(v, oidcMembers)
		if err != nil {
			return bad("oidc is not an object with raw and claims")
		}
		raw, err := jsonString(o[0])
		if err != nil || raw == "" {
			return bad("oidc.raw is missing")
		}
		if ts.idToken, err = parseIDTokenUnverified(raw); err != nil {
			return errorf("%w: oidc.raw: %v", ErrInvalidTokenSet, err)
		}
	}
	*t = ts
	return nil
}

// The members of the stored format.
const (
	tsAccessToken = iota
	tsRefreshToken
	tsExpiresAt
	tsTokenType
	tsOIDC
	tsScopes
)

var (
	tokenSetMembers = []string{
		tsAccessToken: "access_token", tsRefreshToken: "refresh_token", tsExpiresAt: "expires_at",
		tsTokenType: "token_type", tsOIDC: "oidc", tsScopes: "scopes",
	}
	oidcMembers = []string{"raw"} // stored claims are ignored: raw is decoded again
)

// maxStoredScopes caps the scopes of a stored token set.
const maxStoredScopes = 256

// RefreshOutcome is the result of RefreshIfExpiring.
type RefreshOutcome struct {
	refreshed bool
	tokens    *TokenSet
}

// Refreshed reports whether a refresh happened.
func (o RefreshOutcome) Refreshed() bool { return o.refreshed }

// TokenSet returns the new token set after a refresh, or the token set that
// was passed in when none was needed.
func (o RefreshOutcome) TokenSet() *TokenSet { return o.tokens }
