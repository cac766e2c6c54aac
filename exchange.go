package loopauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TokenResponseParser reads a successful (2xx) token response of a
// provider that does not follow RFC 6749 §5.1, such as Slack's, which
// nests the user's tokens under "authed_user". body is at most 1 MiB. The
// fields it returns are checked as any others (Bearer type, printable
// tokens, bounded expires_in). When it returns an error, the flow fails
// with an error wrapping ErrInvalidTokenResponse that says the parser
// refused the answer: the parser's own error is kept for errors.Is and
// errors.As, but its text is never part of the message, since it could
// quote the body and its tokens.
type TokenResponseParser func(body []byte) (TokenResponseFields, error)

// TokenResponseFields are the members of an RFC 6749 §5.1 token response
// that the library uses. Its String, GoString, Format, LogValue and
// MarshalJSON methods print "[redacted]" in place of the tokens, for a
// value and a pointer alike. fmt cannot call them on a value it reaches
// through an unexported struct field, and prints the fields, tokens
// included: do not print a struct that holds one in an unexported field
// (see TokenSet).
type TokenResponseFields struct {
	AccessToken  string
	TokenType    string // "" is taken as Bearer
	RefreshToken string // "" when none was issued
	// ExpiresIn is the access token's lifetime in seconds, or nil when the
	// provider did not say (the expiry is then unknown). 0 means the token
	// has already expired (RFC 6749 §5.1): it is refreshed before use.
	ExpiresIn *int64
	IDToken   string
	Scope     string // space-separated; "" means the requested scopes were granted
}

// String describes the fields without the tokens.
func (f TokenResponseFields) String() string {
	expires := "unknown"
	if f.ExpiresIn != nil {
		expires = strconv.FormatInt(*f.ExpiresIn, 10) + "s"
	}
	return fmt.Sprintf("TokenResponseFields{token_type: %q, access_token: %s, refresh_token: %s, id_token: %s, expires_in: %s, scope: %q}",
		f.TokenType, redacted(f.AccessToken), redacted(f.RefreshToken), redacted(f.IDToken), expires, f.Scope)
}

// GoString is String, so %#v cannot print the tokens either.
func (f TokenResponseFields) GoString() string { return f.String() }

// Format makes every fmt verb print String.
func (f TokenResponseFields) Format(s fmt.State, _ rune) { _, _ = io.WriteString(s, f.String()) }

// LogValue describes the fields to log/slog without the tokens.
func (f TokenResponseFields) LogValue() slog.Value { return slog.StringValue(f.String()) }

// MarshalJSON writes String as a JSON string: encoding/json (and slog's
// JSONHandler, for a struct that holds the fields) would otherwise write
// the exported token fields.
func (f TokenResponseFields) MarshalJSON() ([]byte, error) { return json.Marshal(f.String()) }

// redacted is what a description shows for a secret: whether there is one.
func redacted(s string) string {
	if s == "" {
		return "none"
	}
	return "[redacted]"
}

// parserError is the error of a TokenResponseParser that refused an
// answer. It matches ErrInvalidTokenResponse and the parser's error with
// errors.Is and errors.As, but its message never includes the parser's
// text, which could quote the body and its tokens.
type parserError struct{ err error }

func (e *parserError) Error() string {
	return ErrInvalidTokenResponse.Error() + ": the custom TokenResponseParser refused the answer (its error is not shown, as it could quote the tokens; read it with errors.As)"
}

func (e *parserError) Unwrap() []error { return []error{ErrInvalidTokenResponse, e.err} }

// formBody encodes pairs in the given order (url.Values would sort them),
// keeping the wire format of the Rust crate, and skips empty values. The
// names are this file's constants, which need no escaping.
func formBody(pairs ...string) string {
	var fields []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			fields = append(fields, pairs[i]+"="+url.QueryEscape(pairs[i+1]))
		}
	}
	return strings.Join(fields, "&")
}

// formCredentials are the client_id and client_secret of a token request
// body: none with client_secret_basic, whose header carries both (RFC 6749
// §2.3: one method per request).
func (c *CLITokenClient) formCredentials() (id, secret string) {
	if c.authMethod == ClientSecretBasic {
		return "", ""
	}
	return c.clientID, c.clientSecret.reveal()
}

