package loopauthtest

import (
	"mime"
	"net/http"
	"net/url"
	"time"
)

// AccessTokenInfo is what the provider knows of a live access token it
// issued: what a fake API needs to decide a request.
type AccessTokenInfo struct {
	Subject   string    // the signed-in user's subject (sub)
	ClientID  string    // the client the token was issued to
	Scope     string    // the granted scope, space separated ("" for none)
	ExpiresAt time.Time // on the provider's clock (WithNow)
}

// CheckAccessToken reports whether token is an access token this provider
// issued that has neither expired, on the provider's clock, nor been
// revoked (by /revoke, directly or through the refresh token it was issued
// with, or by the provider's defences against a replayed code or refresh
// token), and what it grants. It is for a fake API in the test's process;
// one in another process uses the introspection endpoint.
func (p *Provider) CheckAccessToken(token string) (AccessTokenInfo, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.access[token]
	if !ok || !p.live(a) {
		return AccessTokenInfo{}, false
	}
	g := a.grant
	return AccessTokenInfo{Subject: g.subject, ClientID: g.clientID, Scope: a.scope, ExpiresAt: a.expires}, true
}

// live reports whether a can still be used. p.mu must be held.
func (p *Provider) live(a *accessToken) bool {
	return !a.revoked && !a.grant.revoked && !p.expired(a.expires)
}

// addAccess records an access token, first sweeping dead ones when there
// are many, so a long-running provider stays small. p.mu must be held.
func (p *Provider) addAccess(token string, a *accessToken) {
	if len(p.access) >= maxAccess {
		for t, old := range p.access {
			if !p.live(old) {
				delete(p.access, t)
			}
		}
	}
	p.access[token] = a
}

// readForm reads the body of a POST to /revoke or /introspect: a bounded
// application/x-www-form-urlencoded form without repeated parameters. The
// form it returns is never nil, for recording.
func readForm(w http.ResponseWriter, r *http.Request, endpoint string) (url.Values, *oauthError) {
	if r.Method != http.MethodPost {
		return url.Values{}, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", description: "the " + endpoint + " endpoint accepts only POST"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	err := r.ParseForm()
	form := r.PostForm
	if form == nil {
		form = url.Values{}
	}
	switch {
	case mt != "application/x-www-form-urlencoded":
		return form, tokenErrorf("invalid_request", "the body must be application/x-www-form-urlencoded")
	case err != nil:
		return form, tokenErrorf("invalid_request", "malformed or oversized form body")
	}
	for name, vs := range form {
		if len(vs) > 1 {
			return form, tokenErrorf("invalid_request", "parameter "+name+" is repeated")
		}
	}
	if form.Get("token") == "" {
		return form, tokenErrorf("invalid_request", "token is missing")
	}
	return form, nil
}

// writeFormError answers a readForm failure.
func writeFormError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "POST")
	}
	writeTokenError(w, e, false)
}

// handleRevoke is the RFC 7009 revocation endpoint. The client
// authenticates as at /token. A valid request gets 200 with an empty body,
// also for a token that is unknown, expired or already revoked (§2.2).
// Revoking the current refresh token of a grant revokes the grant, and so
// the access tokens issued under it (§2.1 allows it); revoking an access
// token revokes only that token. A refresh token that rotation already
// replaced is dead, so revoking it changes nothing.
func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, fail := readForm(w, r, "revocation")
	p.mu.Lock()
	p.revokeReqs = append(p.revokeReqs, form)
	p.mu.Unlock()
	if p.cfg.noRevocation {
		http.NotFound(w, r)
		return
	}
	if fail == nil {
		fail = p.cfg.revocationErr
	}
	if fail != nil {
		writeFormError(w, fail)
		return
	}
	clientID, basic, fail := p.authenticateClient(r, form)
	if fail != nil {
		writeTokenError(w, fail, basic)
		return
	}

	token, hint := form.Get("token"), form.Get("token_type_hint")
	p.mu.Lock()
	// The hint only speeds up a real provider's lookup; both kinds are
	// searched whatever it says (§2.1), and an unknown hint is ignored.
	kind, owner := "", ""
	a, isAccess := p.access[token]
	g, isRefresh := p.refresh[token]
	switch {
	case isAccess:
		kind, owner = AccessTokenType, a.grant.clientID
	case isRefresh:
		kind, owner = RefreshTokenType, g.clientID
	}
	switch {
	case p.cfg.unrevocable[hint] || p.cfg.unrevocable[kind]:
		fail = tokenErrorf("unsupported_token_type", "this provider does not revoke tokens of type "+firstNonEmpty(kind, hint))
	case kind != "" && owner != clientID:
		fail = tokenErrorf("invalid_grant", "the token was issued to another client")
	case isAccess:
		a.revoked = true
	case isRefresh && secretEqual(token, g.current):
		g.revoked = true
	}
	p.mu.Unlock()
	if fail == nil && kind != "" {
		if err := p.persist(); err != nil {
			fail = &oauthError{status: http.StatusInternalServerError, code: "server_error", description: err.Error()}
		}
	}
	if fail != nil {
		writeTokenError(w, fail, false)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// handleIntrospect is the RFC 7662 introspection endpoint for a fake API
// in another process. The API authenticates by HTTP Basic with the
// credential of WithIntrospectionCredentials, compared as sent (not
// form-decoded). Only live access tokens are active; anything else,
// refresh tokens included, is {"active":false}.
func (p *Provider) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, fail := readForm(w, r, "introspection")
	if fail != nil && fail.status == http.StatusMethodNotAllowed {
		writeFormError(w, fail)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok || !secretEqual(id, p.cfg.introspectID) || !secretEqual(secret, p.cfg.introspectSecret) {
		writeTokenError(w, tokenErrorf("invalid_client", "introspection requires the resource server's credential by HTTP Basic"), true)
		return
	}
	if fail != nil {
		writeFormError(w, fail)
		return
	}
	info, ok := p.CheckAccessToken(form.Get("token"))
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	resp := map[string]any{
		"active":     true,
		"sub":        info.Subject,
		"client_id":  info.ClientID,
		"exp":        info.ExpiresAt.Unix(),
		"token_type": "Bearer",
	}
	if info.Scope != "" {
		resp["scope"] = info.Scope
	}
	writeJSON(w, http.StatusOK, resp)
}
