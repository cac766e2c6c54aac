package loopauth

// Real-browser tests: headless Chromium as the BrowserOpener, through
// whole flows against loopauthtest, and screenshots of the pages.
//
// How they prove what they prove:
//   - A flow: Chromium is started with --dump-dom on the authorization URL.
//     It follows the provider's redirect to /callback, then the 303 to
//     /done, and prints the DOM of the page it ends on. The result page is
//     served only at /done (the callback's own answer is the short 303
//     page), and the server logs (at debug level) that it served /done: the
//     test checks both, so the address bar ended on the clean path.
//   - Screenshots: each Chromium run loads its URL anew, and the callback
//     and /done are single-use, so the screenshots do not replay a flow.
//     The test renders the default pages directly and serves each from an
//     httptest server with the callback server's own headers (CSP
//     included), then takes one screenshot in the light scheme and one in
//     the dark one (--force-dark-mode). It checks that each is a PNG of the
//     window's size whose background is light or dark as asked.
//
// Without Chromium these tests skip, naming what is missing; with CI set in
// the environment (CI=true in CI) they fail instead. LOOPAUTH_CHROMIUM
// names another binary; LOOPAUTH_SCREENSHOTS names a folder to keep the
// PNGs in (make screenshots), otherwise they go to a temporary folder.

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// chromiumBinary returns the Chromium to drive, or skips the test (fails
// it under CI) when there is none.
func chromiumBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("LOOPAUTH_CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("headless Chromium is missing (%v): install Debian's chromium package (apt-get install chromium), or set LOOPAUTH_CHROMIUM to a Chromium binary", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI is set, so the real-browser tests must run")
		}
		t.Skip(msg)
	}
	return bin
}

// chromiumTimeout bounds one Chromium run: start-up on a loaded machine
// takes a few seconds.
const chromiumTimeout = 90 * time.Second

// runChromium runs headless Chromium once with a fresh profile and returns
// its standard output.
func runChromium(t *testing.T, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), chromiumTimeout)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-quic", "--no-proxy-server",
		"--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("chromium %s: %w\n%s", strings.Join(args, " "), err, lastLines(stderr.String(), 10))
	}
	return stdout.Bytes(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// chromiumOpener is a BrowserOpener that loads the URL in headless
// Chromium and keeps the DOM of the page it ends on. It lets Chromium
// finish even when the flow stops waiting for it (the flow waits for the
// opener to return), so the DOM is never cut short.
type chromiumOpener struct {
	t   *testing.T
	bin string

	mu  sync.Mutex
	dom string
	err error
}

func (o *chromiumOpener) open(_ context.Context, authURL string) error {
	out, err := runChromium(o.t, o.bin, "--dump-dom", authURL)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dom, o.err = string(out), err
	return err
}

// TestChromiumFlows covers H-06 in a real browser: whole flows with
// headless Chromium as the BrowserOpener end on the flow's page, served at
// /done after the 303, for a success (with the identity), access_denied,
// and ID tokens that fail verification (wrong audience, expired).
func TestChromiumFlows(t *testing.T) {
	bin := chromiumBinary(t)
	user := loopauthtest.User{Subject: "ada-42", Email: "ada@example.com", Name: "Ada <Lovelace>"}
	cases := []struct {
		name    string
		opts    []loopauthtest.Option
		ok      bool
		want    []string
		notWant []string
	}{
		{"success", nil, true,
			[]string{"Authentication successful", "Signed in as", "Ada &lt;Lovelace&gt;", "ada@example.com", "openid", "email", "You can close this tab"},
			[]string{"<script", "<img"}},
		{"access denied", []loopauthtest.Option{loopauthtest.WithAuthorizeError("access_denied", "The user said no", "")}, false,
			[]string{"Authentication failed", "did not grant access", "What to do", "access_denied", "The user said no"},
			[]string{"Signed in as"}},
		{"wrong audience", []loopauthtest.Option{loopauthtest.WithIDTokenClaims(func(c map[string]any) { c["aud"] = "another-client" })}, false,
			[]string{"Authentication failed", "failed verification", "What to do"},
			[]string{"Signed in as", "another-client"}},
		{"expired ID token", []loopauthtest.Option{loopauthtest.WithIDTokenLifetime(-time.Hour)}, false,
			[]string{"Authentication failed", "date, time and time zone"},
			[]string{"Signed in as"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, append([]loopauthtest.Option{loopauthtest.WithUser(user)}, tc.opts...)...)
			o := &chromiumOpener{t: t, bin: bin}
			logs := &recordHandler{}
			c := openIDClient(t, p, func(b *CLITokenClientBuilder) {
				b.BrowserOpener(o.open).Timeout(2 * chromiumTimeout).Logger(slog.New(logs))
			})
			check := noLeaks(t)
			ts, err := c.RunAuthorizationFlow(context.Background())
			check()
			if (err == nil) != tc.ok {
				t.Fatalf("flow: %v", err)
			}
			o.mu.Lock()
			dom, oerr := o.dom, o.err
			o.mu.Unlock()
			if oerr != nil {
				t.Fatalf("chromium: %v", oerr)
			}
			// The server served the page at /done, and that page is what
			// Chromium ended on: the address bar holds the clean path, not
			// the callback URL.
			if !slices.Contains(logs.lines(), "DEBUG loopauth: the browser fetched its page at /done") {
				t.Errorf("the server never served /done; log:\n%s", strings.Join(logs.lines(), "\n"))
			}
			if !strings.Contains(dom, `<main>`) || strings.Contains(dom, "See Other") {
				t.Fatalf("Chromium did not end on the result page:\n%s", dom)
			}
			for _, w := range tc.want {
				if !strings.Contains(dom, w) {
					t.Errorf("final page lacks %q:\n%s", w, dom)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(dom, w) {
					t.Errorf("final page has %q", w)
				}
			}
			if ts != nil {
				assertNotOnPage(t, dom, ts.AccessToken(), ts.RefreshToken())
			}
			for _, tr := range p.TokenRequests() {
				assertNotOnPage(t, dom, tr.Get("code"), tr.Get("code_verifier"))
			}
			for _, ar := range p.AuthorizeRequests() {
				assertNotOnPage(t, dom, ar.Get("state"), ar.Get("nonce"))
			}
		})
	}
}

func assertNotOnPage(t *testing.T, page string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(page, s) {
			t.Errorf("the page shows a secret (%d bytes)", len(s))
		}
	}
}

