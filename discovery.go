package loopauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
)

// Limits on a discovery exchange. Real documents are 1-20 KiB (Keycloak's
// is among the largest) and list a few dozen values at most.
const (
	maxDiscoveryBytes = 512 << 10 // document body, after gzip
	maxDiscoveryList  = 256       // entries in each *_supported array
	maxDiscoveryQuote = 256       // bytes of provider text quoted in an error
)

// wellKnownOpenIDPath is appended to the issuer (OpenID Connect Discovery
// 1.0 §4.1).
const wellKnownOpenIDPath = "/.well-known/openid-configuration"

// OpenIDConfiguration is the part of an OpenID Provider Configuration
// document (OpenID Connect Discovery 1.0 §3) that this package uses. It is
// returned only after every check has passed. Its values come from the
// network: the URLs are checked like AuthURL (https, or http to a loopback
// host), while the lists are provider text, to sanitize before display.
type OpenIDConfiguration struct {
	// Issuer is the provider's issuer identifier as the document states
	// it, which ID tokens' iss must equal. It is the issuer URL given to
	// FetchOpenIDConfiguration, except that a bare origin may differ from
	// it by a trailing "/".
	Issuer string
	// AuthorizationEndpoint is where the browser is sent to sign in.
	AuthorizationEndpoint string
	// TokenEndpoint is where codes and refresh tokens are redeemed.
	TokenEndpoint string
	// RevocationEndpoint is where tokens are revoked (RFC 7009), or ""
	// when the provider does not say (it is optional).
	RevocationEndpoint string
	// JWKSURI is where the provider publishes its signing keys.
	JWKSURI string
	// ScopesSupported lists the scopes the provider advertises; nil when
	// the document omits it.
	ScopesSupported []string
	// ResponseTypesSupported lists the response_type values advertised;
	// nil when omitted.
	ResponseTypesSupported []string
	// SubjectTypesSupported lists the subject identifier types ("public",
	// "pairwise"); nil when omitted.
	SubjectTypesSupported []string
	// CodeChallengeMethodsSupported lists the PKCE methods advertised
	// (RFC 8414 §2); nil when omitted. This package always sends S256.
	CodeChallengeMethodsSupported []string
	// TokenEndpointAuthMethodsSupported lists the client authentication
	// methods of the token endpoint; nil when omitted.
	TokenEndpointAuthMethodsSupported []string
	// IDTokenSigningAlgValuesSupported lists the ID-token algorithms as
	// advertised; nil when omitted. It may name algorithms this package
	// never verifies ("none", HS256): the advertised list only narrows the
	// package's own allowlist, it never widens it.
	IDTokenSigningAlgValuesSupported []string
	// AuthorizationResponseISSParameterSupported reports whether the
	// provider adds iss to authorization responses (RFC 9207 §3).
	AuthorizationResponseISSParameterSupported bool
}

// FetchOpenIDConfiguration downloads and checks the configuration of the
// OpenID provider whose issuer identifier is issuerURL. The document is
// read from issuerURL, with one trailing "/" removed, followed by
// "/.well-known/openid-configuration" (OpenID Connect Discovery 1.0 §4.1).
//
// issuerURL must be an absolute https URL (http only for a loopback host)
// without user information, query or fragment. The request follows at most
// three redirects, from https to https only (http to http between loopback
// hosts); the answer must be 200 with a JSON content type and at most
// 512 KiB. The default HTTP client has a 30 s timeout and honours proxy
// settings from the environment.
//
// The document's issuer must equal issuerURL byte for byte (Discovery §4.3,
// §5): no case folding, no default-port or percent-encoding normalisation,
// and a redirect does not change the expected value. There is one
// tolerance: when the issuer is a bare origin (empty path or "/"),
// "https://op.example" and "https://op.example/" are the same issuer, as in
// the Rust crate, since Google's issuer has no slash and users often type
// one. An issuer with a path is never normalised: ".../realms/a/" does not
// match ".../realms/a". A multi-tenant Microsoft document, whose issuer is
// the template ".../{tenantid}/v2.0", is accepted from ".../common/v2.0"
// or ".../organizations/v2.0": its Issuer is then the template, which the
// builder accepts only with IssuerTemplate.
//
// Every failure wraps ErrInvalidDiscovery. An issuer mismatch also wraps
// ErrInvalidIssuer, an oversized document ErrResponseTooLarge, and a
// cancelled or expired ctx the context's error.
func FetchOpenIDConfiguration(ctx context.Context, issuerURL string) (*OpenIDConfiguration, error) {
	return fetchOpenIDConfiguration(ctx, nil, nil, issuerURL)
}

