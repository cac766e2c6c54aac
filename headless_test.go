package loopauth

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of testdata/progress")

// TestProgressPrinterGolden pins what a user reads on the terminal, in
// testdata/progress (go test -run TestProgressPrinterGolden -update
// rewrites them).
func TestProgressPrinterGolden(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	base := ProgressEvent{
		Port: 40123, Deadline: now.Add(5*time.Minute + 200*time.Millisecond),
		URL:      "https://login.example/authorize?client_id=cli&code_challenge=abc&code_challenge_method=S256&redirect_uri=http%3A%2F%2F127.0.0.1%3A40123%2Fcallback&response_type=code&state=xyz",
		ShortURL: "http://127.0.0.1:40123/",
	}
	with := func(f func(*ProgressEvent)) ProgressEvent { e := base; f(&e); return e }
	cases := []struct {
		name string
		ev   ProgressEvent
	}{
		{"headless-ssh-paste", with(func(e *ProgressEvent) {
			e.Kind, e.Reason, e.Paste = ProgressHeadless, "SSH session (SSH_CONNECTION is set)", true
		})},
		{"headless-no-paste", with(func(e *ProgressEvent) {
			e.Kind, e.Reason = ProgressHeadless, "container without a display"
		})},
		{"browser-failed", with(func(e *ProgressEvent) {
			e.Kind, e.Err, e.Paste = ProgressBrowserFailed, errors.New("exec: \x1b[31mxdg-open\x07: not found"), true
		})},
		{"browser-opened", with(func(e *ProgressEvent) { e.Kind = ProgressBrowserOpened })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			printProgress(&buf, tc.ev, now)
			golden := filepath.Join("testdata", "progress", tc.name+".txt")
			if *updateGolden {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if buf.String() != string(want) {
				t.Errorf("printed:\n%s\nwant (%s):\n%s", buf.String(), golden, want)
			}
			if strings.ContainsAny(buf.String(), "\x1b\x07") {
				t.Errorf("control characters reach the terminal: %q", buf.String())
			}
		})
	}
	// Every other step prints nothing: the default is quiet.
	for k := ProgressServerReady; k <= ProgressDone; k++ {
		switch k {
		case ProgressBrowserOpened, ProgressBrowserFailed, ProgressHeadless:
			continue
		}
		var buf bytes.Buffer
		printProgress(&buf, with(func(e *ProgressEvent) { e.Kind = k; e.Err = errors.New("x") }), now)
		if buf.Len() != 0 {
			t.Errorf("kind %d printed %q", k, buf.String())
		}
	}
}

// progressLog records a flow's events for a test.
type progressLog struct {
	mu     sync.Mutex
	events []ProgressEvent
	on     map[ProgressKind]func(ProgressEvent)
}

func (l *progressLog) record(e ProgressEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	f := l.on[e.Kind]
	l.mu.Unlock()
	if f != nil {
		f(e)
	}
}

func (l *progressLog) kinds() []ProgressKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ProgressKind
	for _, e := range l.events {
		out = append(out, e.Kind)
	}
	return out
}

