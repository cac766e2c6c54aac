package loopauthtest

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// authzFailure is a rejected authorization request. Without a usable
// redirect_uri or client_id the provider must not redirect (RFC 6749
// §4.1.2.1), so those failures are shown as a page instead.
type authzFailure struct {
	redirect bool
	code     string
	desc     string
}

func pageFailure(format string, args ...any) *authzFailure {
	return &authzFailure{code: "invalid_request", desc: fmt.Sprintf(format, args...)}
}

func redirectFailure(code, format string, args ...any) *authzFailure {
	return &authzFailure{redirect: true, code: code, desc: fmt.Sprintf(format, args...)}
}

func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	p.mu.Lock()
	p.authzReqs = append(p.authzReqs, q)
	p.mu.Unlock()
	if err != nil {
		badRequestPage(w, "malformed query string")
		return
	}
	if !p.wait(r.Context(), p.cfg.authorizeDelay) {
		http.Error(w, "provider closed", http.StatusServiceUnavailable)
		return
	}

	req, fail := p.parseAuthorize(q)
	if fail != nil && !fail.redirect {
		badRequestPage(w, fail.desc)
		return
	}
	if fail != nil {
		p.redirectError(w, req, fail.code, fail.desc, "", http.StatusFound)
		return
	}
	if e := p.cfg.authorizeErr; e != nil {
		p.redirectError(w, req, e.code, e.description, e.uri, http.StatusFound)
		return
	}
	if p.cfg.consent {
		p.showConsent(w, req)
		return
	}
	p.redirectCode(w, req, http.StatusFound)
}

// parseAuthorize validates an authorization request like a strict
// provider. On a redirect failure the returned request holds the
// redirect_uri and, when it was sent once, the state.
func (p *Provider) parseAuthorize(q url.Values) (*authzRequest, *authzFailure) {
	req := &authzRequest{}
	switch ids := q["client_id"]; {
	case len(ids) == 0 || ids[0] == "":
		return nil, pageFailure("client_id is missing")
	case len(ids) > 1:
		return nil, pageFailure("client_id is repeated")
	case !p.cfg.knows(ids[0]):
		return nil, pageFailure("unknown client_id")
	default:
		req.clientID = ids[0]
	}
	switch uris := q["redirect_uri"]; {
	case len(uris) == 0 || uris[0] == "":
		return nil, pageFailure("redirect_uri is missing")
	case len(uris) > 1:
		return nil, pageFailure("redirect_uri is repeated")
	default:
		if err := checkRedirectURI(uris[0]); err != nil {
			return nil, pageFailure("redirect_uri %v", err)
		}
		req.redirectURI = uris[0]
	}
	if s := q["state"]; len(s) == 1 {
		req.state = s[0]
	}

	// From here on errors go back to the client.
	for name, vs := range q {
		if len(vs) > 1 {
			return req, redirectFailure("invalid_request", "parameter %s is repeated", name)
		}
	}
	switch rt := q.Get("response_type"); {
	case rt == "":
		return req, redirectFailure("invalid_request", "response_type is missing")
	case rt != "code":
		return req, redirectFailure("unsupported_response_type", "only response_type=code is supported")
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return req, redirectFailure("invalid_request", "only response_mode=query is supported")
	}
	switch m := q.Get("code_challenge_method"); m {
	case "S256":
	case "":
		return req, redirectFailure("invalid_request", "PKCE is required: code_challenge_method=S256 is missing")
	default:
		return req, redirectFailure("invalid_request", "transform algorithm not supported: use code_challenge_method=S256")
	}
	req.challenge = q.Get("code_challenge")
	if !validPKCEString(req.challenge) {
		return req, redirectFailure("invalid_request", "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]")
	}
	if req.state == "" {
		return req, redirectFailure("invalid_request", "state is missing")
	}
	scope, ok := normalizeScope(q.Get("scope"))
	if !ok {
		return req, redirectFailure("invalid_scope", "scope contains invalid characters")
	}
	req.scope = scope
	req.nonce = q.Get("nonce")
	req.noRefresh = p.cfg.refreshWhen != nil && !p.cfg.refreshWhen(q)
	return req, nil
}