// postToken sends one token request and parses the answer. It never
// retries: a code is single-use (RFC 6749 §4.1.2) and replaying a refresh
// token after rotation can revoke the grant.
func (c *CLITokenClient) postToken(ctx context.Context, body string) (*TokenResponseFields, time.Time, error) {
	// Expiry is measured from before the request, so a slow answer makes
	// the token look older, never younger, than it is.
	t0 := c.now()
	resp, data, err := c.postForm(ctx, "token", c.tokenURL, body)
	if err != nil {
		return nil, t0, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, t0, parseTokenError(resp.StatusCode, data)
	}
	if c.parser != nil {
		f, err := c.parser(data)
		if err != nil {
			// The parser is the caller's: its error is kept for errors.As,
			// and its text kept out of the message (see TokenResponseParser).
			return nil, t0, &parserError{err}
		}
		return &f, t0, nil
	}
	fields, err := parseTokenResponse(data, resp.Header.Get("Content-Type"), resp.StatusCode)
	return fields, t0, err
}

// Revoke asks the provider to revoke token, an access or a refresh token
// (RFC 7009), at the endpoint set by RevocationURL or read from the
// discovery document, authenticating the client as for the token
// endpoint. A provider that does not know the token answers success too
// (RFC 7009 §2.2). Errors: ErrNoRevocationEndpoint when no endpoint is
// known, a *ProviderError for the provider's refusal (such as
// unsupported_token_type), or a transport error; never the token.
func (c *CLITokenClient) Revoke(ctx context.Context, token string) error {
	return c.revoke(ctx, token, "")
}

// revoke sends one revocation request, with a token type hint when known.
func (c *CLITokenClient) revoke(ctx context.Context, token, hint string) error {
	c, err := c.online(ctx) // FromIssuer: the client made from discovery
	if err != nil {
		return err
	}
	if c.revokeURL == nil {
		return ErrNoRevocationEndpoint
	}
	if token == "" || !isVSCHAR(token) || len(token) > maxTokenResponseBytes {
		return errorf("%w: the token to revoke is empty or contains control or non-ASCII characters", ErrInvalidTokenSet)
	}
	id, secret := c.formCredentials()
	resp, data, err := c.postForm(ctx, "revocation", c.revokeURL,
		formBody("token", token, "token_type_hint", hint, "client_id", id, "client_secret", secret))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		pe := parseTokenError(resp.StatusCode, data)
		pe.revocation = true
		return pe
	}
	return nil
}

// Logout revokes the stored refresh token (or the access token when there
// is none, RFC 7009), then clears the store: the store is cleared even
// when revocation fails, so the program forgets the tokens either way. The
// error says which of the two failed; revocation errors match as for
// Revoke. An empty store is nothing to revoke: only Clear runs.
func (c *CLITokenClient) Logout(ctx context.Context, store TokenStore) error {
	var revokeErr error
	ts, err := store.Load(ctx)
	switch {
	case errors.Is(err, ErrNoToken):
	case err != nil:
		revokeErr = errorf("loopauth: logout: reading the token store, so nothing was revoked: %w", err)
	case ts.RefreshToken() != "":
		revokeErr = c.revoke(ctx, ts.RefreshToken(), "refresh_token")
	default:
		revokeErr = c.revoke(ctx, ts.AccessToken(), "access_token")
	}
	if revokeErr != nil && ts != nil {
		revokeErr = errorf("loopauth: logout: revoking the tokens at the provider failed (they stay valid there until they expire): %w", revokeErr)
	}
	if err := store.Clear(ctx); err != nil {
		return errors.Join(revokeErr, errorf("loopauth: logout: clearing the token store failed: %w", err))
	}
	return revokeErr
}

// The RFC 6749 §5.1 and §5.2 members read from a token endpoint answer.
const (
	trAccessToken = iota
	trTokenType
	trRefreshToken
	trExpiresIn
	trIDToken
	trScope
	trError
	trErrorDescription
	trErrorURI
)

var tokenResponseMembers = []string{
	trAccessToken: "access_token", trTokenType: "token_type", trRefreshToken: "refresh_token",
	trExpiresIn: "expires_in", trIDToken: "id_token", trScope: "scope",
	trError: "error", trErrorDescription: "error_description", trErrorURI: "error_uri",
}

