package loopauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// flowClient builds a client against p that "opens the browser" with
// opener (p.Browser() when nil).
func flowClient(t *testing.T, p *loopauthtest.Provider, opener BrowserOpener, more ...func(*CLITokenClientBuilder)) *CLITokenClient {
	t.Helper()
	if opener == nil {
		opener = p.Browser()
	}
	b := NewBuilder().ClientID("test-cli").AuthURL(p.AuthURL()).TokenURL(p.TokenURL()).
		AddScopes(ScopeEmail, ScopeOfflineAccess).BrowserOpener(opener).Timeout(10 * time.Second).
		Stderr(io.Discard)
	for _, f := range more {
		f(b)
	}
	c, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// assertPortReleased checks that the callback port can be bound again.
func assertPortReleased(t *testing.T, port int) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d still bound after the flow returned: %v", port, err)
	}
	ln.Close()
}

func TestFlowRoundTrip(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	var events []string
	var port int
	var hookURL *url.URL
	c := flowClient(t, p, func(ctx context.Context, u string) error {
		events = append(events, "open")
		if u != hookURL.String() {
			t.Errorf("opened %q, OnURL saw %q", u, hookURL)
		}
		return p.Browser()(ctx, u)
	}, func(b *CLITokenClientBuilder) {
		b.OnServerReady(func(p int) { events = append(events, "ready"); port = p })
		b.OnURL(func(u *url.URL) { events = append(events, "url"); hookURL = u })
		b.OnAuthURL(func(e *ExtraAuthParams) { e.Append("access_type", "offline").Append("state", "INJECTED") })
	})
	check := noLeaks(t)
	ts, err := c.RunAuthorizationFlow(context.Background())
	check()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(events, ","); got != "ready,url,open" {
		t.Errorf("hook order = %s, want ready,url,open", got)
	}
	if ts.AccessToken() == "" || ts.RefreshToken() == "" || ts.TokenType() != "Bearer" || ts.IsExpired() {
		t.Errorf("tokens = %v", ts)
	}
	if got := joinScopes(ts.Scopes()); got != "email offline_access" {
		t.Errorf("scopes = %q", got)
	}
	authz := p.AuthorizeRequests()
	tok := p.TokenRequests()
	if len(authz) != 1 || len(tok) != 1 {
		t.Fatalf("%d authorize and %d token requests, want 1 each", len(authz), len(tok))
	}
	redirect := "http://127.0.0.1:" + strconv.Itoa(port) + "/callback"
	// C-30: the token request repeats the redirect URI byte for byte.
	if authz[0].Get("redirect_uri") != redirect || tok[0].Get("redirect_uri") != redirect {
		t.Errorf("redirect URIs %q / %q, want %q", authz[0].Get("redirect_uri"), tok[0].Get("redirect_uri"), redirect)
	}
	if s := authz[0]["state"]; len(s) != 1 || s[0] == "INJECTED" {
		t.Errorf("state = %q, the hook must not override it", s)
	}
	if authz[0].Get("access_type") != "offline" || authz[0].Get("code_challenge_method") != "S256" {
		t.Errorf("authorize query = %v", authz[0])
	}
	if s256Challenge(tok[0].Get("code_verifier")) != authz[0].Get("code_challenge") {
		t.Error("verifier does not match the challenge")
	}
	assertPortReleased(t, port)
}

