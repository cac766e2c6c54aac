package loopauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// SuccessPageRenderer renders the page the browser shows after a
// successful sign-in. The returned string is served as text/html as is:
// escape every value taken from the context (html/template does).
type SuccessPageRenderer interface {
	RenderSuccess(ctx context.Context, page *PageContext) string
}

// ErrorPageRenderer renders the page the browser shows when the flow fails
// while the browser is waiting for an answer.
type ErrorPageRenderer interface {
	RenderError(ctx context.Context, page *ErrorPageContext) string
}

// SuccessPageRendererFunc adapts a function to SuccessPageRenderer.
type SuccessPageRendererFunc func(ctx context.Context, page *PageContext) string

// RenderSuccess calls f.
func (f SuccessPageRendererFunc) RenderSuccess(ctx context.Context, page *PageContext) string {
	return f(ctx, page)
}

// ErrorPageRendererFunc adapts a function to ErrorPageRenderer.
type ErrorPageRendererFunc func(ctx context.Context, page *ErrorPageContext) string

// RenderError calls f.
func (f ErrorPageRendererFunc) RenderError(ctx context.Context, page *ErrorPageContext) string {
	return f(ctx, page)
}

// PageContext is what a success page may show. It deliberately has no
// access to the tokens.
type PageContext struct {
	claims          *Claims
	scopes          []Scope
	redirectURI     string
	clientID        string
	expiresAt       time.Time
	hasRefreshToken bool
}

// Claims returns the verified ID-token claims, or nil outside OpenID mode.
func (p *PageContext) Claims() *Claims { return p.claims }

// Scopes returns the granted scopes.
func (p *PageContext) Scopes() []Scope { return append([]Scope(nil), p.scopes...) }

// RedirectURI returns the loopback redirect URI of the flow.
func (p *PageContext) RedirectURI() string { return p.redirectURI }

// ClientID returns the client ID.
func (p *PageContext) ClientID() string { return p.clientID }

// ExpiresAt returns the access token's expiry, or the zero time if unknown.
func (p *PageContext) ExpiresAt() time.Time { return p.expiresAt }

// HasRefreshToken reports whether a refresh token was issued.
func (p *PageContext) HasRefreshToken() bool { return p.hasRefreshToken }

// ErrorPageContext is what an error page may show.
type ErrorPageContext struct {
	err         error
	scopes      []Scope
	redirectURI string
	clientID    string
}

// Err returns the error that ended the flow. Like every error of this
// package it holds no secret, but it may hold provider-supplied text:
// escape it.
func (p *ErrorPageContext) Err() error { return p.err }

// Scopes returns the requested scopes.
func (p *ErrorPageContext) Scopes() []Scope { return append([]Scope(nil), p.scopes...) }

// RedirectURI returns the loopback redirect URI of the flow.
func (p *ErrorPageContext) RedirectURI() string { return p.redirectURI }

// ClientID returns the client ID.
func (p *ErrorPageContext) ClientID() string { return p.clientID }

// setPageHeaders sets the headers of every page the callback server sends,
// Connection: close included.
// The page sits on a URL that still holds the code: nothing may be cached,
// leak through Referer, be sniffed as another type, framed, or load
// anything from anywhere (RFC 9700 §4.2.4).
func setPageHeaders(h http.Header) {
	// One array backs every value (one allocation instead of one per
	// header); the three-index slices keep an append to one header from
	// overwriting the next. The keys are in canonical form.
	v := [...]string{
		"text/html; charset=utf-8",
		"no-store",
		"no-cache",
		"no-referrer",
		"nosniff",
		"DENY",
		"default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		"close", // one request per connection, see callbackServer.ServeHTTP
	}
	h["Content-Type"] = v[0:1:1]
	h["Cache-Control"] = v[1:2:2]
	h["Pragma"] = v[2:3:3]
	h["Referrer-Policy"] = v[3:4:4]
	h["X-Content-Type-Options"] = v[4:5:5]
	h["X-Frame-Options"] = v[5:6:6]
	h["Content-Security-Policy"] = v[6:7:7]
	h["Connection"] = v[7:8:8]
}