func equalKinds(a, b []ProgressKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// noRedirectClient is a user agent that stops at the first redirect.
var noRedirectClient = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true},
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// TestHeadlessShortURL: a headless flow opens nothing, tells the user the
// short URL, which redirects (302) to the authorization URL, and the sign-in
// completes through it.
func TestHeadlessShortURL(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	log := &progressLog{}
	var visitErr error
	visited := make(chan struct{})
	log.on = map[ProgressKind]func(ProgressEvent){ProgressHeadless: func(e ProgressEvent) {
		go func() {
			defer close(visited)
			visitErr = visitShortURL(e)
			if visitErr == nil {
				visitErr = p.Browser()(context.Background(), e.URL)
			}
		}()
	}}
	c := flowClient(t, p, func(context.Context, string) error {
		t.Error("a headless flow called the opener")
		return nil
	}, func(b *CLITokenClientBuilder) { b.Headless(true).OnProgress(log.record).PasteFrom(nil) })
	check := noLeaks(t)
	ts, err := c.RunAuthorizationFlow(context.Background())
	<-visited
	check()
	if err != nil || visitErr != nil {
		t.Fatalf("flow: %v; browser: %v", err, visitErr)
	}
	if ts.AccessToken() == "" {
		t.Error("no access token")
	}
	want := []ProgressKind{ProgressServerReady, ProgressURLReady, ProgressHeadless, ProgressCallbackReceived, ProgressExchanging, ProgressDone}
	if got := log.kinds(); !equalKinds(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	e := log.events[2]
	if e.Reason == "" || e.Paste || e.Port == 0 || e.ShortURL != "http://127.0.0.1:"+strconv.Itoa(e.Port)+"/" || time.Until(e.Deadline) > 10*time.Second {
		t.Errorf("headless event = %+v", e)
	}
}

// visitShortURL checks the short URL's answers: a 302 to the authorization
// URL for the browser, the refusals of every other caller.
func visitShortURL(e ProgressEvent) error {
	resp, err := noRedirectClient.Get(e.ShortURL)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != e.URL {
		return errors.New("short URL answered " + resp.Status + " to " + resp.Header.Get("Location"))
	}
	// DNS rebinding: another Host is refused, as on every path.
	req, _ := http.NewRequest(http.MethodGet, e.ShortURL, nil)
	req.Host = "attacker.example:" + strconv.Itoa(e.Port)
	if resp, err = noRedirectClient.Do(req); err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest || resp.Header.Get("Location") != "" {
		return errors.New("short URL with a foreign Host answered " + resp.Status)
	}
	// A page's fetch or <img> is not a top-level navigation.
	req, _ = http.NewRequest(http.MethodGet, e.ShortURL, nil)
	req.Header.Set("Sec-Fetch-Mode", "no-cors")
	req.Header.Set("Sec-Fetch-Dest", "image")
	if resp, err = noRedirectClient.Do(req); err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		return errors.New("short URL fetched by an <img> answered " + resp.Status)
	}
	return nil
}

// TestPasteBack races paste-back against the loopback server: the pasted
// address of a sign-in completes it, bad pastes get a reason and leave the
// prompt open, a provider error pasted ends the flow with it, the end of
// the input leaves the server waiting, and nothing pasted is printed or
// logged.
func TestPasteBack(t *testing.T) {
	cases := []struct {
		name    string
		opts    []loopauthtest.Option
		paste   func(landing string) []string // lines to paste; "" closes the input
		browser bool                          // the browser then completes the flow
		want    ProgressKind                  // the receipt event
		wantErr func(error) bool
		refusal int // refusal lines expected
	}{
		{name: "full address", paste: func(l string) []string { return []string{l} }, want: ProgressPasteReceived},
		{name: "query only, after bad pastes", paste: func(l string) []string {
			u, _ := url.Parse(l)
			bad := strings.Replace(l, "state=", "state=x", 1)
			return []string{"hello", "   ", strings.Repeat("a", maxPasteBytes+10), bad, "?" + u.RawQuery + "#frag"}
		}, want: ProgressPasteReceived, refusal: 3},
		{name: "provider error", opts: []loopauthtest.Option{loopauthtest.WithAuthorizeError("access_denied", "no", "")},
			paste: func(l string) []string { return []string{l} }, want: ProgressPasteReceived,
			wantErr: func(err error) bool {
				var pe *ProviderError
				return errors.As(err, &pe) && pe.ErrorCode == "access_denied"
			}},
		{name: "end of input leaves the server waiting", paste: func(l string) []string {
			return []string{strings.Replace(l, "state=", "state=x", 1), ""}
		}, browser: true, want: ProgressCallbackReceived, refusal: 1},
		{name: "server wins", paste: func(string) []string { return nil }, browser: true, want: ProgressCallbackReceived},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, tc.opts...)
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			defer pw.Close()
			var stderr, logs syncBuffer
			var landing string
			log := &progressLog{}
			var bgErr error
			bg := make(chan struct{})
			log.on = map[ProgressKind]func(ProgressEvent){ProgressHeadless: func(e ProgressEvent) {
				if !e.Paste {
					t.Error("headless event without paste-back")
				}
				go func() {
					defer close(bg)
					if landing, bgErr = loopauthtest.LandingAddress(context.Background(), e.URL); bgErr != nil {
						return
					}
					for _, line := range tc.paste(landing) {
						if line == "" {
							pw.Close()
							continue
						}
						if _, bgErr = io.WriteString(pw, line+"\n"); bgErr != nil {
							return
						}
					}
					if tc.browser {
						time.Sleep(50 * time.Millisecond) // the pastes are read first
						bgErr = p.Browser()(context.Background(), e.URL)
					}
				}()
			}}
			c := flowClient(t, p, nil, func(b *CLITokenClientBuilder) {
				b.Headless(true).OnProgress(func(e ProgressEvent) { log.record(e); printProgress(&stderr, e, time.Now()) }).
					PasteFrom(pr).Stderr(&stderr).
					Logger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			})
			check := noLeaks(t)
			ts, err := c.RunAuthorizationFlow(context.Background())
			<-bg
			check()
			if bgErr != nil {
				t.Fatal(bgErr)
			}
			switch {
			case tc.wantErr != nil && !tc.wantErr(err):
				t.Fatalf("err = %v", err)
			case tc.wantErr == nil && (err != nil || ts.AccessToken() == ""):
				t.Fatalf("err = %v, tokens %v", err, ts)
			}
			if kinds := log.kinds(); !containsKind(kinds, tc.want) || containsKind(kinds, ProgressPasteReceived) && containsKind(kinds, ProgressCallbackReceived) {
				t.Errorf("events %v, want %v and not both receipts", kinds, tc.want)
			}
			if n := strings.Count(stderr.String(), "That address cannot finish this sign-in"); n != tc.refusal {
				t.Errorf("%d refusal lines, want %d:\n%s", n, tc.refusal, stderr.String())
			}
			lu, _ := url.Parse(landing)
			// The state is in the authorization URL printed for the user;
			// the code and what was pasted are not shown anywhere.
			for _, secret := range []string{lu.Query().Get("code"), "hello"} {
				if secret != "" && (strings.Contains(stderr.String(), secret) || strings.Contains(logs.String(), secret)) {
					t.Errorf("pasted %q reached the terminal or the log", secret)
				}
			}
			if tc.want == ProgressPasteReceived && len(p.TokenRequests()) > 1 {
				t.Error("more than one code exchanged")
			}
		})
	}
}