// TestFlowTwiceFreshSecrets covers A-06 at the flow level.
func TestFlowTwiceFreshSecrets(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	checkNoLeaks(t) // across both flows
	c := flowClient(t, p, nil)
	for i := 0; i < 2; i++ {
		if _, err := c.RunAuthorizationFlow(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	a := p.AuthorizeRequests()
	for _, k := range []string{"state", "code_challenge", "redirect_uri"} {
		if a[0].Get(k) == a[1].Get(k) {
			t.Errorf("%s repeated across flows", k)
		}
	}
}

// hostileThenReal sends what an attacker or a stale tab would, then lets
// the real user agent finish.
func hostileThenReal(t *testing.T, p *loopauthtest.Provider) BrowserOpener {
	return func(ctx context.Context, authURL string) error {
		u, _ := url.Parse(authURL)
		redirect, _ := url.Parse(u.Query().Get("redirect_uri"))
		base := "http://" + redirect.Host + "/callback"
		for _, q := range []string{"?error=access_denied", "?code=stolen&state=wrong", "?code=x", "?error=access_denied&state=" + strings.Repeat("A", 43)} {
			resp, err := http.Get(base + q)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("%s: status %d, want 400", q, resp.StatusCode)
			}
		}
		return p.Browser()(ctx, authURL)
	}
}

// TestFlowIgnoresForgedCallbacks covers C-06, C-07 and C-13 end to end:
// forged callbacks neither end nor spoil the flow.
func TestFlowIgnoresForgedCallbacks(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	c := flowClient(t, p, hostileThenReal(t, p))
	ts, err := c.RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatalf("forged callbacks ended the flow: %v", err)
	}
	if ts.AccessToken() == "" {
		t.Fatal("no token")
	}
	if n := len(p.TokenRequests()); n != 1 {
		t.Errorf("%d token requests, want 1 (the forged code must never be exchanged)", n)
	}
	if got := p.TokenRequests()[0].Get("code"); got == "stolen" || got == "x" {
		t.Error("forged code exchanged")
	}
}

// sendJunk sends requests that the callback server on port refuses: one
// with a wrong state, then others with a wrong path; it waits for each
// answer.
func sendJunk(port, n int) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < n; i++ {
		target := fmt.Sprintf("http://127.0.0.1:%d/favicon.ico", port)
		if i == 0 {
			target = fmt.Sprintf("http://127.0.0.1:%d/callback?code=x&state=wrong", port)
		}
		if resp, err := client.Get(target); err == nil {
			resp.Body.Close()
		}
	}
}

// TestFlowSurvivesRefusals covers C-06, C-07 and C-13 against a flood:
// far more refused requests than the 64 after which the flow used to give
// up neither end the flow nor spoil the real callback that follows.
func TestFlowSurvivesRefusals(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	const n, workers = 1100, 4
	var port int
	var answered atomic.Int64
	c := flowClient(t, p, func(ctx context.Context, u string) error {
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
				for i := w; i < n; i += workers {
					target := []string{"/callback?code=x&state=wrong", "/callback?error=access_denied", "/favicon.ico"}[i%3]
					resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, target))
					if err != nil {
						continue
					}
					resp.Body.Close()
					if resp.StatusCode >= 400 && resp.StatusCode < 500 {
						answered.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return p.Browser()(ctx, u)
	}, func(b *CLITokenClientBuilder) { b.OnServerReady(func(p int) { port = p }) })
	check := noLeaks(t)
	ts, err := c.RunAuthorizationFlow(context.Background())
	check()
	if err != nil {
		t.Fatalf("%d refused requests ended the flow: %v", answered.Load(), err)
	}
	if ts.AccessToken() == "" || answered.Load() != n {
		t.Errorf("token %v; %d of %d junk requests refused with a 4xx", ts, answered.Load(), n)
	}
}