// checkRedirectURI accepts only loopback redirect URIs (RFC 8252 §7.3):
// http or https, host exactly 127.0.0.1, [::1] or localhost, any port, no
// userinfo and no fragment.
func checkRedirectURI(raw string) error {
	if strings.Contains(raw, "#") {
		return fmt.Errorf("must not contain a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must use http or https")
	}
	if u.Opaque != "" || u.User != nil {
		return fmt.Errorf("must not contain userinfo")
	}
	for _, h := range []string{"127.0.0.1", "[::1]", "localhost"} {
		if u.Host == h {
			return nil
		}
		if port, ok := strings.CutPrefix(u.Host, h+":"); ok && validPort(port) {
			return nil
		}
	}
	return fmt.Errorf("must be a loopback address (127.0.0.1, [::1] or localhost)")
}

func validPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// validPKCEString reports whether s is a valid RFC 7636 code_verifier or
// code_challenge: 43 to 128 unreserved characters.
func validPKCEString(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~'
		if !ok {
			return false
		}
	}
	return true
}

// normalizeScope checks RFC 6749 §3.3 scope-token characters and joins
// the tokens with single spaces.
func normalizeScope(s string) (string, bool) {
	toks := strings.Fields(s)
	for _, t := range toks {
		for i := 0; i < len(t); i++ {
			c := t[i]
			if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				return "", false
			}
		}
	}
	return strings.Join(toks, " "), true
}

func hasScope(scope, want string) bool {
	for _, s := range strings.Fields(scope) {
		if s == want {
			return true
		}
	}
	return false
}

// issuerParam is the RFC 9207 iss value, or "" when it is off.
func (p *Provider) issuerParam() string {
	if !p.cfg.issParam {
		return ""
	}
	if p.cfg.issParamValue != "" {
		return p.cfg.issParamValue
	}
	return p.issuer
}

// redirectTo sends the browser to the client's redirect_uri with params
// added to any query it already has (RFC 6749 §3.1.2).
func (p *Provider) redirectTo(w http.ResponseWriter, req *authzRequest, params url.Values, status int) {
	if iss := p.issuerParam(); iss != "" {
		params.Set("iss", iss)
	}
	if req.state != "" {
		params.Set("state", req.state)
	}
	loc := req.redirectURI
	switch {
	case !strings.Contains(loc, "?"):
		loc += "?"
	case !strings.HasSuffix(loc, "?") && !strings.HasSuffix(loc, "&"):
		loc += "&"
	}
	loc += params.Encode()
	h := w.Header()
	h.Set("Location", loc)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
}

func (p *Provider) redirectError(w http.ResponseWriter, req *authzRequest, code, desc, uri string, status int) {
	v := url.Values{"error": {code}}
	if desc != "" {
		v.Set("error_description", desc)
	}
	if uri != "" {
		v.Set("error_uri", uri)
	}
	p.redirectTo(w, req, v, status)
}

func (p *Provider) redirectCode(w http.ResponseWriter, req *authzRequest, status int) {
	now := p.cfg.now()
	code := randomToken(32)
	p.mu.Lock()
	if len(p.codes) >= maxPending {
		for k, c := range p.codes {
			if !now.Before(c.expires) {
				delete(p.codes, k)
			}
		}
	}
	p.codes[code] = &authCode{req: *req, authTime: now, expires: now.Add(p.cfg.codeLifetime)}
	p.mu.Unlock()
	p.redirectTo(w, req, url.Values{"code": {code}}, status)
}

// badRequestPage answers a request that cannot be sent back to the client.
func badRequestPage(w http.ResponseWriter, desc string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, "loopauthtest: invalid authorization request: %s\n", desc)
}

// expired reports whether t has passed on the provider's clock.
func (p *Provider) expired(t time.Time) bool { return !p.cfg.now().Before(t) }
