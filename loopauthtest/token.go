package loopauthtest

import (
	"crypto/sha256"
	"crypto/subtle"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// tokenErrorf builds an RFC 6749 §5.2 error; invalid_client is 401.
func tokenErrorf(code, desc string) *oauthError {
	status := http.StatusBadRequest
	if code == "invalid_client" {
		status = http.StatusUnauthorized
	}
	return &oauthError{status: status, code: code, description: desc}
}

func writeTokenError(w http.ResponseWriter, e *oauthError, basicAuth bool) {
	body := map[string]any{}
	if e.code != "" {
		body["error"] = e.code
	}
	if e.description != "" {
		body["error_description"] = e.description
	}
	if e.status == http.StatusUnauthorized && basicAuth {
		w.Header().Set("WWW-Authenticate", `Basic realm="loopauthtest"`)
	}
	writeJSON(w, e.status, body)
}

// secretEqual compares secrets in constant time; hashing first hides the
// length too.
func secretEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeTokenError(w, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", description: "the token endpoint accepts only POST"}, false)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	parseErr := r.ParseForm()
	form := r.PostForm
	if form == nil {
		form = url.Values{}
	}
	p.mu.Lock()
	p.tokenReqs = append(p.tokenReqs, form)
	p.mu.Unlock()

	if !p.wait(r.Context(), p.cfg.tokenDelay) {
		writeTokenError(w, &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", description: "provider closed"}, false)
		return
	}
	if raw := p.cfg.rawToken; raw != nil {
		if raw.contentType != "" {
			w.Header().Set("Content-Type", raw.contentType)
		} else {
			w.Header()["Content-Type"] = nil // no sniffing: really omit it
		}
		w.WriteHeader(raw.status)
		_, _ = w.Write(raw.body)
		return
	}
	if mt != "application/x-www-form-urlencoded" {
		writeTokenError(w, tokenErrorf("invalid_request", "the body must be application/x-www-form-urlencoded"), false)
		return
	}
	if parseErr != nil {
		writeTokenError(w, tokenErrorf("invalid_request", "malformed or oversized form body"), false)
		return
	}
	for name, vs := range form {
		if len(vs) > 1 {
			writeTokenError(w, tokenErrorf("invalid_request", "parameter "+name+" is repeated"), false)
			return
		}
	}

	gt := form.Get("grant_type")
	var injected *oauthError
	switch gt {
	case "authorization_code":
		injected = p.cfg.codeErr
	case "refresh_token":
		injected = p.cfg.refreshErr
	case "":
		writeTokenError(w, tokenErrorf("invalid_request", "grant_type is missing"), false)
		return
	default:
		writeTokenError(w, tokenErrorf("unsupported_grant_type", "grant_type must be authorization_code or refresh_token"), false)
		return
	}
	if injected != nil {
		writeTokenError(w, injected, false)
		return
	}

	clientID, basic, fail := p.authenticateClient(r, form)
	if fail != nil {
		writeTokenError(w, fail, basic)
		return
	}
	if gt == "authorization_code" {
		p.exchangeCode(w, form, clientID)
	} else {
		p.refreshGrant(w, form, clientID)
	}
}

// authenticateClient identifies the client from the form (client_id,
// client_secret) or HTTP Basic, and checks the secret of a confidential
// client. It reports whether Basic was used, for WWW-Authenticate.
func (p *Provider) authenticateClient(r *http.Request, form url.Values) (string, bool, *oauthError) {
	basicID, basicSecret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both halves are form-urlencoded first.
		var err1, err2 error
		basicID, err1 = url.QueryUnescape(basicID)
		basicSecret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return "", basic, tokenErrorf("invalid_client", "malformed HTTP Basic credentials")
		}
	}
	id := form.Get("client_id")
	bodySecret, hasBodySecret := form["client_secret"]
	switch {
	case basic && hasBodySecret:
		return "", basic, tokenErrorf("invalid_request", "use only one client authentication method")
	case basic && id != "" && id != basicID:
		return "", basic, tokenErrorf("invalid_client", "client_id does not match HTTP Basic credentials")
	case basic:
		id = basicID
	}
	if id == "" {
		return "", basic, tokenErrorf("invalid_request", "client_id is missing")
	}
	want, known := p.cfg.client(id)
	if !known {
		return "", basic, tokenErrorf("invalid_client", "unknown client")
	}
	if want == "" {
		return id, basic, nil // public client: nothing to check
	}
	used := ClientSecretPost
	if basic {
		used = ClientSecretBasic
	}
	if p.cfg.authMethod != "" && used != p.cfg.authMethod {
		return "", basic, tokenErrorf("invalid_client", "the client authenticates with "+p.cfg.authMethod+", not "+used)
	}
	secret := basicSecret
	if !basic {
		if !hasBodySecret {
			return "", basic, tokenErrorf("invalid_client", "client authentication required")
		}
		secret = bodySecret[0]
	}
	if !secretEqual(secret, want) {
		return "", basic, tokenErrorf("invalid_client", "client authentication failed")
	}
	return id, basic, nil
}

