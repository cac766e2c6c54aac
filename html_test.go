package loopauth

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

var hostileText = `<script>alert(1)</script></title>"onmouseover=x {{.}} <!-- ` + "\x1b[2J\u202e"

// TestPagesEscape covers H-01 and H-09: every dynamic value is escaped.
func TestPagesEscape(t *testing.T) {
	success := defaultSuccessPage(&PageContext{
		scopes: []Scope{Scope(hostileText)},
		claims: &Claims{Name: hostileText, Email: hostileText, Subject: hostileText},
	})
	errPage := defaultErrorPage(&ErrorPageContext{
		err:    newProviderError("access_denied", hostileText, "javascript:alert(1)", 0),
		scopes: []Scope{Scope(hostileText)},
	})
	for name, page := range map[string]string{"success": success, "error": errPage} {
		for _, raw := range []string{"<script>", "</title>\"", `"onmouseover`, "<!-- ", "\x1b", "\u202e"} {
			if strings.Contains(page, raw) {
				t.Errorf("%s page contains unescaped %q", name, raw)
			}
		}
	}
	if strings.Contains(errPage, "javascript:") {
		t.Error("H-05: error_uri rendered")
	}
	if !strings.Contains(errPage, "access_denied") {
		t.Error("provider error code missing from the page")
	}
}

// TestPagesSelfContained covers H-03 and H-04: no absolute URL, no
// external resource, no script, and the picture claim is never loaded.
func TestPagesSelfContained(t *testing.T) {
	pages := []string{
		defaultSuccessPage(&PageContext{claims: &Claims{Name: "N", Email: "e@x", Picture: "https://tracker.example/p.gif"}, scopes: []Scope{"a"}, expiresAt: time.Now().Add(time.Hour), hasRefreshToken: true}),
		defaultSuccessPage(&PageContext{}),
		defaultErrorPage(&ErrorPageContext{err: ErrTimeout}),
		statusPage(404, "There is nothing here."),
	}
	external := regexp.MustCompile(`(?i)(https?:|//[a-z0-9]|<script|<img|<link|<iframe|@import|url\(|src=|href=)`)
	for i, p := range pages {
		if m := external.FindString(p); m != "" {
			t.Errorf("page %d has %q", i, m)
		}
		if !strings.HasPrefix(p, "<!DOCTYPE html>") || !strings.Contains(p, "prefers-color-scheme:dark") {
			t.Errorf("page %d is not the full layout", i)
		}
	}
	if strings.Contains(pages[0], "tracker") {
		t.Error("picture claim rendered")
	}
}

// TestSuccessPageContent: the success page shows the identity (name and
// email), the granted scopes, the expiry, whether the program can renew
// it, and that the tab can be closed.
func TestSuccessPageContent(t *testing.T) {
	p := defaultSuccessPage(&PageContext{
		claims:          &Claims{Name: "Ada", Email: "ada@example.com", Subject: "u-1", EmailVerified: true},
		scopes:          []Scope{ScopeOpenID, ScopeEmail},
		expiresAt:       time.Now().Add(90*time.Minute + 30*time.Second),
		hasRefreshToken: true,
	})
	for _, want := range []string{"Authentication successful", "Signed in as <strong>Ada</strong>", "ada@example.com", "openid | email", "u-1", "can renew it", "in 1h 30m (at ", "You can close this tab"} {
		if !strings.Contains(p, want) {
			t.Errorf("success page lacks %q", want)
		}
	}
	// Without a name the email is the identity; without either, the
	// subject; outside OpenID mode, no identity at all.
	for _, tc := range []struct {
		claims *Claims
		want   string
	}{
		{&Claims{Email: "ada@example.com", Subject: "u-1"}, "Signed in as <strong>ada@example.com</strong></p>"},
		{&Claims{Subject: "u-1"}, "Signed in as <strong>u-1</strong></p>"},
		{nil, ""},
	} {
		p := defaultSuccessPage(&PageContext{claims: tc.claims})
		if tc.want == "" && strings.Contains(p, "Signed in as") || tc.want != "" && !strings.Contains(p, tc.want) {
			t.Errorf("claims %+v: page lacks %q", tc.claims, tc.want)
		}
		if !strings.Contains(p, "not stated by the provider") || !strings.Contains(p, "Access expires</dt><dd>unknown") || !strings.Contains(p, "sign in again") {
			t.Errorf("claims %+v: facts missing", tc.claims)
		}
	}
}

