package loopauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SuccessPageRenderer renders the page the browser shows after a
// successful sign-in. The returned string is served as text/html as is,
// once, at the clean path /done the callback redirects to, under the same
// headers as the default pages (a Content-Security-Policy that allows
// inline styles and data: images and nothing else): escape every value
// taken from the context (html/template does).
type SuccessPageRenderer interface {
	RenderSuccess(ctx context.Context, page *PageContext) string
}

// ErrorPageRenderer renders the page the browser shows when the flow fails
// while the browser is waiting for an answer; it is served like the
// success page.
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
// The callback's own answer sits on a URL that holds the code, and the
// result page may show who signed in: nothing may be cached, leak through
// Referer, be sniffed as another type, framed, or load anything from
// anywhere (RFC 9700 §4.2.4).
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
//
// Accessibility: the page has lang="en" and plain structure (a heading,
// paragraphs, a definition list) that reads in order without the style
// sheet; the CSS hides nothing and generates no content. Every color of
// text (text, muted, the accent of the status line) has a contrast of at
// least 4.5:1 against both the page and the card background, in both
// schemes (TestPageContrast computes it from these constants).
const (
	pageHead = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="color-scheme" content="light dark">
<title>`
	pageStyleLight = `</title>
<style>
:root{--bg:#f3f4f6;--card:#ffffff;--text:#1d2330;--muted:#545d6e;--border:#d5d9e0;--chip:#eef0f3;--accent:`
	pageStyleDark = `}
@media (prefers-color-scheme:dark){:root{--bg:#0f1115;--card:#181b22;--text:#e6e9ef;--muted:#a3acbb;--border:#2e3440;--chip:#232833;--accent:`
	pageStyleRest = `}}
*{box-sizing:border-box}
html{color-scheme:light dark}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;padding:1rem;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:36rem;width:100%;background:var(--card);border:1px solid var(--border);border-top:4px solid var(--accent);border-radius:12px;padding:1.5rem 2rem 1.75rem;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.status{margin:0 0 .25rem;color:var(--accent);font-weight:600;font-size:.9rem;letter-spacing:.02em;text-transform:uppercase}
h1{margin:0 0 .5rem;font-size:1.5rem;line-height:1.25}
h2{margin:1.25rem 0 .25rem;font-size:1rem}
p{margin:.5rem 0}
.lead{font-size:1.05rem}
.muted{color:var(--muted)}
.who{margin:1rem 0;padding:.75rem 1rem;border-radius:8px;background:var(--chip)}
.who strong{font-size:1.1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem;margin:1rem 0 0}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
details{margin-top:1.25rem;border-top:1px solid var(--border);padding-top:.75rem}
summary{cursor:pointer;color:var(--muted)}
</style>
</head>
<body>
<main>
<p class="status">`
	pageTail = `
</main>
</body>
</html>
`
)

// The accent of the top border and the status line: green for a success,
// red for a failure, in the light and the dark scheme.
const (
	accentOKLight   = "#17703a"
	accentOKDark    = "#4ac26b"
	accentFailLight = "#c21f2c"
	accentFailDark  = "#ff7b72"
)

// pageData is what renderPage shows, every value as plain text.
type pageData struct {
	OK         bool
	Status     string // the short status line above the heading
	Title      string
	Subtitle   string // the lead paragraph
	Identity   string
	Email      string
	Paragraphs []string // what happened
	Steps      []string // what to do, under "What to do"
	Facts      []detail // shown as a definition list
	Details    []detail // folded away under "Details"
}

type detail struct{ Name, Value string }

// maxDisplayBytes caps any one value shown on a page.
const maxDisplayBytes = 2048

// renderPage writes the layout with d's values. Each value is cleaned of
// control and bidirectional characters (H-09), so the page shows what was
// received, then escaped for element text (H-01), by element.
func renderPage(d pageData) string {
	var b strings.Builder
	b.Grow(5 << 10) // the layout alone is about 3 KiB
	light, dark := accentFailLight, accentFailDark
	if d.OK {
		light, dark = accentOKLight, accentOKDark
	}
	element(&b, pageHead, d.Title, pageStyleLight+light+pageStyleDark+dark+pageStyleRest)
	element(&b, "", d.Status, "</p>\n")
	element(&b, "<h1>", d.Title, "</h1>\n")
	element(&b, `<p class="lead">`, d.Subtitle, "</p>\n")
	if d.Identity != "" {
		element(&b, `<p class="who">Signed in as <strong>`, d.Identity, "</strong>")
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
	if len(d.Steps) > 0 {
		b.WriteString("<h2>What to do</h2>")
		for _, p := range d.Steps {
			element(&b, "<p>", p, "</p>")
		}
	}
	b.WriteByte('\n')
	definitions(&b, "<dl>", d.Facts, "</dl>\n")
	definitions(&b, "<details><summary>Details</summary><dl>", d.Details, "</dl></details>")
	b.WriteString(pageTail)
	return b.String()
}

// definitions writes a definition list between open and close, or
// nothing when there are no entries.
func definitions(b *strings.Builder, open string, ds []detail, close string) {
	if len(ds) == 0 {
		return
	}
	b.WriteString(open)
	for _, dt := range ds {
		element(b, "<dt>", dt.Name, "</dt>")
		element(b, "<dd>", dt.Value, "</dd>")
	}
	b.WriteString(close)
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
// (name and email, OpenID mode), the granted scopes, when the access
// expires and whether the program can renew it, and, folded away, the
// subject. It never shows a token, and never loads the picture claim: a
// remote image would tell its host when and where the user signed in.
func defaultSuccessPage(p *PageContext) string {
	d := pageData{
		OK:       true,
		Status:   "Signed in",
		Title:    "Authentication successful",
		Subtitle: "You can close this tab and return to your terminal.",
	}
	if c := p.claims; c != nil {
		d.Identity, d.Email = c.Name, c.Email
		if d.Identity == "" {
			d.Identity, d.Email = c.Email, ""
		}
		if d.Identity == "" {
			d.Identity = c.Subject
		}
		d.Details = append(d.Details, detail{"Subject", c.Subject})
		if c.Email != "" {
			verified := "no"
			if c.EmailVerified {
				verified = "yes"
			}
			d.Details = append(d.Details, detail{"Email verified", verified})
		}
	}
	scopes := strings.ReplaceAll(joinScopes(p.scopes), " ", " | ")
	if scopes == "" {
		scopes = "not stated by the provider"
	}
	d.Facts = append(d.Facts, detail{"Access granted", scopes})
	now := time.Now()
	expires := formatExpiry(p.expiresAt, now)
	if !p.expiresAt.IsZero() && p.expiresAt.After(now) {
		expires += p.expiresAt.Local().Format(" (at 15:04 MST)")
	}
	d.Facts = append(d.Facts, detail{"Access expires", expires})
	renew := "no: you will sign in again when it expires"
	if p.hasRefreshToken {
		renew = "yes: the program can renew it without this page"
	}
	d.Facts = append(d.Facts, detail{"Renewable", renew})
	return renderPage(d)
}

// defaultErrorPage is the built-in error page. Its text comes from a fixed
// vocabulary chosen by the kind of error (errorExplanation): what happened
// and what to do, in plain words. Only a provider's error code and
// description are shown verbatim (escaped), and never its error_uri as a
// link.
func defaultErrorPage(p *ErrorPageContext) string {
	what, todo := errorExplanation(p.err)
	d := pageData{
		Status:   "Not signed in",
		Title:    "Authentication failed",
		Subtitle: what,
		Steps:    []string{todo, "Return to your terminal: the program there says what went wrong too."},
	}
	if pe, ok := errorAs[*ProviderError](p.err); ok {
		d.Facts = append(d.Facts, detail{"Provider's error", pe.ErrorCode})
		if pe.ErrorDescription != "" {
			d.Facts = append(d.Facts, detail{"Provider's message", pe.ErrorDescription})
		}
	}
	if len(p.scopes) > 0 {
		d.Facts = append(d.Facts, detail{"Access requested", strings.ReplaceAll(joinScopes(p.scopes), " ", " | ")})
	}
	return renderPage(d)
}

// errorExplanation maps an error to two fixed sentences for the error
// page: what happened, and what to do. ID-token failures are tested before
// issuer mismatches, which they can wrap.
func errorExplanation(err error) (what, todo string) {
	const again = "Run the command again."
	pe, isPE := errorAs[*ProviderError](err)
	switch {
	case isPE && pe.StatusCode == 0 && pe.ErrorCode == "access_denied":
		return "The provider did not grant access: the sign-in was declined or cancelled at the provider.",
			"If you meant to sign in, run the command again and allow access when the provider asks. If your organization manages your account, an administrator may have to allow this program first."
	case isPE && (pe.ErrorCode == "temporarily_unavailable" || pe.ErrorCode == "server_error"):
		return "The provider had a problem and could not complete the sign-in.",
			"Wait a minute, then run the command again."
	case isPE && pe.StatusCode == 0:
		return "The provider did not grant access: it answered the sign-in with an error.",
			again + " If it fails the same way, the provider's message below says why; the program's settings for this provider may need fixing."
	case isPE && pe.ErrorCode == "invalid_grant":
		return "The provider refused to issue tokens: the sign-in had expired or had been used already.",
			again + " and finish the sign-in without a long pause."
	case isPE:
		return "The provider refused to issue tokens to this program.",
			again + " If it keeps failing, the program's client settings (client ID, secret or redirect address) may not match the provider's: tell its maintainers."
	case errors.Is(err, ErrIDTokenExpired), errors.Is(err, ErrIDTokenNotYetValid):
		return "The provider's proof of who you are (its ID token) was not valid at this computer's time, so the sign-in was not accepted.",
			"Check that this computer's date, time and time zone are correct, then run the command again."
	case errors.Is(err, ErrInvalidIDToken), errors.Is(err, ErrNoIDToken):
		return "The provider's proof of who you are (its ID token) failed verification, so the sign-in was not accepted.",
			again + " If it keeps failing, the program's settings for this provider (issuer or client ID) may not match what the provider sends: tell its maintainers."
	case errors.Is(err, ErrInvalidIssuer):
		return "The answer came from a different provider than the one this program trusts, so it was not used.",
			again + " If it happens again, do not sign in from this tab: something may be intercepting your sign-in."
	case errors.Is(err, ErrCallbackMalformed):
		return "The provider's answer was malformed, so the program could not use it.", again
	case errors.Is(err, ErrInvalidTokenResponse), errors.Is(err, ErrUnsupportedTokenType), errors.Is(err, ErrResponseTooLarge):
		return "The provider's token response could not be used.",
			again + " If it keeps failing, tell the program's maintainers."
	case errors.Is(err, context.Canceled):
		return "The sign-in was cancelled in the terminal.", again + " when you are ready."
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "The program stopped waiting before the sign-in was complete.", again + " and finish the sign-in in time."
	}
	return "The sign-in could not be completed: the program could not get tokens from the provider.",
		"Check your network connection, then run the command again."
}

// statusPage is the fixed page for requests the callback server refuses.
// It never reflects the request.
func statusPage(status int, message string) string {
	return renderPage(pageData{
		Status:   "HTTP " + strconv.Itoa(status),
		Title:    http.StatusText(status),
		Subtitle: message,
	})
}

// staleCallbackPage is the refusal page of a sign-in response that is not
// the one the program waits for: a wrong or missing state, which is what a
// tab left over from an earlier attempt shows. Such a request never ends
// the flow, so the page says how to finish the one that is waiting.
func staleCallbackPage() string {
	return renderPage(pageData{
		Status:   "Not signed in from this tab",
		Title:    "This sign-in is not the one the program is waiting for",
		Subtitle: "This tab brought back an answer from an earlier or different sign-in attempt, so the program did not use it. Nothing was signed in from this tab.",
		Steps: []string{
			"If your terminal is still waiting, finish the sign-in in the tab it opened most recently, or open the address it printed.",
			"Otherwise, run the command again and sign in from the new tab.",
		},
	})
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