// FetchOpenIDConfigurationWithClient is FetchOpenIDConfiguration through
// client (a proxy, a private CA); nil means the default client. The client
// is copied, never modified: the copy follows redirects only as described
// above, and the document is capped at 256 KiB all the same.
func FetchOpenIDConfigurationWithClient(ctx context.Context, client *http.Client, issuerURL string) (*OpenIDConfiguration, error) {
	return fetchOpenIDConfiguration(ctx, client, nil, issuerURL)
}

func fetchOpenIDConfiguration(ctx context.Context, client *http.Client, logger *slog.Logger, issuerURL string) (*OpenIDConfiguration, error) {
	if err := checkIssuer(issuerURL); err != nil {
		// A bad issuer is the caller's input, not the network's: it also
		// matches ErrInvalidConfig.
		return nil, errorf("%w: %w: issuer URL: %s: pass the issuer exactly as the provider documents it, such as https://accounts.google.com",
			ErrInvalidDiscovery, ErrInvalidConfig, sanitizeText(err.Error(), maxDiscoveryQuote))
	}
	// The configured string, not a parsed and re-serialised URL, is both
	// the prefix of the well-known URL and the value compared below.
	where := strings.TrimSuffix(issuerURL, "/") + wellKnownOpenIDPath
	data, _, err := getJSON(ctx, metadataHTTPClientFrom(client), logger, where, maxDiscoveryBytes)
	if err != nil {
		return nil, errorf("%w: fetching the provider configuration: %w: check the issuer URL", ErrInvalidDiscovery, err)
	}
	return parseOpenIDConfiguration(data, issuerURL)
}

// checkIssuer checks an issuer identifier: an endpoint URL (parseEndpoint)
// that also has no query (Discovery §3, RFC 8414 §2), since the well-known
// path is appended to it and it is compared as a string.
func checkIssuer(raw string) error {
	if _, err := parseEndpoint(raw); err != nil {
		return err
	}
	if strings.Contains(raw, "?") {
		return errors.New("a query is not allowed in an issuer (OpenID Connect Discovery §3)")
	}
	return nil
}

// tenantPlaceholder marks an issuer template (see IssuerTemplate).
const tenantPlaceholder = "{tenantid}"

// fitsTemplate reports whether s is template with its tenantPlaceholder
// replaced by one non-empty path segment: Entra's "organizations" issuer
// URL and each tenant's issuer fit ".../{tenantid}/v2.0".
func fitsTemplate(template, s string) bool {
	pre, post, ok := strings.Cut(template, tenantPlaceholder)
	seg, ok2 := strings.CutPrefix(s, pre)
	seg, ok3 := strings.CutSuffix(seg, post)
	return ok && ok2 && ok3 && seg != "" && !strings.ContainsAny(seg, "/?#{}%")
}

// EntraIssuer is the IssuerTemplate rule of Microsoft Entra: an ID token's
// issuer is the template with "{tenantid}" replaced by the token's tid, a
// tenant ID (a GUID).
func EntraIssuer(template, tid string) (string, error) {
	ok := len(tid) == 36
	for i := 0; ok && i < len(tid); i++ {
		c := tid[i]
		ok = (c == '-') == (i == 8 || i == 13 || i == 18 || i == 23) && strings.IndexByte("-0123456789abcdefABCDEF", c) >= 0
	}
	if !ok {
		return "", errors.New("tid is not a tenant ID (a GUID)")
	}
	return strings.Replace(template, tenantPlaceholder, tid, 1), nil
}