// screenshotPages are the pages worth looking at, by file name.
func screenshotPages() []struct{ name, html string } {
	claims := &Claims{Name: "Ada Lovelace", Email: "ada@example.com", Subject: "ada-42", EmailVerified: true}
	return []struct{ name, html string }{
		{"success", defaultSuccessPage(&PageContext{
			claims: claims, scopes: []Scope{ScopeOpenID, ScopeEmail, ScopeOfflineAccess, "files.read"},
			expiresAt: time.Now().Add(time.Hour), hasRefreshToken: true,
		})},
		{"access-denied", defaultErrorPage(&ErrorPageContext{
			err:    newProviderError("access_denied", "The user denied the request.", "", 0),
			scopes: []Scope{ScopeOpenID, ScopeEmail, ScopeOfflineAccess},
		})},
		{"id-token-invalid", defaultErrorPage(&ErrorPageContext{
			err:    fmt.Errorf("%w: %w", ErrInvalidIDToken, ErrInvalidAudience),
			scopes: []Scope{ScopeOpenID, ScopeEmail},
		})},
		{"exchange-failed", defaultErrorPage(&ErrorPageContext{
			err:    newProviderError("invalid_client", "Client authentication failed.", "", 401),
			scopes: []Scope{ScopeOpenID, ScopeEmail},
		})},
		{"stale-tab", staleCallbackPage()},
		{"done-gone", statusPage(http.StatusGone, "This page was shown once and is gone. The result of the sign-in is in your terminal.")},
	}
}

// TestChromiumScreenshots renders each default page in Chromium, in the
// light and the dark scheme, and checks the screenshots: PNGs of the
// window's size with a light or a dark background as asked.
func TestChromiumScreenshots(t *testing.T) {
	bin := chromiumBinary(t)
	dir := os.Getenv("LOOPAUTH_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pages := screenshotPages()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range pages {
			if r.URL.Path == "/"+p.name {
				setPageHeaders(w.Header())
				_, _ = w.Write([]byte(p.html))
				return
			}
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	for _, p := range pages {
		for _, scheme := range []string{"light", "dark"} {
			file := filepath.Join(dir, p.name+"-"+scheme+".png")
			args := []string{"--screenshot=" + file, "--window-size=800,600", "--hide-scrollbars"}
			if scheme == "dark" {
				args = append(args, "--force-dark-mode")
			}
			if _, err := runChromium(t, bin, append(args, srv.URL+"/"+p.name)...); err != nil {
				t.Fatal(err)
			}
			checkScreenshot(t, file, scheme == "dark")
		}
	}
	t.Logf("screenshots in %s", dir)
}

// checkScreenshot checks that file is an 800x600 PNG whose corner (the
// page background) is dark or light as asked.
func checkScreenshot(t *testing.T, file string, dark bool) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if b := img.Bounds(); b.Dx() != 800 || b.Dy() != 600 {
		t.Errorf("%s is %dx%d, want 800x600", file, b.Dx(), b.Dy())
	}
	r, g, b, _ := img.At(2, 2).RGBA()
	luma := (299*r + 587*g + 114*b) / 1000 >> 8
	if dark != (luma < 64) || !dark && luma < 200 {
		t.Errorf("%s: background luma %d, want a %s page", file, luma, map[bool]string{true: "dark", false: "light"}[dark])
	}
}