// The one layout of every default page: inline CSS with a light and a dark
// scheme, no script, no font, no image, no link. It is written directly
// (renderPage), not through html/template: every value goes into element
// text, where escaping the five characters of html.EscapeString is exactly
// what is needed, and the template packages would cost every program that
// links this one about 2 MiB and a parse at start-up.
const (
	pageHead = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>`
	pageStyleLight = `</title>
<style>
:root{--bg:#f6f7f9;--card:#fff;--text:#1d2330;--muted:#5b6475;--border:#e3e6eb;--accent:`
	pageStyleDark = `}
@media (prefers-color-scheme:dark){:root{--bg:#0f1115;--card:#171a21;--text:#e6e9ef;--muted:#9aa3b2;--border:#2a2f3a;--accent:`
	pageStyleRest = `}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:34rem;width:calc(100% - 2rem);background:var(--card);border:1px solid var(--border);border-top:4px solid var(--accent);border-radius:10px;padding:1.75rem 2rem}
h1{margin:0 0 .25rem;font-size:1.35rem}
p{margin:.5rem 0}
.muted{color:var(--muted)}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9rem;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:.75rem 0 0}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
details{margin-top:1rem}
summary{cursor:pointer;color:var(--muted)}
</style>
</head>
<body>
<main>
<h1>`
	pageTail = `
</main>
</body>
</html>
`
)

type pageData struct {
	OK         bool
	Title      string
	Subtitle   string
	Identity   string
	Email      string
	Paragraphs []string
	Code       string
	Scopes     string
	Details    []detail
}

type detail struct{ Name, Value string }

// maxDisplayBytes caps any one value shown on a page.
const maxDisplayBytes = 2048

// renderPage writes the layout with d's values. Each value is cleaned of
// control and bidirectional characters (H-09), so the page shows what was
// received, then escaped for element text (H-01), by element.
func renderPage(d pageData) string {
	var b strings.Builder
	b.Grow(4 << 10) // the layout alone is about 2.5 KiB
	light, dark := "#cf222e", "#f85149"
	if d.OK {
		light, dark = "#1a7f37", "#3fb950"
	}
	element(&b, pageHead, d.Title, pageStyleLight+light+pageStyleDark+dark+pageStyleRest)
	element(&b, "", d.Title, "</h1>\n")
	element(&b, `<p class="muted">`, d.Subtitle, "</p>\n")
	if d.Identity != "" {
		element(&b, "<p><strong>", d.Identity, "</strong>")
		if d.Email != "" {
			element(&b, `<br><span class="muted">`, d.Email, "</span>")
		}
		b.WriteString("</p>")
	}
	b.WriteByte('\n')
	for _, p := range d.Paragraphs {
		element(&b, "<p>", p, "</p>")
	}
	b.WriteByte('\n')
	for _, v := range [...]string{d.Code, d.Scopes} {
		if v != "" {
			element(&b, `<p class="mono">`, v, "</p>")
		}
		b.WriteByte('\n')
	}
	if len(d.Details) > 0 {
		b.WriteString("<details><summary>details</summary><dl>")
		for _, dt := range d.Details {
			element(&b, "<dt>", dt.Name, "</dt>")
			element(&b, "<dd>", dt.Value, "</dd>")
		}
		b.WriteString("</dl></details>")
	}
	b.WriteString(pageTail)
	return b.String()
}

// element writes open, the text s cleaned and escaped, and close.
func element(b *strings.Builder, open, s, close string) {
	b.WriteString(open)
	escapeText(b, sanitizeText(s, maxDisplayBytes))
	b.WriteString(close)
}

// escapeText writes s as element text: the five characters that
// html.EscapeString escapes, escaped the same way. It is written out
// because the html package builds a strings.Replacer at start-up, which
// costs every program that links this one about 64 KiB and four
// allocations per run.
func escapeText(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&#34;")
		case '\'':
			b.WriteString("&#39;")
		default:
			b.WriteByte(c)
		}
	}
}

