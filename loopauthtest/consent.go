package loopauthtest

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// consentHeader carries the consent request id so Browser can click
// Approve without parsing HTML. A real browser ignores it.
const consentHeader = "Loopauthtest-Consent-Request"

// consentPage needs no JavaScript and loads nothing: all styling is inline.
var consentPage = template.Must(template.New("consent").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize {{.ClientID}}</title>
<style>
body{margin:0;font:16px/1.5 system-ui,sans-serif;background:#f3f4f6;color:#111827}
main{max-width:28rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.3rem;margin:0 0 1rem}
code{background:#f3f4f6;padding:0 .3em;border-radius:4px}
ul{padding-left:1.2rem}
.buttons{display:flex;gap:.75rem;margin-top:1.5rem}
button{flex:1;font:inherit;padding:.6rem;border-radius:8px;border:1px solid #d1d5db;background:#fff;cursor:pointer}
button.approve{background:#2563eb;border-color:#2563eb;color:#fff}
.note{margin-top:1.5rem;font-size:.8rem;color:#6b7280}
</style>
</head>
<body>
<main>
<h1>Authorize <code>{{.ClientID}}</code>?</h1>
<p>The application <strong>{{.ClientID}}</strong> wants to sign you in as
<strong>{{.UserName}}</strong>{{if .Email}} ({{.Email}}){{end}}.</p>
{{if .Scopes}}<p>It asks for:</p>
<ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>
{{else}}<p>It asks for no particular scopes.</p>{{end}}
<p>You will be sent back to <code>{{.Return}}</code>.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="request_id" value="{{.RequestID}}">
<div class="buttons">
<button type="submit" name="decision" value="deny">Deny</button>
<button type="submit" name="decision" value="approve" class="approve">Approve</button>
</div>
</form>
<p class="note">loopauthtest: a local test provider. Not for production.</p>
</main>
</body>
</html>
`))

type consentData struct {
	ClientID  string
	UserName  string
	Email     string
	Scopes    []string
	Return    string
	RequestID string
	Action    string // the decision endpoint's path
}

// showConsent stores the validated request under a one-time id and renders
// the consent page.
func (p *Provider) showConsent(w http.ResponseWriter, req *authzRequest) {
	id := randomToken(32)
	now := p.cfg.now()
	pending := *req
	pending.expires = now.Add(p.cfg.codeLifetime)
	p.mu.Lock()
	if len(p.pending) >= maxPending {
		for k, r := range p.pending {
			if !now.Before(r.expires) {
				delete(p.pending, k)
			}
		}
	}
	p.pending[id] = &pending
	p.mu.Unlock()

	// checkRedirectURI guarantees a loopback origin without special
	// characters, so it can go into the header as is.
	origin := req.redirectURI
	if u, err := url.Parse(req.redirectURI); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	var buf bytes.Buffer
	err := consentPage.Execute(&buf, consentData{
		ClientID:  req.clientID,
		UserName:  p.cfg.user.Name,
		Email:     p.cfg.user.Email,
		Scopes:    strings.Fields(req.scope),
		Return:    origin,
		RequestID: id,
		Action:    strings.TrimSuffix(p.cfg.issuerPath, "/") + "/authorize/decision",
	})
	if err != nil {
		http.Error(w, "loopauthtest: rendering consent page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// form-action must allow the redirect target too: Chrome applies it
	// to the redirect that follows the form submission.
	h.Set("Content-Security-Policy",
		"default-src 'none'; style-src 'unsafe-inline'; form-action 'self' "+origin+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set(consentHeader, id)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// handleDecision receives the consent form. The request id is single use:
// it is consumed before anything else is checked.
func (p *Provider) handleDecision(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		badRequestPage(w, "malformed form")
		return
	}
	ids, decisions := r.PostForm["request_id"], r.PostForm["decision"]
	if len(ids) != 1 || len(decisions) != 1 {
		badRequestPage(w, "request_id and decision must be sent once each")
		return
	}
	p.mu.Lock()
	req, ok := p.pending[ids[0]]
	delete(p.pending, ids[0])
	p.mu.Unlock()
	if !ok {
		badRequestPage(w, "unknown or already used consent request")
		return
	}
	if p.expired(req.expires) {
		badRequestPage(w, "consent request expired")
		return
	}
	switch decisions[0] {
	case "approve":
		p.redirectCode(w, req, http.StatusSeeOther)
	case "deny":
		p.redirectError(w, req, "access_denied", "the user denied the request", "", http.StatusSeeOther)
	default:
		badRequestPage(w, "decision must be approve or deny")
	}
}
