package loopauth

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors name conditions; test for them with errors.Is. Errors that
// carry data (*ProviderError) are matched with errors.As. No error produced
// by this package contains a token, an authorization code, the PKCE
// verifier, the state, the nonce or the client secret.
var (
	// ErrInvalidConfig is wrapped by every problem Build reports.
	ErrInvalidConfig = errors.New("loopauth: invalid configuration")

	// ErrTimeout means the browser did not come back before the flow's
	// Timeout. The error also matches context.DeadlineExceeded.
	ErrTimeout = errors.New("loopauth: timed out waiting for the browser to return to the loopback callback")

	// ErrStateMismatch means callback requests arrived whose state did not
	// match the one sent: a stale tab, or another program or web page
	// probing the port. Such requests never end a flow, however many there
	// are; when the flow times out or is cancelled, this error is joined to
	// its final error, with the number of refused requests, so that the
	// user learns they happened.
	ErrStateMismatch = errors.New("loopauth: callback state mismatch (possible cross-site request forgery)")

	// ErrCallbackMalformed means the callback carried the right state but
	// was otherwise unusable (no code, duplicate parameters, code and error
	// together, oversized or non-ASCII values). The flow ends without a
	// token request.
	ErrCallbackMalformed = errors.New("loopauth: malformed authorization callback")

	// ErrPortInUse means the port set with RequirePort could not be bound.
	ErrPortInUse = errors.New("loopauth: required callback port is not available")

	// ErrNoToken means a TokenStore holds no token set: none was saved, or
	// Clear removed it. Load returns it unwrapped.
	ErrNoToken = errors.New("loopauth: no token set stored")

	// ErrNoRefreshToken means a refresh was needed but no refresh token is
	// known. Run the authorization flow again.
	ErrNoRefreshToken = errors.New("loopauth: no refresh token available")

	// ErrLoginRequired means a browser sign-in was needed, but the client
	// was built with NonInteractive. The message says why (no stored set,
	// the refresh refused...); the user runs the program's login command.
	ErrLoginRequired = errors.New("loopauth: sign-in required")

	// ErrNoRevocationEndpoint means Revoke or Logout had no revocation
	// endpoint: set RevocationURL, or use a discovery document that lists
	// revocation_endpoint.
	ErrNoRevocationEndpoint = errors.New("loopauth: no token revocation endpoint is known: set RevocationURL")

	// ErrResponseTooLarge means a response body exceeded its size limit.
	ErrResponseTooLarge = errors.New("loopauth: response body too large")

	// ErrInvalidTokenResponse means the token endpoint answered 2xx with a
	// body that is not a usable RFC 6749 §5.1 token response.
	ErrInvalidTokenResponse = errors.New("loopauth: invalid token response")

	// ErrUnsupportedTokenType means the token endpoint issued a token type
	// other than Bearer; RFC 6749 §7.1 forbids using a token whose type the
	// client does not understand.
	ErrUnsupportedTokenType = errors.New("loopauth: unsupported token type")

	// ErrUnsafeURL means a URL was refused before it reached the system
	// browser: only https, or http to a loopback address, is opened.
	ErrUnsafeURL = errors.New("loopauth: refusing to open URL")
)

// OpenID Connect: discovery, keys, signatures and ID tokens. Every ID-token
// failure matches ErrInvalidIDToken as well as its own sentinel, and a
// signature failure is reported instead of, never together with, a claim
// failure.
var (
	// ErrInvalidDiscovery means an OpenID provider configuration document
	// could not be fetched or used.
	ErrInvalidDiscovery = errors.New("loopauth: invalid OpenID provider configuration")

	// ErrInvalidJWKS means a JSON Web Key Set could not be fetched or
	// parsed, or it contains private key material.
	ErrInvalidJWKS = errors.New("loopauth: invalid JSON Web Key Set")

	// ErrMalformedJWT means a token is not a well-formed compact JWS with
	// a JSON header and payload, or uses a feature that is not supported
	// (JWE, JSON serialization, crit, b64, zip, nested tokens).
	ErrMalformedJWT = errors.New("loopauth: malformed JWT")

	// ErrAlgNotAllowed means the token's alg is not one this package
	// verifies (never "none" or HS*), or not one the provider advertises.
	ErrAlgNotAllowed = errors.New("loopauth: JWT signing algorithm not allowed")

	// ErrNoUsableKey means no key of the set can verify the token: unknown
	// kid, no key for the algorithm, or several keys with the token's kid.
	ErrNoUsableKey = errors.New("loopauth: no usable key for the JWT")

	// ErrInvalidSignature means the signature does not verify.
	ErrInvalidSignature = errors.New("loopauth: JWT signature is invalid")

	// ErrInvalidIDToken is matched by every ID-token failure.
	ErrInvalidIDToken = errors.New("loopauth: invalid ID token")

	// ErrNoIDToken means the openid scope was requested but the token
	// response holds no ID token.
	ErrNoIDToken = errors.New("loopauth: the provider returned no ID token for the openid scope")

	// ErrIDTokenExpired means the ID token's exp (plus leeway) has passed.
	ErrIDTokenExpired = errors.New("loopauth: ID token has expired")

	// ErrIDTokenNotYetValid means the ID token's nbf or iat lies in the
	// future beyond the leeway: check the system clock.
	ErrIDTokenNotYetValid = errors.New("loopauth: ID token is not yet valid")

	// ErrInvalidIssuer means an issuer did not match the expected one
	// exactly: the ID token's iss, the callback's RFC 9207 iss parameter,
	// or a discovery document's issuer.
	ErrInvalidIssuer = errors.New("loopauth: issuer mismatch")

	// ErrInvalidAudience means the ID token's aud does not contain the
	// client ID, or azp names another client.
	ErrInvalidAudience = errors.New("loopauth: ID token audience does not match the client ID")

	// ErrNonceMismatch means the ID token's nonce is missing or differs
	// from the one the flow sent.
	ErrNonceMismatch = errors.New("loopauth: ID token nonce mismatch")

	// ErrInvalidSubject means sub is missing or not 1-255 ASCII
	// characters, or a refreshed ID token names another subject.
	ErrInvalidSubject = errors.New("loopauth: ID token subject is invalid")

	// ErrAccessTokenHashMismatch means at_hash does not match the access
	// token issued with the ID token.
	ErrAccessTokenHashMismatch = errors.New("loopauth: ID token at_hash does not match the access token")
)