// exchangeCode redeems an authorization code. Any attempt with an existing
// code consumes it, so a failed attempt cannot be retried with other
// guesses, and a replay revokes what the first exchange issued (RFC 6749
// §4.1.2).
func (p *Provider) exchangeCode(w http.ResponseWriter, form url.Values, clientID string) {
	code, redirectURI, verifier := form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier")
	switch {
	case code == "":
		writeTokenError(w, tokenErrorf("invalid_request", "code is missing"), false)
		return
	case redirectURI == "":
		writeTokenError(w, tokenErrorf("invalid_request", "redirect_uri is missing"), false)
		return
	case verifier == "":
		writeTokenError(w, tokenErrorf("invalid_request", "code_verifier is missing"), false)
		return
	}
	p.mu.Lock()
	c, ok := p.codes[code]
	if ok && c.used {
		if c.grant != nil {
			c.grant.revoked = true
		}
		p.mu.Unlock()
		p.persistQuietly()
		writeTokenError(w, tokenErrorf("invalid_grant", "authorization code was already used"), false)
		return
	}
	if ok {
		c.used = true
	}
	p.mu.Unlock()
	if !ok {
		writeTokenError(w, tokenErrorf("invalid_grant", "unknown authorization code"), false)
		return
	}

	// c.req is immutable after the code was issued.
	var problem string
	switch {
	case p.expired(c.expires):
		problem = "authorization code expired"
	case c.req.clientID != clientID:
		problem = "authorization code was issued to another client"
	case c.req.redirectURI != redirectURI:
		problem = "redirect_uri does not match the authorization request"
	case !validPKCEString(verifier):
		problem = "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]"
	default:
		sum := sha256.Sum256([]byte(verifier))
		if subtle.ConstantTimeCompare([]byte(b64.EncodeToString(sum[:])), []byte(c.req.challenge)) != 1 {
			problem = "PKCE verification failed"
		}
	}
	if problem != "" {
		writeTokenError(w, tokenErrorf("invalid_grant", problem), false)
		return
	}

	granted := c.req.scope
	if p.cfg.grantedScope != nil {
		granted = *p.cfg.grantedScope
	}
	g := &grant{
		clientID: clientID,
		subject:  p.cfg.user.Subject,
		scope:    granted,
		openid:   hasScope(c.req.scope, "openid"),
		authTime: c.authTime,
	}
	var refresh string
	p.mu.Lock()
	c.grant = g
	if !p.cfg.noRefresh && !c.req.noRefresh {
		refresh = randomToken(32)
		g.current = refresh
		p.refresh[refresh] = g
	}
	p.mu.Unlock()
	p.issue(w, "authorization_code", g, granted, c.req.nonce, refresh)
}