// TestErrorPageVocabulary checks that the error page says what happened
// and what to do for each kind of error, from a fixed vocabulary, never
// from the error string.
func TestErrorPageVocabulary(t *testing.T) {
	cases := []struct {
		err        error
		what, todo string
	}{
		{newProviderError("access_denied", "", "", 0), "did not grant access: the sign-in was declined", "allow access when the provider asks"},
		{newProviderError("consent_required", "", "", 0), "answered the sign-in with an error", "provider's message"},
		{newProviderError("temporarily_unavailable", "", "", 0), "had a problem", "Wait a minute"},
		{newProviderError("invalid_grant", "", "", 400), "refused to issue tokens: the sign-in had expired", "without a long pause"},
		{newProviderError("invalid_client", "", "", 401), "refused to issue tokens to this program", "client settings"},
		{fmt.Errorf("%w: %w: x", ErrInvalidIDToken, ErrInvalidAudience), "failed verification", "issuer or client ID"},
		{fmt.Errorf("%w: %w: x", ErrInvalidIDToken, ErrInvalidSignature), "failed verification", "issuer or client ID"},
		{fmt.Errorf("%w: %w: x", ErrInvalidIDToken, ErrIDTokenExpired), "not valid at this computer's time", "date, time and time zone"},
		{fmt.Errorf("%w: %w: x", ErrInvalidIDToken, ErrIDTokenNotYetValid), "not valid at this computer's time", "date, time and time zone"},
		{fmt.Errorf("%w: %w: x", ErrInvalidIDToken, ErrInvalidIssuer), "failed verification", "issuer or client ID"},
		{ErrNoIDToken, "failed verification", "issuer or client ID"},
		{fmt.Errorf("%w: callback iss", ErrInvalidIssuer), "different provider", "intercepting"},
		{fmt.Errorf("%w: x", ErrCallbackMalformed), "malformed", "Run the command again."},
		{fmt.Errorf("%w: x", ErrInvalidTokenResponse), "could not be used", "maintainers"},
		{context.Canceled, "cancelled", "when you are ready"},
		{ErrTimeout, "stopped waiting", "in time"},
		{errors.New("dial tcp " + secretCode), "could not be completed", "network connection"},
	}
	for _, tc := range cases {
		p := defaultErrorPage(&ErrorPageContext{err: tc.err})
		_, main, _ := strings.Cut(p, "<main>")
		_, lead, _ := strings.Cut(main, `<p class="lead">`)
		lead, _, _ = strings.Cut(lead, "</p>")
		if !strings.Contains(lead, html.EscapeString(tc.what)) {
			t.Errorf("%v: lead lacks %q", tc.err, tc.what)
		}
		if !strings.Contains(main, "<h2>What to do</h2>") || !strings.Contains(main, html.EscapeString(tc.todo)) || !strings.Contains(main, "Return to your terminal") {
			t.Errorf("%v: page lacks what to do (%q)", tc.err, tc.todo)
		}
		if strings.Contains(main, "loopauth:") || strings.Contains(main, "callback iss") {
			t.Errorf("%v: the error string is on the page", tc.err)
		}
		assertNoSecret(t, p)
	}
}