// defaultSuccessPage is the built-in success page. It shows who signed in
// (OpenID mode), the granted scopes and, folded away, the expiry and whether
// a refresh token came. It never shows a token, and never loads the
// picture claim: a remote image would leak the callback URL to its host.
func defaultSuccessPage(p *PageContext) string {
	d := pageData{
		OK:       true,
		Title:    "Authentication successful",
		Subtitle: "You can close this tab and return to your terminal.",
		Scopes:   strings.Join(scopeStrings(p.scopes), " | "),
	}
	if c := p.claims; c != nil {
		d.Identity, d.Email = c.Name, c.Email
		if d.Identity == "" {
			d.Identity, d.Email = c.Email, ""
		}
		d.Details = append(d.Details, detail{"subject", c.Subject})
		if c.Email != "" {
			d.Details = append(d.Details, detail{"email verified", yesNo(c.EmailVerified)})
		}
	}
	d.Details = append(d.Details, detail{"expires", formatExpiry(p.expiresAt, time.Now())})
	refresh := "not issued"
	if p.hasRefreshToken {
		refresh = "obtained"
	}
	d.Details = append(d.Details, detail{"refresh token", refresh})
	return renderPage(d)
}

// defaultErrorPage is the built-in error page. Its text comes from a fixed
// vocabulary chosen by the kind of error; only a provider's error code and
// description are shown verbatim (escaped), and never its error_uri as a
// link.
func defaultErrorPage(p *ErrorPageContext) string {
	d := pageData{
		Title:      "Authentication failed",
		Subtitle:   "Return to your terminal and try again.",
		Paragraphs: []string{errorSummary(p.err)},
		Scopes:     strings.Join(scopeStrings(p.scopes), " | "),
	}
	var pe *ProviderError
	if errors.As(p.err, &pe) {
		if pe.ErrorDescription != "" {
			d.Paragraphs = append(d.Paragraphs, pe.ErrorDescription)
		}
		d.Code = pe.ErrorCode
	}
	return renderPage(d)
}

// errorSummary maps an error to a fixed sentence for the error page.
func errorSummary(err error) string {
	var pe *ProviderError
	switch {
	case errors.As(err, &pe) && pe.StatusCode == 0:
		return "The provider did not grant access."
	case errors.As(err, &pe):
		return "The provider refused to issue tokens."
	case errors.Is(err, ErrCallbackMalformed):
		return "The provider's answer was malformed."
	case errors.Is(err, ErrInvalidTokenResponse), errors.Is(err, ErrUnsupportedTokenType), errors.Is(err, ErrResponseTooLarge):
		return "The provider's token response could not be used."
	case errors.Is(err, context.Canceled):
		return "The sign-in was cancelled in the terminal."
	}
	return "The sign-in could not be completed."
}

// statusPage is the fixed page for requests the callback server refuses.
// It never reflects the request.
func statusPage(status int, message string) string {
	return renderPage(pageData{
		Title:      http.StatusText(status),
		Subtitle:   message,
		Paragraphs: nil,
	})
}

func scopeStrings(scopes []Scope) []string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = string(s)
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// formatExpiry says when a token expires, relative to now, the way the
// Rust crate's page does: "in 45s", "in 12m", "in 1h 5m", "expired".
func formatExpiry(at, now time.Time) string {
	if at.IsZero() {
		return "unknown"
	}
	left := at.Sub(now)
	switch {
	case left <= 0:
		return "expired"
	case left < time.Minute:
		return fmt.Sprintf("in %ds", int(left.Seconds()))
	case left < time.Hour:
		return fmt.Sprintf("in %dm", int(left.Minutes()))
	}
	h, m := int(left.Hours()), int(left.Minutes())%60
	if m == 0 {
		return fmt.Sprintf("in %dh", h)
	}
	return fmt.Sprintf("in %dh %dm", h, m)
}