// parseTokenResponse reads a 2xx token response. It never quotes the body
// in an error: a body that fails to parse may still hold a token.
func parseTokenResponse(data []byte, contentType string, status int) (*TokenResponseFields, error) {
	invalid := func(format string, args ...any) error {
		return errorf("%w: "+format, append([]any{ErrInvalidTokenResponse}, args...)...)
	}
	in, err := decodeStrictMembers(data, tokenResponseMembers)
	if err != nil {
		if mt, _, _ := mime.ParseMediaType(contentType); mt != "" && mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return nil, invalid("expected JSON, got content type %q (HTTP %d)", sanitizeText(mt, 64), status)
		}
		return nil, invalid("%v", err)
	}
	// Some providers answer 200 with an error object (GitHub does).
	if errCode, _ := jsonString(in[trError]); errCode != "" {
		desc, _ := jsonString(in[trErrorDescription])
		uri, _ := jsonString(in[trErrorURI])
		return nil, newProviderError(errCode, desc, uri, status)
	}
	var f TokenResponseFields
	for _, m := range []struct {
		member int
		dst    *string
	}{
		{trAccessToken, &f.AccessToken},
		{trTokenType, &f.TokenType},
		{trRefreshToken, &f.RefreshToken},
		{trIDToken, &f.IDToken},
		{trScope, &f.Scope},
	} {
		if *m.dst, err = jsonString(in[m.member]); err != nil {
			return nil, invalid("%s is not a string", tokenResponseMembers[m.member])
		}
	}
	if f.ExpiresIn, err = parseExpiresIn(in[trExpiresIn]); err != nil {
		return nil, invalid("%v", err)
	}
	return &f, nil
}

// parseExpiresIn reads expires_in: a JSON integer, or a string of digits
// (PayPal and some Azure AD endpoints send "3600"); nil when absent or
// null. Fractions, exponents, negatives and anything above ten years are
// refused rather than guessed at or overflowed.
func parseExpiresIn(raw []byte) (*int64, error) {
	s := string(raw)
	if s == "" || s == "null" {
		return nil, nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("expires_in is not a number")
		}
	}
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return nil, errors.New("expires_in is not a non-negative integer")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxExpiresIn {
		return nil, errors.New("expires_in is out of range")
	}
	return &n, nil
}

// parseTokenError turns a non-2xx answer into a *ProviderError. The body is
// read only for the RFC 6749 §5.2 members; it is never quoted, since a
// proxy's error page or a misbehaving server could echo the request.
func parseTokenError(status int, data []byte) *ProviderError {
	in, err := decodeStrictMembers(data, tokenResponseMembers)
	if err != nil {
		return newProviderError("", "", "", status)
	}
	code, err1 := jsonString(in[trError])
	desc, err2 := jsonString(in[trErrorDescription])
	uri, err3 := jsonString(in[trErrorURI])
	if err1 != nil || err2 != nil || err3 != nil {
		return newProviderError("", "", "", status)
	}
	return newProviderError(code, desc, uri, status)
}

// tokenSetFrom checks the fields of a token response and builds a TokenSet.
// prev, when known, supplies what a refresh response may omit: the refresh
// token (RFC 6749 §6) and the granted scopes.
func (c *CLITokenClient) tokenSetFrom(f *TokenResponseFields, t0 time.Time, prev *TokenSet) (*TokenSet, error) {
	invalid := func(what string) error { return errorf("%w: %s", ErrInvalidTokenResponse, what) }
	if f.AccessToken == "" {
		return nil, invalid("access_token is missing")
	}
	// Tokens end up in Authorization headers and files: CR/LF or other
	// control bytes must never get that far (RFC 6749 Appendix A).
	if !isVSCHAR(f.AccessToken) {
		return nil, invalid("access_token contains control or non-ASCII characters")
	}
	ts := &TokenSet{accessToken: newSecret(f.AccessToken), tokenType: "Bearer", obtained: t0}
	// RFC 6749 §5.1: token_type is case-insensitive; GitHub sends
	// "bearer". An absent token_type is taken as Bearer, as the Rust crate
	// does, since some providers omit it.
	if f.TokenType != "" && !strings.EqualFold(f.TokenType, "bearer") {
		return nil, errorf("%w: %q (only Bearer tokens can be used)", ErrUnsupportedTokenType, sanitizeText(f.TokenType, 32))
	}
	switch {
	case f.RefreshToken != "":
		if !isVSCHAR(f.RefreshToken) {
			return nil, invalid("refresh_token contains control or non-ASCII characters")
		}
		ts.refreshToken = newSecret(f.RefreshToken)
	case prev != nil:
		ts.refreshToken = prev.refreshToken
	}
	if f.ExpiresIn != nil {
		// RFC 6749 §5.1: 0 means already expired, as the Rust crate reads
		// it; only an absent expires_in leaves the expiry unknown.
		n := *f.ExpiresIn
		if n < 0 || n > maxExpiresIn {
			return nil, invalid("expires_in is out of range")
		}
		ts.expiresAt = t0.Add(time.Duration(n) * time.Second)
	}
	switch {
	case f.Scope != "":
		if !isVSCHAR(f.Scope) {
			return nil, invalid("scope contains control or non-ASCII characters")
		}
		for _, s := range strings.Fields(f.Scope) {
			// RFC 6749 §6: a refreshed grant cannot be wider than the one
			// it replaces.
			if prev != nil && prev.scopes != nil && !slices.Contains(prev.scopes, Scope(s)) {
				return nil, invalid("the refreshed grant adds scope " + strconv.Quote(sanitizeText(s, 64)) + ", which the original grant did not have")
			}
			ts.scopes = append(ts.scopes, Scope(s))
		}
	case prev != nil && prev.scopes != nil:
		ts.scopes = prev.Scopes()
	default:
		ts.scopes = append([]Scope(nil), c.scopes...)
	}
	return ts, nil
}