func containsKind(kinds []ProgressKind, k ProgressKind) bool {
	for _, got := range kinds {
		if got == k {
			return true
		}
	}
	return false
}

// TestPasteAfterClaim: once the server took the answer, a paste of it is
// refused, and so is one after the flow stopped waiting.
func TestPasteAfterClaim(t *testing.T) {
	srv := startTestServer(t)
	got := make(chan callback, 1)
	go func() { got <- <-srv.results }()
	if why := srv.paste("http://127.0.0.1:1/callback?code=c&state=" + testState); why != "" {
		t.Fatalf("first paste refused: %s", why)
	}
	if cb := <-got; !cb.pasted || cb.code != "c" {
		t.Errorf("callback = %+v", cb)
	}
	if why := srv.paste("code=c&state=" + testState); !strings.Contains(why, "already") {
		t.Errorf("second paste: %q", why)
	}
	srv.close()
	srv2 := startTestServer(t)
	srv2.close()
	if why := srv2.paste("code=c&state=" + testState); !strings.Contains(why, "stopped waiting") {
		t.Errorf("paste after close: %q", why)
	}
}

// TestHeadlessDecision: who decides whether a browser is opened.
func TestHeadlessDecision(t *testing.T) {
	yes, no := true, false
	custom := func(context.Context, string) error { return nil }
	cases := []struct {
		name     string
		s        settings
		system   bool
		ssh      bool
		headless bool
	}{
		{"desktop, system browser", settings{}, true, false, false},
		{"SSH, system browser", settings{}, true, true, true},
		{"SSH, the caller's opener", settings{opener: custom}, false, true, false},
		{"SSH, Headless(false)", settings{headless: &no}, true, true, false},
		{"desktop, Headless(true)", settings{headless: &yes}, true, false, true},
		{"OpenBrowser(false)", settings{noBrowser: true, headless: &no}, true, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []string{"SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "BROWSER"} {
				t.Setenv(v, "")
			}
			t.Setenv("DISPLAY", ":0")
			if tc.ssh {
				t.Setenv("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22")
			}
			c := &CLITokenClient{settings: tc.s, systemOpener: tc.system}
			if got := c.headlessReason() != ""; got != tc.headless {
				t.Errorf("headless = %v (%q), want %v", got, c.headlessReason(), tc.headless)
			}
		})
	}
}