// TestFlowTimeout covers C-37: the flow times out, says why, releases the
// port and leaves no goroutine, and reports the requests it refused.
func TestFlowTimeout(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	var port int
	c := flowClient(t, p, func(ctx context.Context, authURL string) error {
		sendJunk(port, 3)
		<-ctx.Done() // a browser that never comes back
		return ctx.Err()
	}, func(b *CLITokenClientBuilder) {
		b.Timeout(300 * time.Millisecond).OnServerReady(func(p int) { port = p })
	})
	start := time.Now()
	check := noLeaks(t)
	_, err := c.RunAuthorizationFlow(context.Background())
	check()
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if !errors.Is(err, ErrStateMismatch) {
		t.Errorf("err = %v, want the ignored forged callback reported", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "3 requests to the callback server were refused, 1 with a wrong or missing state") ||
		!strings.Contains(msg, "see the debug log") {
		t.Errorf("err = %q, want the refused requests counted", msg)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	assertPortReleased(t, port)
}

// TestFlowCancel covers C-38: cancellation while waiting and during the
// token exchange.
func TestFlowCancel(t *testing.T) {
	t.Run("while waiting", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		ctx, cancel := context.WithCancel(context.Background())
		var port int
		c := flowClient(t, p, func(ctx context.Context, _ string) error {
			sendJunk(port, 1)
			cancel()
			<-ctx.Done()
			return nil
		}, func(b *CLITokenClientBuilder) { b.OnServerReady(func(p int) { port = p }) })
		check := noLeaks(t)
		_, err := c.RunAuthorizationFlow(ctx)
		check()
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), "1 request to the callback server was refused, 1 with a wrong") {
			t.Errorf("err = %q, want the refused request counted", err)
		}
	})
	t.Run("while waiting, nothing refused", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		ctx, cancel := context.WithCancel(context.Background())
		c := flowClient(t, p, func(ctx context.Context, _ string) error {
			cancel()
			<-ctx.Done()
			return nil
		})
		check := noLeaks(t)
		_, err := c.RunAuthorizationFlow(ctx)
		check()
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrStateMismatch) || strings.Contains(err.Error(), "refused") {
			t.Fatalf("err = %v, want context.Canceled alone", err)
		}
	})
	t.Run("during the exchange", func(t *testing.T) {
		p := loopauthtest.NewProvider(t, loopauthtest.WithTokenDelay(time.Minute))
		ctx, cancel := context.WithCancel(context.Background())
		c := flowClient(t, p, nil)
		go func() {
			for len(p.AuthorizeRequests()) == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // let the token request start
			cancel()
		}()
		start := time.Now()
		check := noLeaks(t)
		_, err := c.RunAuthorizationFlow(ctx)
		check()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if time.Since(start) > 10*time.Second {
			t.Error("cancellation did not abort the token request")
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c := flowClient(t, p, nil)
		check := noLeaks(t)
		_, err := c.RunAuthorizationFlow(ctx)
		check()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if len(p.AuthorizeRequests()) != 0 {
			t.Error("a cancelled flow opened the browser")
		}
	})
}

// pageGrabber is a user agent that records the callback page.
type pageGrabber struct {
	mu     sync.Mutex
	status int
	header http.Header
	body   string
}

func (g *pageGrabber) open(ctx context.Context, authURL string) error {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequestWithContext(ctx, "GET", authURL, nil)
	resp, err := client.Do(req)
	if err != nil {
		g.mu.Lock()
		g.body = "ERROR: " + err.Error()
		g.mu.Unlock()
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.status, g.header, g.body = resp.StatusCode, resp.Header, string(b)
	return nil
}

// TestFlowProviderError covers C-14 end to end, and the error page.
func TestFlowProviderError(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithAuthorizeError("access_denied", "The user said <b>no</b>", ""))
	g := &pageGrabber{}
	c := flowClient(t, p, g.open)
	check := noLeaks(t)
	_, err := c.RunAuthorizationFlow(context.Background())
	check()
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.ErrorCode != "access_denied" || pe.StatusCode != 0 {
		t.Fatalf("err = %v", err)
	}
	if len(p.TokenRequests()) != 0 {
		t.Error("token request after a provider error")
	}
	if g.status != 400 || !strings.Contains(g.body, "Authentication failed") || !strings.Contains(g.body, "&lt;b&gt;no&lt;/b&gt;") {
		t.Errorf("page %d:\n%s", g.status, g.body)
	}
	assertSecurityHeaders(t, g.header)
}