// sameIssuer compares issuer identifiers as Discovery §5 requires, byte for
// byte, with one tolerance: a bare origin with and without its trailing
// "/". (The Rust crate compares parsed URLs, under which "https://op" and
// "https://op/" are equal while ".../a" and ".../a/" are not.) got has
// passed checkIssuer, so it has no query or fragment.
func sameIssuer(want, got string) bool {
	if want == got {
		return true
	}
	w := strings.TrimSuffix(want, "/")
	if w != strings.TrimSuffix(got, "/") {
		return false
	}
	_, hostPort, ok := strings.Cut(w, "://")
	return ok && !strings.Contains(hostPort, "/")
}

// issuerMismatch names both issuers and, for the common mistakes, which
// difference matters.
func issuerMismatch(want, got string) error {
	hint := "configure the issuer exactly as the provider publishes it"
	switch {
	case strings.Contains(got, tenantPlaceholder):
		hint = "the document is a multi-tenant template, which is accepted only from a URL that fits it (such as .../organizations/v2.0)"
	case strings.TrimSuffix(want, "/") == strings.TrimSuffix(got, "/"):
		hint = "they differ in a trailing slash, which is significant in an issuer with a path"
	case strings.EqualFold(want, got):
		hint = "they differ in letter case, which is significant"
	}
	return errorf("%w: %w: expected %q, the document says %q: %s", ErrInvalidDiscovery, ErrInvalidIssuer,
		sanitizeText(want, maxDiscoveryQuote), sanitizeText(got, maxDiscoveryQuote), hint)
}

// The members read from a document; others are ignored (Discovery §3
// lets providers add their own).
const (
	dcIssuer = iota
	dcAuthorizationEndpoint
	dcTokenEndpoint
	dcJWKSURI
	dcScopes
	dcResponseTypes
	dcSubjectTypes
	dcCodeChallengeMethods
	dcTokenEndpointAuthMethods
	dcIDTokenSigningAlgs
	dcISSParameter
	dcRevocationEndpoint
)

var openIDConfigurationMembers = []string{
	dcIssuer: "issuer", dcAuthorizationEndpoint: "authorization_endpoint",
	dcTokenEndpoint: "token_endpoint", dcJWKSURI: "jwks_uri",
	dcScopes: "scopes_supported", dcResponseTypes: "response_types_supported",
	dcSubjectTypes: "subject_types_supported", dcCodeChallengeMethods: "code_challenge_methods_supported",
	dcTokenEndpointAuthMethods: "token_endpoint_auth_methods_supported",
	dcIDTokenSigningAlgs:       "id_token_signing_alg_values_supported",
	dcISSParameter:             "authorization_response_iss_parameter_supported",
	dcRevocationEndpoint:       "revocation_endpoint",
}