// ProviderError is an OAuth 2.0 error answer from the provider: an error
// redirect to the callback (RFC 6749 §4.1.2.1) or a failed token request
// (§5.2). Its text fields come from the network: they are sanitized
// (control and bidirectional characters replaced, lengths capped) but remain
// untrusted, and ErrorURI is never a link to follow automatically.
type ProviderError struct {
	// ErrorCode is the RFC 6749 "error" value, such as "access_denied" or
	// "invalid_grant". It may be empty when a token endpoint failed without
	// a JSON error body.
	ErrorCode string
	// ErrorDescription is the optional human-readable "error_description".
	ErrorDescription string
	// ErrorURI is the optional "error_uri".
	ErrorURI string
	// StatusCode is the HTTP status of a token or revocation endpoint
	// answer, or 0 when the error came from the authorization callback.
	StatusCode int

	revocation bool // the revocation endpoint answered, not the token one
}

// Error describes the failure and what to do about it.
func (e *ProviderError) Error() string {
	msg := "loopauth: the provider refused the authorization request"
	if e.StatusCode != 0 {
		msg = "loopauth: token endpoint answered HTTP " + strconv.Itoa(e.StatusCode)
		if e.revocation {
			msg = "loopauth: revocation endpoint answered HTTP " + strconv.Itoa(e.StatusCode)
		}
	}
	for _, part := range [...]string{e.ErrorCode, e.ErrorDescription} {
		if part != "" {
			msg += ": " + part
		}
	}
	if hint := e.hint(); hint != "" {
		msg += " (" + hint + ")"
	}
	return msg
}

// hint says what to do for the common error codes.
func (e *ProviderError) hint() string {
	switch e.ErrorCode {
	case "access_denied":
		return "the user or the provider denied access; sign in again to retry"
	case "invalid_client", "unauthorized_client":
		return "check the client ID and client secret registered with the provider"
	case "invalid_grant":
		return "the code or refresh token is invalid or expired; sign in again"
	case "invalid_scope":
		return "check the requested scopes"
	}
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		return "redirects from the token endpoint are not followed; check the token URL"
	}
	return ""
}

// newProviderError builds a ProviderError from untrusted values, applying
// the RFC 6749 §4.1.2.1 character rules and the package's length limits.
func newProviderError(code, description, uri string, status int) *ProviderError {
	e := &ProviderError{StatusCode: status}
	if len(code) <= maxErrorCodeBytes && isNQSCHAR(code) {
		e.ErrorCode = code
	} else if code != "" {
		e.ErrorCode = "invalid_error_code"
	}
	e.ErrorDescription = sanitizeText(description, maxErrorDescription)
	if len(uri) <= maxErrorURIBytes && isVSCHAR(uri) && strings.HasPrefix(uri, "https://") {
		e.ErrorURI = uri
	}
	return e
}

// isNQSCHAR reports whether s is made of RFC 6749 NQSCHAR characters
// (%x20-21 / %x23-5B / %x5D-7E), the syntax of "error" values.
func isNQSCHAR(s string) bool {
	return isVSCHAR(s) && !strings.ContainsAny(s, "\"\\")
}

// errorf is fmt.Errorf that names the package once: the errors it wraps
// start with "loopauth: " too, and "loopauth: invalid ID token: loopauth:
// ID token has expired" helps nobody. Wrapped errors still match with
// errors.Is and errors.As.
func errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, errPrefix); ok && strings.Contains(rest, errPrefix) {
		msg = errPrefix + strings.ReplaceAll(rest, errPrefix, "")
	}
	return &prefixedError{msg: msg, err: err}
}

const errPrefix = "loopauth: "

type prefixedError struct {
	msg string
	err error
}

func (e *prefixedError) Error() string { return e.msg }
func (e *prefixedError) Unwrap() error { return e.err }

// errorAs is errors.As for a concrete error type T: the first error in
// err's tree, depth first, that is a T or whose As method sets one. It
// uses a type assertion where errors.As uses reflection, which costs
// every program that links this package about 20 KiB
// (internal/reflectlite, see make size). errors.AsType (Go 1.26) is the
// same, but this package still builds with Go 1.23.
func errorAs[T error](err error) (found T, ok bool) {
	if found, ok = err.(T); ok {
		return found, true
	}
	if x, isAs := err.(interface{ As(any) bool }); isAs && x.As(&found) {
		return found, true
	}
	switch x := err.(type) {
	case interface{ Unwrap() error }:
		return errorAs[T](x.Unwrap())
	case interface{ Unwrap() []error }:
		for _, err := range x.Unwrap() {
			if found, ok = errorAs[T](err); ok {
				return found, true
			}
		}
	}
	return found, false
}