// TestFlowTokenError: a token endpoint error fails the flow with a
// *ProviderError and shows the error page.
func TestFlowTokenError(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithCodeExchangeError(400, "invalid_grant", "code expired"))
	g := &pageGrabber{}
	c := flowClient(t, p, g.open)
	check := noLeaks(t)
	_, err := c.RunAuthorizationFlow(context.Background())
	check()
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.StatusCode != 400 || pe.ErrorCode != "invalid_grant" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(g.body, "refused to issue tokens") {
		t.Errorf("page:\n%s", g.body)
	}
}

// TestFlowPages covers page selection (renderer, then HTML, then default)
// and the success page's headers (H-02).
func TestFlowPages(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	cases := []struct {
		name string
		opt  func(*CLITokenClientBuilder)
		want string
	}{
		{"default", func(*CLITokenClientBuilder) {}, "Authentication successful"},
		{"html", func(b *CLITokenClientBuilder) { b.SuccessHTML("<p>fixed</p>") }, "<p>fixed</p>"},
		{"renderer wins over html", func(b *CLITokenClientBuilder) {
			b.SuccessHTML("<p>fixed</p>").SuccessRenderer(SuccessPageRendererFunc(func(_ context.Context, pc *PageContext) string {
				return fmt.Sprintf("scopes=%v refresh=%v client=%s redirect=%v", pc.Scopes(), pc.HasRefreshToken(), pc.ClientID(), strings.HasPrefix(pc.RedirectURI(), "http://127.0.0.1:"))
			}))
		}, "scopes=[email offline_access] refresh=true client=test-cli redirect=true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := &pageGrabber{}
			if _, err := flowClient(t, p, g.open, tc.opt).RunAuthorizationFlow(context.Background()); err != nil {
				t.Fatal(err)
			}
			if g.status != 200 || g.body != tc.want && !strings.Contains(g.body, tc.want) {
				t.Errorf("page %d %q, want %q", g.status, g.body, tc.want)
			}
			// H-05: the page echoes neither the code nor the state.
			reqs, toks := p.AuthorizeRequests(), p.TokenRequests()
			last := toks[len(toks)-1]
			for _, secret := range []string{last.Get("code"), reqs[len(reqs)-1].Get("state"), last.Get("code_verifier")} {
				if secret == "" || strings.Contains(g.body, secret) {
					t.Errorf("page contains a flow secret (or the secret is empty): %q", secret)
				}
			}
			assertSecurityHeaders(t, g.header)
		})
	}
	t.Run("error renderer", func(t *testing.T) {
		p := loopauthtest.NewProvider(t, loopauthtest.WithAuthorizeError("access_denied", "", ""))
		g := &pageGrabber{}
		_, err := flowClient(t, p, g.open, func(b *CLITokenClientBuilder) {
			b.ErrorHTML("<p>static</p>").ErrorRenderer(ErrorPageRendererFunc(func(_ context.Context, pc *ErrorPageContext) string {
				var pe *ProviderError
				errors.As(pc.Err(), &pe)
				return "custom:" + pe.ErrorCode
			}))
		}).RunAuthorizationFlow(context.Background())
		if err == nil || g.body != "custom:access_denied" {
			t.Errorf("page %q, err %v", g.body, err)
		}
	})
}

