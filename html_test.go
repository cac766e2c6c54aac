package loopauth

import (
	"context"
	"errors"
	"fmt"
	"html"
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

func TestSuccessPageContent(t *testing.T) {
	p := defaultSuccessPage(&PageContext{
		claims:          &Claims{Name: "Ada", Email: "ada@example.com", Subject: "u-1", EmailVerified: true},
		scopes:          []Scope{ScopeOpenID, ScopeEmail},
		expiresAt:       time.Now().Add(90*time.Minute + 30*time.Second),
		hasRefreshToken: true,
	})
	for _, want := range []string{"Authentication successful", "Ada", "ada@example.com", "openid | email", "u-1", "obtained", "in 1h 30m"} {
		if !strings.Contains(p, want) {
			t.Errorf("success page lacks %q", want)
		}
	}
}

// TestErrorPageVocabulary checks that the error page text is chosen from a
// fixed vocabulary, never from the error string.
func TestErrorPageVocabulary(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{newProviderError("access_denied", "", "", 0), "did not grant access"},
		{newProviderError("invalid_grant", "", "", 400), "refused to issue tokens"},
		{fmt.Errorf("%w: x", ErrCallbackMalformed), "malformed"},
		{fmt.Errorf("%w: x", ErrInvalidTokenResponse), "could not be used"},
		{context.Canceled, "cancelled"},
		{errors.New("dial tcp " + secretCode), "could not be completed"},
	}
	for _, tc := range cases {
		p := defaultErrorPage(&ErrorPageContext{err: tc.err})
		if !strings.Contains(p, tc.want) || !strings.Contains(p, "Return to your terminal") {
			t.Errorf("%v: page lacks %q", tc.err, tc.want)
		}
		assertNoSecret(t, p)
	}
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
	plain.Identity, plain.Email, plain.Code, plain.Scopes, plain.Title, plain.Subtitle = ph(d.Identity), ph(d.Email), ph(d.Code), ph(d.Scopes), ph(d.Title), ph(d.Subtitle)
	plain.Paragraphs = nil
	for _, p := range d.Paragraphs {
		plain.Paragraphs = append(plain.Paragraphs, ph(p))
	}
	plain.Details = nil
	for _, dt := range d.Details {
		plain.Details = append(plain.Details, detail{ph(dt.Name), ph(dt.Value)})
	}
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
		checkPageEscaping(t, pageData{OK: true, Title: v, Subtitle: v, Identity: v, Email: v, Paragraphs: []string{v, v}, Code: v, Scopes: v, Details: []detail{{v, v}}})
		checkPageEscaping(t, pageData{Identity: v, Paragraphs: []string{v}})
	}
}

// FuzzPageEscaping fuzzes the escaping property of the default pages.
func FuzzPageEscaping(f *testing.F) {
	f.Add(hostileText, "e@x", "access_denied", "openid email", "desc", true)
	f.Add("", "<b>", "", "</dd>", "<details>", false)
	f.Fuzz(func(t *testing.T, identity, email, code, scopes, desc string, ok bool) {
		checkPageEscaping(t, pageData{OK: ok, Title: desc, Subtitle: desc, Identity: identity, Email: email, Paragraphs: []string{desc, code}, Code: code, Scopes: scopes, Details: []detail{{identity, email}, {scopes, desc}}})
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