// parseOpenIDConfiguration reads a provider configuration document and
// checks it against the expected issuer. A member that is null counts as
// absent; any other value must have the type Discovery §3 gives it.
func parseOpenIDConfiguration(data []byte, issuer string) (*OpenIDConfiguration, error) {
	in, err := decodeStrictMembers(data, openIDConfigurationMembers)
	if err != nil {
		return nil, errorf("%w: %v", ErrInvalidDiscovery, err)
	}
	var cfg OpenIDConfiguration
	// The issuer first: a document for another issuer is the wrong
	// document, whatever else is in it.
	for _, m := range []struct {
		member int
		dst    *string
		check  func(string) error
	}{
		{dcIssuer, &cfg.Issuer, checkIssuer},
		{dcAuthorizationEndpoint, &cfg.AuthorizationEndpoint, checkEndpoint},
		{dcTokenEndpoint, &cfg.TokenEndpoint, checkEndpoint},
		{dcJWKSURI, &cfg.JWKSURI, checkEndpoint},
		// Optional (RFC 8414 §2): where Revoke and Logout send tokens.
		{dcRevocationEndpoint, &cfg.RevocationEndpoint, checkEndpoint},
	} {
		name := openIDConfigurationMembers[m.member]
		s, err := jsonString(in[m.member])
		switch {
		case err != nil:
			return nil, errorf("%w: %s is not a JSON string", ErrInvalidDiscovery, name)
		case s == "" && m.member == dcRevocationEndpoint:
			continue
		case s == "":
			return nil, errorf("%w: %s is missing or empty: check that the issuer URL is that of an OpenID provider", ErrInvalidDiscovery, name)
		}
		if err := m.check(s); err != nil {
			return nil, errorf("%w: %s: %s", ErrInvalidDiscovery, name, sanitizeText(err.Error(), maxDiscoveryQuote))
		}
		*m.dst = s
		if m.member == dcIssuer && !sameIssuer(issuer, s) && !fitsTemplate(s, issuer) {
			return nil, issuerMismatch(issuer, s)
		}
	}
	for _, m := range []struct {
		member int
		dst    *[]string
	}{
		{dcScopes, &cfg.ScopesSupported},
		{dcResponseTypes, &cfg.ResponseTypesSupported},
		{dcSubjectTypes, &cfg.SubjectTypesSupported},
		{dcCodeChallengeMethods, &cfg.CodeChallengeMethodsSupported},
		{dcTokenEndpointAuthMethods, &cfg.TokenEndpointAuthMethodsSupported},
		{dcIDTokenSigningAlgs, &cfg.IDTokenSigningAlgValuesSupported},
	} {
		if *m.dst, err = jsonStrings(in[m.member], maxDiscoveryList); err != nil {
			return nil, errorf("%w: %s %v", ErrInvalidDiscovery, openIDConfigurationMembers[m.member], err)
		}
	}
	switch string(in[dcISSParameter]) {
	case "", "null", "false":
	case "true":
		cfg.AuthorizationResponseISSParameterSupported = true
	default:
		// The string "true" is refused, not guessed at: it decides whether
		// a missing iss in the callback is an attack (RFC 9207 §2.4).
		return nil, errorf("%w: authorization_response_iss_parameter_supported is not a JSON boolean", ErrInvalidDiscovery)
	}
	return &cfg, nil
}

// checkEndpoint is parseEndpoint without the parsed URL.
func checkEndpoint(raw string) error {
	_, err := parseEndpoint(raw)
	return err
}

// signingAlgs returns the algorithms ID tokens of this provider may be
// verified with: supportedAlgs narrowed to the advertised list, in
// supportedAlgs order. The advertised list never widens the allowlist:
// "none", HS256 or an unknown name are dropped, and a list with nothing
// else is an error rather than a fallback. An omitted list (Discovery §3
// requires it) leaves the allowlist as it is.
func (c *OpenIDConfiguration) signingAlgs() ([]string, error) {
	if c == nil {
		return nil, errorf("%w: no provider configuration", ErrInvalidDiscovery)
	}
	advertised := c.IDTokenSigningAlgValuesSupported
	if advertised == nil {
		return slices.Clone(supportedAlgs), nil
	}
	var out []string
	for _, alg := range supportedAlgs {
		if slices.Contains(advertised, alg) {
			out = append(out, alg)
		}
	}
	if len(out) == 0 {
		return nil, errorf("%w: id_token_signing_alg_values_supported [%s] names no algorithm this package verifies (%s): ID tokens from this provider cannot be verified",
			ErrInvalidDiscovery, sanitizeText(strings.Join(advertised, " "), maxDiscoveryQuote), strings.Join(supportedAlgs, ", "))
	}
	return out, nil
}