// TestStaleCallbackPage: a request with a wrong or missing state (a tab
// left from an earlier attempt) gets a refusal page that says what
// happened and how to finish the sign-in that is waiting, and never ends
// the flow.
func TestStaleCallbackPage(t *testing.T) {
	s := startTestServer(t)
	resp := rawRequest(t, s, get("/callback?code=c&state=qwertyuiop", s.host))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 {
		t.Errorf("status %d", resp.StatusCode)
	}
	for _, want := range []string{"not the one the program is waiting for", "earlier or different sign-in attempt", "What to do", "tab it opened most recently", "run the command again"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("stale-tab page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "qwertyuiop") {
		t.Error("the page reflects the request")
	}
	assertStillWaiting(t, s)
}

func TestFormatExpiry(t *testing.T) {
	now := time.Unix(1000000, 0)
	cases := map[time.Duration]string{
		-time.Second:               "expired",
		45 * time.Second:           "in 45s",
		12 * time.Minute:           "in 12m",
		2 * time.Hour:              "in 2h",
		65 * time.Minute:           "in 1h 5m",
		48*time.Hour + time.Minute: "in 48h 1m",
	}
	for d, want := range cases {
		if got := formatExpiry(now.Add(d), now); got != want {
			t.Errorf("formatExpiry(%v) = %q, want %q", d, got, want)
		}
	}
	if got := formatExpiry(time.Time{}, now); got != "unknown" {
		t.Errorf("zero expiry = %q", got)
	}
}

// pageTags returns the markup of a page in order: every "<...>" run.
func pageTags(page string) []string {
	var tags []string
	for {
		i := strings.IndexByte(page, '<')
		if i < 0 {
			return tags
		}
		j := strings.IndexByte(page[i:], '>')
		if j < 0 {
			return append(tags, page[i:])
		}
		tags = append(tags, page[i:i+j+1])
		page = page[i+j+1:]
	}
}

// checkPageEscaping is the escaping property of renderPage: whatever the
// values, the page has exactly the markup of the same page with each
// non-empty value replaced by a plain placeholder, and no value that holds
// a markup character appears unescaped.
func checkPageEscaping(t *testing.T, d pageData) {
	t.Helper()
	plain := d
	ph := func(s string) string {
		if s == "" {
			return ""
		}
		return "x"
	}
	plain.Identity, plain.Email, plain.Title, plain.Subtitle, plain.Status = ph(d.Identity), ph(d.Email), ph(d.Title), ph(d.Subtitle), ph(d.Status)
	phs := func(in []string) (out []string) {
		for _, p := range in {
			out = append(out, ph(p))
		}
		return out
	}
	phd := func(in []detail) (out []detail) {
		for _, dt := range in {
			out = append(out, detail{ph(dt.Name), ph(dt.Value)})
		}
		return out
	}
	plain.Paragraphs, plain.Steps = phs(d.Paragraphs), phs(d.Steps)
	plain.Facts, plain.Details = phd(d.Facts), phd(d.Details)
	page, want := renderPage(d), renderPage(plain)
	if got, exp := pageTags(page), pageTags(want); strings.Join(got, "\x00") != strings.Join(exp, "\x00") {
		t.Fatalf("markup differs from the placeholder page:\n got %q\nwant %q", got, exp)
	}
	if strings.Count(page, ">") != strings.Count(want, ">") {
		t.Fatalf("page has %d '>', the placeholder page %d", strings.Count(page, ">"), strings.Count(want, ">"))
	}
	// The tags are the same, so the text between them pairs up: where a
	// value made it differ, it must be escaped text.
	got, exp := pageText(page), pageText(want)
	for i := range got {
		if got[i] == exp[i] {
			continue
		}
		if strings.ContainsAny(got[i], `"'>`) {
			t.Fatalf("unescaped value in %q", got[i])
		}
		for rest := got[i]; ; {
			j := strings.IndexByte(rest, '&')
			if j < 0 {
				break
			}
			rest = rest[j:]
			ok := false
			for _, e := range []string{"&amp;", "&lt;", "&gt;", "&#34;", "&#39;"} {
				ok = ok || strings.HasPrefix(rest, e)
			}
			if !ok {
				t.Fatalf("bare & in %q", got[i])
			}
			rest = rest[1:]
		}
	}
}

// pageText returns the text between the tags of a page, in order.
func pageText(page string) []string {
	var text []string
	for {
		i := strings.IndexByte(page, '<')
		if i < 0 {
			return append(text, page)
		}
		text = append(text, page[:i])
		j := strings.IndexByte(page[i:], '>')
		if j < 0 {
			return text
		}
		page = page[i+j+1:]
	}
}

// TestPageEscapingProperty runs the escaping property over hostile values
// in every slot of the layout.
func TestPageEscapingProperty(t *testing.T) {
	for _, v := range []string{hostileText, "<", ">", "&amp;", `"'`, "</p><p>", "<!--", "]]>", "\x00<x>", "a<b>c</b>", strings.Repeat("<", 5000)} {
		checkPageEscaping(t, pageData{OK: true, Status: v, Title: v, Subtitle: v, Identity: v, Email: v, Paragraphs: []string{v, v}, Steps: []string{v}, Facts: []detail{{v, v}, {v, v}}, Details: []detail{{v, v}}})
		checkPageEscaping(t, pageData{Identity: v, Paragraphs: []string{v}})
	}
}

// FuzzPageEscaping fuzzes the escaping property of the default pages.
func FuzzPageEscaping(f *testing.F) {
	f.Add(hostileText, "e@x", "access_denied", "openid email", "desc", true)
	f.Add("", "<b>", "", "</dd>", "<details>", false)
	f.Fuzz(func(t *testing.T, identity, email, code, scopes, desc string, ok bool) {
		checkPageEscaping(t, pageData{OK: ok, Status: code, Title: desc, Subtitle: desc, Identity: identity, Email: email, Paragraphs: []string{desc, code}, Steps: []string{email, desc}, Facts: []detail{{code, scopes}}, Details: []detail{{identity, email}, {scopes, desc}}})
	})
}

// TestErrorPageShowsConfiguredScopes: the default error page of a real
// failed flow lists every scope the client asked for, whether the provider
// refused at the authorization endpoint or at the token endpoint.
func TestErrorPageShowsConfiguredScopes(t *testing.T) {
	cases := []struct {
		name string
		opt  loopauthtest.Option
	}{
		{"authorization refused", loopauthtest.WithAuthorizeError("access_denied", "", "")},
		{"token request refused", loopauthtest.WithCodeExchangeError(400, "invalid_grant", "code expired")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, tc.opt)
			g := &pageGrabber{}
			c := flowClient(t, p, g.open, func(b *CLITokenClientBuilder) {
				b.AddScopes("files.read", "calendar:events.readonly")
			})
			if len(c.scopes) != 4 {
				t.Fatalf("client scopes %q, want the 2 of flowClient and 2 more", c.scopes)
			}
			if _, err := c.RunAuthorizationFlow(context.Background()); err == nil {
				t.Fatal("the flow succeeded")
			}
			_, main, ok := strings.Cut(g.body, "<main>")
			if !ok || !strings.Contains(main, "Authentication failed") {
				t.Fatalf("not the default error page (%d):\n%s", g.status, g.body)
			}
			for _, s := range c.scopes {
				if !strings.Contains(main, string(s)) {
					t.Errorf("scope %q missing from the error page:\n%s", s, main)
				}
			}
		})
	}
}