// TestSystemBrowserSkippedWhenHeadless: over SSH the system launcher is
// never started, and the user is told how to sign in instead.
func TestSystemBrowserSkippedWhenHeadless(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "launched")
	if err := os.WriteFile(filepath.Join(dir, "xdg-open"), []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	t.Setenv("BROWSER", "")
	t.Setenv("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22")
	p := loopauthtest.NewProvider(t)
	var stderr syncBuffer
	done := make(chan error, 1)
	b := NewBuilder().ClientID("test-cli").AuthURL(p.AuthURL()).TokenURL(p.TokenURL()).Timeout(10 * time.Second).
		Stderr(&stderr).PasteFrom(nil).
		OnServerReady(func(int) {})
	b.OnProgress(func(e ProgressEvent) {
		ProgressPrinter(&stderr)(e)
		if e.Kind == ProgressHeadless {
			go func() {
				err := visitShortURL(e)
				if err == nil {
					err = p.Browser()(context.Background(), e.URL)
				}
				done <- err
			}()
		}
	})
	c, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunAuthorizationFlow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the system launcher was started over SSH")
	}
	out := stderr.String()
	for _, want := range []string{"SSH_CONNECTION is set", "ssh -L ", "http://127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
}

// TestDefaultProgressOutput: with no OnProgress, the short URL is printed
// every time: one line after a browser was opened (a launcher may succeed
// and show nothing), the full text when it failed.
func TestDefaultProgressOutput(t *testing.T) {
	for _, fail := range []bool{false, true} {
		p := loopauthtest.NewProvider(t)
		var stderr syncBuffer
		var port int
		browsed := make(chan error, 1)
		c := flowClient(t, p, func(ctx context.Context, u string) error {
			// Like xdg-open: the browser goes on after the launcher returns.
			go func() { browsed <- p.Browser()(context.Background(), u) }()
			if fail {
				return errors.New("no launcher")
			}
			return nil
		}, func(b *CLITokenClientBuilder) {
			b.Stderr(&stderr).PasteFrom(nil).OnServerReady(func(p int) { port = p })
		})
		_, err := c.RunAuthorizationFlow(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := <-browsed; err != nil {
			t.Fatal(err)
		}
		short := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
		out := stderr.String()
		if !fail && out != "Opened your browser. If nothing appeared, open: "+short+"\n" {
			t.Errorf("after opening, printed %q", out)
		}
		if fail && (!strings.Contains(out, "Could not open a browser (no launcher)") || !strings.Contains(out, "    "+short+"\n") || !strings.Contains(out, "ssh -L "+strconv.Itoa(port)+":127.0.0.1:"+strconv.Itoa(port)+" HOST")) {
			t.Errorf("after a failure, printed:\n%s", out)
		}
	}
}

// TestFlowLocalhost: with UseLocalhost the redirect URI names localhost,
// both loopback addresses answer on its port, and only the Host
// localhost:PORT is accepted.
func TestFlowLocalhost(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	var probeErr error
	c := flowClient(t, p, func(ctx context.Context, u string) error {
		probeErr = probeLocalhost(u)
		return p.Browser()(ctx, u)
	}, func(b *CLITokenClientBuilder) { b.UseLocalhost() })
	check := noLeaks(t)
	_, err := c.RunAuthorizationFlow(context.Background())
	check()
	if err != nil || probeErr != nil {
		t.Fatalf("flow: %v; probe: %v", err, probeErr)
	}
	if got := p.AuthorizeRequests()[0].Get("redirect_uri"); !strings.HasPrefix(got, "http://localhost:") || !strings.HasSuffix(got, "/callback") {
		t.Errorf("redirect_uri = %q", got)
	}
}

// probeLocalhost asks the short URL of the server behind authURL's
// redirect URI on 127.0.0.1 and on ::1, with the Host localhost:PORT and
// with the IP literal.
func probeLocalhost(authURL string) error {
	u, err := url.Parse(authURL)
	if err != nil {
		return err
	}
	redirect, err := url.Parse(u.Query().Get("redirect_uri"))
	if err != nil {
		return err
	}
	port := redirect.Port()
	for _, tc := range []struct {
		addr, host string
		status     int
	}{
		{"127.0.0.1", "localhost:" + port, http.StatusFound},
		{"[::1]", "localhost:" + port, http.StatusFound},
		{"127.0.0.1", "127.0.0.1:" + port, http.StatusMisdirectedRequest},
		{"[::1]", "[::1]:" + port, http.StatusMisdirectedRequest},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+tc.addr+":"+port+"/", nil)
		req.Host = tc.host
		resp, err := noRedirectClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			return errors.New(tc.addr + " with Host " + tc.host + " answered " + resp.Status)
		}
	}
	return nil
}