// exchangeCode redeems an authorization code (RFC 6749 §4.1.3, RFC 7636
// §4.5). redirectURI is the exact string sent in the authorization request.
func (c *CLITokenClient) exchangeCode(ctx context.Context, code string, secrets flowSecrets, redirectURI string) (*TokenSet, error) {
	id, cs := c.formCredentials()
	body := formBody(
		"grant_type", "authorization_code",
		"code", code,
		"redirect_uri", redirectURI,
		"client_id", id,
		"code_verifier", secrets.verifier,
		"client_secret", cs,
	)
	fields, t0, err := c.postToken(ctx, body)
	if err != nil {
		return nil, err
	}
	ts, err := c.tokenSetFrom(fields, t0, nil)
	if err != nil || !c.openID {
		// Outside OpenID mode an id_token is never decoded, let alone
		// returned unverified.
		return ts, err
	}
	if fields.IDToken == "" {
		return nil, ErrNoIDToken
	}
	secrets.progress.emit(ProgressVerifying, nil)
	if ts.idToken, err = c.verifyIDToken(ctx, fields.IDToken, ts.AccessToken(), secrets.nonce, nil); err != nil {
		return nil, err
	}
	return ts, nil
}

// refresh runs the refresh grant (RFC 6749 §6). It sends no scope unless
// RefreshScopes asks for some: an omitted scope means "as originally
// granted", while resending the configured scopes fails on providers that
// narrowed the grant.
func (c *CLITokenClient) refresh(ctx context.Context, refreshToken string, prev *TokenSet) (*TokenSet, error) {
	if refreshToken == "" {
		return nil, ErrNoRefreshToken
	}
	c, err := c.online(ctx) // FromIssuer: the client made from discovery
	if err != nil {
		return nil, err
	}
	if !isVSCHAR(refreshToken) || len(refreshToken) > maxTokenResponseBytes {
		return nil, errorf("%w: the refresh token contains control or non-ASCII characters", ErrInvalidTokenSet)
	}
	id, cs := c.formCredentials()
	body := formBody(
		"grant_type", "refresh_token",
		"refresh_token", refreshToken,
		"client_id", id,
		"client_secret", cs,
		"scope", joinScopes(c.refreshScopes),
	)
	fields, t0, err := c.postToken(ctx, body)
	if err != nil {
		return nil, err
	}
	if prev == nil {
		// Only the refresh token is known: the configured scopes stand in
		// for the granted ones when the answer omits them, but cannot bound
		// them (providers such as Google grant URLs for "email").
		prev = &TokenSet{refreshToken: newSecret(refreshToken)}
	}
	// The provider has answered, and may already have revoked the old
	// refresh token (rotation): checking the new ID token, which may fetch
	// the key set, must not fail because the caller stopped waiting, or the
	// rotated refresh token would be lost with the grant.
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	ts, err := c.refreshedSet(vctx, fields, t0, prev)
	if err != nil {
		return nil, err
	}
	c.changed(ts)
	return ts, nil
}

// refreshedSet builds the token set of a refresh answer.
func (c *CLITokenClient) refreshedSet(ctx context.Context, fields *TokenResponseFields, t0 time.Time, prev *TokenSet) (*TokenSet, error) {
	ts, err := c.tokenSetFrom(fields, t0, prev)
	if err != nil || !c.openID {
		return ts, err
	}
	if fields.IDToken == "" {
		ts.idToken = prev.idToken // RFC 6749 §6 / OIDC §12.1: an ID token is optional here
	} else if ts.idToken, err = c.verifyIDToken(ctx, fields.IDToken, ts.AccessToken(), "", prev.idToken); err != nil {
		// A refreshed ID token is verified like the first one, without a
		// nonce, and must name the same issuer, subject and audience.
		return nil, err
	}
	return ts, nil
}
