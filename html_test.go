package loopauth

import (
	"context"
	"errors"
	"fmt"
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