// TestFlowBrowserFallback covers O-06: when the browser cannot be opened,
// or opening is turned off, the URL is printed and the flow keeps waiting.
func TestFlowBrowserFallback(t *testing.T) {
	for _, open := range []bool{true, false} {
		t.Run(fmt.Sprintf("open=%v", open), func(t *testing.T) {
			p := loopauthtest.NewProvider(t)
			urlCh := make(chan string, 1)
			var out syncBuffer
			c := flowClient(t, p, func(context.Context, string) error {
				return errors.New("exec: \"xdg-open\": executable file not found in $PATH")
			}, func(b *CLITokenClientBuilder) {
				b.OpenBrowser(open).OnURL(func(u *url.URL) { urlCh <- u.String() }).Stderr(&out)
			})
			go func() { _ = p.Browser()(context.Background(), <-urlCh) }() // the user copies the URL
			check := noLeaks(t)
			_, err := c.RunAuthorizationFlow(context.Background())
			check()
			if err != nil {
				t.Fatal(err)
			}
			s := out.String()
			if !strings.Contains(s, "To sign in, open this address in a browser") || !strings.Contains(s, p.AuthURL()+"?") {
				t.Errorf("stderr = %q", s)
			}
			if open != strings.Contains(s, "Could not open a browser") {
				t.Errorf("stderr = %q", s)
			}
		})
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFlowRequirePort covers C-34 end to end and the fixed redirect URI.
func TestFlowRequirePort(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	opened := false
	c := flowClient(t, p, func(ctx context.Context, u string) error {
		opened = true
		return p.Browser()(ctx, u)
	}, func(b *CLITokenClientBuilder) { b.RequirePort(port) })
	if _, err := c.RunAuthorizationFlow(context.Background()); !errors.Is(err, ErrPortInUse) || opened {
		t.Fatalf("err = %v, opened = %v", err, opened)
	}
	busy.Close()
	opened = false
	if _, err := c.RunAuthorizationFlow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := p.AuthorizeRequests()[0].Get("redirect_uri"); got != fmt.Sprintf("http://127.0.0.1:%d/callback", port) {
		t.Errorf("redirect_uri = %q", got)
	}
}

// TestFlowRequireDefaultPort covers C-34 on the scheme's default port:
// a browser drops ":80" (":443" for https) from the Host header of the
// provider's redirect, and the flow must still complete.
func TestFlowRequireDefaultPort(t *testing.T) {
	pool, certPEM, keyPEM := testCA(t)
	cert, err := TLSCertificateFromPEM(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		port  int
		https bool
	}{{80, false}, {443, true}} {
		t.Run(strconv.Itoa(tc.port), func(t *testing.T) {
			ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", tc.port))
			if err != nil {
				t.Skipf("cannot bind 127.0.0.1:%d in this process (it needs root or CAP_NET_BIND_SERVICE, and a free port): %v", tc.port, err)
			}
			ln.Close()
			p := loopauthtest.NewProvider(t)
			// A browser: it follows the provider's redirect, sending Host
			// without the default port.
			browser := func(ctx context.Context, authURL string) error {
				tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: pool}}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				req, _ := http.NewRequestWithContext(ctx, "GET", authURL, nil)
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				loc := resp.Header.Get("Location")
				if u, err := url.Parse(loc); err != nil || u.Port() != strconv.Itoa(tc.port) {
					return fmt.Errorf("redirect to %q, want port %d", loc, tc.port)
				}
				req, _ = http.NewRequestWithContext(ctx, "GET", loc, nil)
				req.Host = "127.0.0.1"
				if resp, err = client.Do(req); err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("callback answered %d", resp.StatusCode)
				}
				return nil
			}
			c := flowClient(t, p, browser, func(b *CLITokenClientBuilder) {
				b.RequirePort(tc.port).Timeout(5 * time.Second)
				if tc.https {
					b.UseHTTPSWith(cert)
				}
			})
			check := noLeaks(t)
			_, err = c.RunAuthorizationFlow(context.Background())
			check()
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFlowProviderQuirks runs whole flows against what real providers
// send: lower-case bearer, string expires_in, no scope, no refresh token.
func TestFlowProviderQuirks(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithoutRefreshToken(), loopauthtest.WithTokenResponse(func(_ string, m map[string]any) {
		m["token_type"] = "bearer"
		m["expires_in"] = "120"
		delete(m, "scope")
	}))
	ts, err := flowClient(t, p, nil).RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ts.TokenType() != "Bearer" || ts.RefreshToken() != "" || joinScopes(ts.Scopes()) != "email offline_access" {
		t.Errorf("tokens = %v", ts)
	}
	if d := time.Until(ts.ExpiresAt()); d < 100*time.Second || d > 121*time.Second {
		t.Errorf("expires in %v", d)
	}
}

// TestFlowRefreshRotation: refresh against the provider, with rotation.
func TestFlowRefreshRotation(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithTokenLifetime(30*time.Second))
	c := flowClient(t, p, nil)
	ts, err := c.RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.RefreshIfExpiring(context.Background(), ts, time.Minute)
	if err != nil || !out.Refreshed() {
		t.Fatalf("refresh: %v %v", out, err)
	}
	next := out.TokenSet()
	if next.RefreshToken() == ts.RefreshToken() || next.AccessToken() == ts.AccessToken() {
		t.Error("tokens not rotated")
	}
	// The rotated-out refresh token is now refused by the provider.
	_, err = c.Refresh(context.Background(), ts.RefreshToken())
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.ErrorCode != "invalid_grant" {
		t.Errorf("reusing the old refresh token: err = %v, want invalid_grant", err)
	}

	q := loopauthtest.NewProvider(t, loopauthtest.WithoutRefreshTokenOnRefresh())
	c2 := flowClient(t, q, nil)
	ts2, err := c2.RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r, err := c2.Refresh(context.Background(), ts2.RefreshToken())
	if err != nil || r.RefreshToken() != ts2.RefreshToken() {
		t.Errorf("R-01: refresh token = %q, %v; want the old one kept", r.RefreshToken(), err)
	}
}

// TestFlowTeardown checks that every way a flow can end closes the server,
// releases the port and stops every goroutine it started.
func TestFlowTeardown(t *testing.T) {
	cases := []struct {
		name    string
		opts    []loopauthtest.Option
		opener  func(p *loopauthtest.Provider, cancel func()) BrowserOpener
		timeout time.Duration
		wantErr func(error) bool
	}{
		{"success", nil, nil, 0, func(err error) bool { return err == nil }},
		{"provider error", []loopauthtest.Option{loopauthtest.WithAuthorizeError("access_denied", "", "")}, nil, 0,
			func(err error) bool { var pe *ProviderError; return errors.As(err, &pe) }},
		{"token error", []loopauthtest.Option{loopauthtest.WithCodeExchangeError(400, "invalid_grant", "")}, nil, 0,
			func(err error) bool { var pe *ProviderError; return errors.As(err, &pe) }},
		{"timeout", nil, func(*loopauthtest.Provider, func()) BrowserOpener {
			return func(ctx context.Context, _ string) error { <-ctx.Done(); return nil }
		}, 200 * time.Millisecond, func(err error) bool { return errors.Is(err, ErrTimeout) }},
		{"cancel", nil, func(_ *loopauthtest.Provider, cancel func()) BrowserOpener {
			return func(ctx context.Context, _ string) error { cancel(); <-ctx.Done(); return nil }
		}, 0, func(err error) bool { return errors.Is(err, context.Canceled) }},
		{"browser failure then timeout", nil, func(*loopauthtest.Provider, func()) BrowserOpener {
			return func(context.Context, string) error { return errors.New("no browser") }
		}, 200 * time.Millisecond, func(err error) bool { return errors.Is(err, ErrTimeout) }},
		{"opener that ignores the page", nil, func(p *loopauthtest.Provider, _ func()) BrowserOpener {
			return func(ctx context.Context, u string) error {
				err := p.Browser()(ctx, u)
				<-ctx.Done() // a launcher that lingers until told to stop
				return err
			}
		}, 0, func(err error) bool { return err == nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, tc.opts...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var opener BrowserOpener
			if tc.opener != nil {
				opener = tc.opener(p, cancel)
			}
			var port int
			c := flowClient(t, p, opener, func(b *CLITokenClientBuilder) {
				b.OnServerReady(func(p int) { port = p })
				if tc.timeout > 0 {
					b.Timeout(tc.timeout)
				}
			})
			check := noLeaks(t)
			_, err := c.RunAuthorizationFlow(ctx)
			check()
			if !tc.wantErr(err) {
				t.Fatalf("err = %v", err)
			}
			assertPortReleased(t, port)
		})
	}
}

// TestFlowGrantedScopes ports the Rust crate's page_context_scopes tests:
// the token set and the success page see the granted scopes, or the
// requested ones when the provider does not say.
func TestFlowGrantedScopes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []loopauthtest.Option
		want string
	}{
		{"narrowed grant", []loopauthtest.Option{loopauthtest.WithGrantedScope("read")}, "read"},
		{"scope omitted", []loopauthtest.Option{loopauthtest.WithTokenResponse(func(_ string, m map[string]any) { delete(m, "scope") })}, "read write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, tc.opts...)
			var pageScopes []Scope
			c, err := NewBuilder().ClientID("c").AuthURL(p.AuthURL()).TokenURL(p.TokenURL()).
				AddScopes("read", "write").BrowserOpener(p.Browser()).
				SuccessRenderer(SuccessPageRendererFunc(func(_ context.Context, pc *PageContext) string {
					pageScopes = pc.Scopes()
					return "ok"
				})).Build()
			if err != nil {
				t.Fatal(err)
			}
			ts, err := c.RunAuthorizationFlow(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := joinScopes(ts.Scopes()); got != tc.want {
				t.Errorf("token set scopes = %q, want %q", got, tc.want)
			}
			if got := joinScopes(pageScopes); got != tc.want {
				t.Errorf("page scopes = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRefreshAgainstProvider ports the Rust refresh_flow and
// refresh_token_preservation tests that need a provider.
func TestRefreshAgainstProvider(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithRefreshError(500, "server_error", "down"))
	c := flowClient(t, p, nil)
	ts, err := c.RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Refresh(context.Background(), ts.RefreshToken())
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.StatusCode != 500 {
		t.Errorf("non-2xx refresh: err = %v, want *ProviderError with status 500", err)
	}

	// A stored set with expires_at 0 (the epoch) is refreshed, and the
	// refresh token survives a response that omits it.
	q := loopauthtest.NewProvider(t, loopauthtest.WithoutRefreshTokenOnRefresh())
	c2 := flowClient(t, q, nil)
	first, err := c2.RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var stored TokenSet
	if err := json.Unmarshal([]byte(`{"access_token":"old","refresh_token":"`+first.RefreshToken()+`","expires_at":0,"token_type":"Bearer"}`), &stored); err != nil {
		t.Fatal(err)
	}
	out, err := c2.RefreshIfExpiring(context.Background(), &stored, time.Minute)
	if err != nil || !out.Refreshed() {
		t.Fatalf("refresh of an expired stored set: %v, %v", out, err)
	}
	if out.TokenSet().RefreshToken() != first.RefreshToken() || out.TokenSet().AccessToken() == "old" {
		t.Errorf("refreshed set = %v", out.TokenSet())
	}
}

// TestFlowStopsListeningEarly covers C-24 and RFC 8252 §8.3: once the valid
// callback is taken nothing can complete the flow (a replay gets 409), the
// port stays open only for the browser to fetch its page at /done (H-06),
// and it is released as soon as that page has been written, before the
// flow returns.
func TestFlowStopsListeningEarly(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	var port int
	var replay int
	var callbackURL string
	released := make(chan error, 1)
	opener := func(ctx context.Context, authURL string) error {
		client := &http.Client{
			Transport: &http.Transport{DisableKeepAlives: true},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if req.URL.Path == "/callback" {
					callbackURL = req.URL.String()
				}
				return nil
			},
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", authURL, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// The page has been read: the port is closed (or closing).
		deadline := time.Now().Add(5 * time.Second)
		for {
			conn, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err != nil {
				released <- nil
				return nil
			}
			conn.Close()
			if time.Now().After(deadline) {
				released <- errors.New("the port still accepted connections after /done was served")
				return nil
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	c := flowClient(t, p, opener, func(b *CLITokenClientBuilder) {
		b.OnServerReady(func(p int) { port = p })
		b.SuccessRenderer(SuccessPageRendererFunc(func(context.Context, *PageContext) string {
			// The exchange is done and the browser not yet answered: the
			// same callback again is refused.
			resp, err := http.Get(callbackURL)
			if err == nil {
				replay = resp.StatusCode
				resp.Body.Close()
			}
			return "ok"
		}))
	})
	if _, err := c.RunAuthorizationFlow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if replay != http.StatusConflict {
		t.Errorf("a replay of the callback got %d, want 409", replay)
	}
	if err := <-released; err != nil {
		t.Error(err)
	}
}

// TestReservedParamWarning: a reserved parameter from OnAuthURL is dropped
// with a warning in the log, naming the key and never its value.
func TestReservedParamWarning(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := validBuilder().Logger(logger).OnAuthURL(func(p *ExtraAuthParams) {
		p.Append("redirect_uri", "https://evil.example/steal").Append("ok", "1")
	}).Build()
	if err != nil {
		t.Fatal(err)
	}
	u := c.authorizationURL("http://127.0.0.1:1/callback", newFlowSecrets(false))
	if u.Query().Get("redirect_uri") != "http://127.0.0.1:1/callback" || u.Query().Get("ok") != "1" {
		t.Errorf("query = %v", u.Query())
	}
	out := buf.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "key=redirect_uri") || strings.Contains(out, "evil") {
		t.Errorf("log = %q", out)
	}
}

// TestPublicClientSendsNoSecret: without ClientSecret, no client_secret
// parameter is sent; PKCE alone authenticates the exchange.
func TestPublicClientSendsNoSecret(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	if _, err := flowClient(t, p, nil).RunAuthorizationFlow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if form := p.TokenRequests()[0]; form.Has("client_secret") || form.Get("code_verifier") == "" {
		t.Errorf("token form = %v", form)
	}
}

// TestFlowLogsNoSecret covers L-01 and L-02 across a whole flow: with
// debug logging on, through forged callbacks, a browser failure and a
// refresh, no log line holds a token, code, verifier, state or secret.
func TestFlowLogsNoSecret(t *testing.T) {
	p := loopauthtest.NewProvider(t, loopauthtest.WithClient("test-cli", secretClient))
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	failing := true
	c := flowClient(t, p, func(ctx context.Context, u string) error {
		if failing {
			failing = false
			go func() { _ = hostileThenReal(t, p)(context.Background(), u) }()
			return errors.New("no browser")
		}
		return nil
	}, func(b *CLITokenClientBuilder) { b.Logger(logger).ClientSecret(secretClient) })
	ts, err := c.RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(context.Background(), ts.RefreshToken()); err != nil {
		t.Fatal(err)
	}
	if logs.String() == "" {
		t.Fatal("nothing was logged; the test would prove nothing")
	}
	tok := p.TokenRequests()[0]
	auth := p.AuthorizeRequests()[0]
	for _, secret := range []string{tok.Get("code"), tok.Get("code_verifier"), auth.Get("state"), secretClient, ts.AccessToken(), ts.RefreshToken()} {
		if secret == "" || strings.Contains(logs.String(), secret) {
			t.Errorf("log holds a secret (or the secret is empty): %q", secret)
		}
	}
}

// TestOnTokenSetChange: the hook sees every new set, from a sign-in and
// from each refresh.
func TestOnTokenSetChange(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	var seen []*TokenSet
	c := flowClient(t, p, nil, func(b *CLITokenClientBuilder) {
		b.OnTokenSetChange(func(ts *TokenSet) { seen = append(seen, ts) })
	})
	ts, err := c.RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.RefreshIfExpiring(context.Background(), ts, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != ts || seen[1] != out.TokenSet() {
		t.Fatalf("hook saw %d sets", len(seen))
	}
	if _, err := c.RefreshIfExpiring(context.Background(), out.TokenSet(), time.Second); err != nil || len(seen) != 2 {
		t.Errorf("a refresh that was not needed called the hook: %v", err)
	}
}