// TestEscapeTextMatchesHTMLPackage: escapeText escapes exactly as
// html.EscapeString does.
func TestEscapeTextMatchesHTMLPackage(t *testing.T) {
	for _, s := range []string{"", "plain", hostileText, `<>&"'`, "&amp;&lt;", "é<ü>\u202e", "\x00<\xff>"} {
		var b strings.Builder
		escapeText(&b, s)
		if got, want := b.String(), html.EscapeString(s); got != want {
			t.Errorf("escapeText(%q) = %q, want %q", s, got, want)
		}
	}
}

// cssLuminance finds "--name:#rrggbb" in css and returns the color's
// relative luminance (WCAG 2.x).
func cssLuminance(t *testing.T, css, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`--` + name + `:#([0-9a-fA-F]{6})[;}]`).FindStringSubmatch(css)
	if m == nil {
		t.Fatalf("no color --%s in %q", name, css)
	}
	var rgb [3]float64
	for i := range rgb {
		var v int
		fmt.Sscanf(m[1][2*i:2*i+2], "%02x", &v)
		c := float64(v) / 255
		if c <= 0.04045 {
			rgb[i] = c / 12.92
		} else {
			rgb[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*rgb[0] + 0.7152*rgb[1] + 0.0722*rgb[2]
}

// TestPageContrast: in both color schemes, and for both accents (success
// and failure), every text color (text, muted, and the accent of the
// status line) has a contrast of at least 4.5:1 (WCAG AA) against every
// background it can sit on (page, card, identity box). The colors are
// read from the CSS of rendered pages.
func TestPageContrast(t *testing.T) {
	for _, ok := range []bool{true, false} {
		page := renderPage(pageData{OK: ok, Title: "t"})
		style := page[strings.Index(page, "<style>"):strings.Index(page, "</style>")]
		light, dark, found := strings.Cut(style, "@media (prefers-color-scheme:dark)")
		if !found {
			t.Fatal("no dark scheme")
		}
		for scheme, css := range map[string]string{"light": light, "dark": dark} {
			for _, fg := range []string{"text", "muted", "accent"} {
				for _, bg := range []string{"bg", "card", "chip"} {
					a, b := cssLuminance(t, css, fg), cssLuminance(t, css, bg)
					ratio := (math.Max(a, b) + 0.05) / (math.Min(a, b) + 0.05)
					if ratio < 4.5 {
						t.Errorf("ok=%v %s scheme: --%s on --%s has contrast %.2f:1, want at least 4.5:1", ok, scheme, fg, bg, ratio)
					}
				}
			}
		}
	}
}

// TestPagesReadableWithoutCSS: every page has a language, a title and a
// heading, and its text is in the document in reading order: the style
// sheet hides nothing and adds no text, so a page read without CSS (or by
// a screen reader) says everything.
func TestPagesReadableWithoutCSS(t *testing.T) {
	pages := []string{
		defaultSuccessPage(&PageContext{claims: &Claims{Name: "Ada", Email: "a@x", Subject: "s"}, scopes: []Scope{"openid"}, expiresAt: time.Now().Add(time.Hour)}),
		defaultErrorPage(&ErrorPageContext{err: newProviderError("access_denied", "no", "", 0), scopes: []Scope{"openid"}}),
		staleCallbackPage(),
		statusPage(410, "gone"),
	}
	for i, p := range pages {
		style := p[strings.Index(p, "<style>"):strings.Index(p, "</style>")]
		for _, hidden := range []string{"display:none", "visibility:hidden", "{content:", ";content:", "opacity:0", "font-size:0"} {
			if strings.Contains(style, hidden) {
				t.Errorf("page %d: the style sheet has %q", i, hidden)
			}
		}
		if !strings.Contains(p, `<html lang="en">`) || !strings.Contains(p, "<title>") || !strings.Contains(p, "<h1>") {
			t.Errorf("page %d lacks lang, title or heading", i)
		}
		// Reading order: status line, heading, then the lead.
		st, h1, lead := strings.Index(p, `<p class="status">`), strings.Index(p, "<h1>"), strings.Index(p, `<p class="lead">`)
		if st < 0 || st > h1 || h1 > lead {
			t.Errorf("page %d: status, heading and lead out of order", i)
		}
	}
}