// refreshGrant redeems a refresh token. With rotation, presenting any but
// the newest token of a grant is taken as theft and revokes the grant, as
// OAuth 2.0 Security BCP §4.14.2 recommends.
func (p *Provider) refreshGrant(w http.ResponseWriter, form url.Values, clientID string) {
	rt := form.Get("refresh_token")
	if rt == "" {
		writeTokenError(w, tokenErrorf("invalid_request", "refresh_token is missing"), false)
		return
	}
	reqScope, scopeSent := form["scope"]
	p.mu.Lock()
	g, ok := p.refresh[rt]
	var fail *oauthError
	switch {
	case !ok:
		fail = tokenErrorf("invalid_grant", "unknown refresh token")
	case g.revoked:
		fail = tokenErrorf("invalid_grant", "refresh token was revoked")
	case g.clientID != clientID:
		fail = tokenErrorf("invalid_grant", "refresh token was issued to another client")
	case !secretEqual(rt, g.current):
		g.revoked = true
		fail = tokenErrorf("invalid_grant", "refresh token was already used; the grant is revoked")
	}
	if fail != nil {
		p.mu.Unlock()
		p.persistQuietly() // reuse may have revoked the grant
		writeTokenError(w, fail, false)
		return
	}

	scope := g.scope
	if scopeSent && reqScope[0] != "" {
		s, valid := normalizeScope(reqScope[0])
		if !valid || !scopeSubset(s, g.scope) {
			p.mu.Unlock()
			writeTokenError(w, tokenErrorf("invalid_scope", "scope exceeds the original grant"), false)
			return
		}
		scope = s
	}
	next := ""
	switch {
	case p.cfg.noRefreshOnRef:
		// Google style: no refresh_token member, the old one stays valid.
	case p.cfg.noRotation:
		next = rt
	default:
		next = randomToken(32)
		g.current = next
		p.refresh[next] = g // the old token stays known so reuse is detected
	}
	p.mu.Unlock()
	p.issue(w, "refresh_token", g, scope, "", next)
}

func scopeSubset(sub, of string) bool {
	for _, s := range strings.Fields(sub) {
		if !hasScope(of, s) {
			return false
		}
	}
	return true
}

// issue writes a successful token response (RFC 6749 §5.1) and records
// the access token for CheckAccessToken, /introspect and /revoke.
func (p *Provider) issue(w http.ResponseWriter, grantType string, g *grant, scope, nonce, refresh string) {
	access := randomToken(32)
	p.mu.Lock()
	p.addAccess(access, &accessToken{grant: g, scope: scope, expires: p.cfg.now().Add(p.cfg.tokenLifetime)})
	p.mu.Unlock()
	if err := p.persist(); err != nil {
		writeTokenError(w, &oauthError{status: http.StatusInternalServerError, code: "server_error", description: err.Error()}, false)
		return
	}
	resp := map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   int64(p.cfg.tokenLifetime / time.Second),
	}
	if scope != "" {
		resp["scope"] = scope
	}
	if refresh != "" {
		resp["refresh_token"] = refresh
	}
	if g.openid && !p.cfg.omitIDToken {
		idt, err := p.idToken(g, access, nonce)
		if err != nil {
			writeTokenError(w, &oauthError{status: http.StatusInternalServerError, code: "server_error", description: err.Error()}, false)
			return
		}
		resp["id_token"] = idt
	}
	if p.cfg.tokenHook != nil {
		p.cfg.tokenHook(grantType, resp)
	}
	writeJSON(w, http.StatusOK, resp)
}

// idToken builds and signs an OpenID Connect ID token for g.
func (p *Provider) idToken(g *grant, accessToken, nonce string) (string, error) {
	now := p.cfg.now()
	u := p.cfg.user
	claims := map[string]any{
		"iss":       p.issuer,
		"sub":       u.Subject,
		"aud":       g.clientID,
		"iat":       now.Unix(),
		"exp":       now.Add(p.cfg.idTokenLifetime).Unix(),
		"auth_time": g.authTime.Unix(),
		"at_hash":   atHash(accessToken),
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if u.Email != "" {
		claims["email"], claims["email_verified"] = u.Email, true
	}
	if u.Name != "" {
		claims["name"] = u.Name
	}
	if p.cfg.claimsHook != nil {
		p.cfg.claimsHook(claims)
	}
	return p.currentKey().sign(claims)
}
