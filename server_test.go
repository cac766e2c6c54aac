package loopauth

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// testState is a syntactically valid state (43 base64url characters).
const testState = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func startTestServer(t *testing.T) *callbackServer {
	t.Helper()
	return startTestServerWith(t, slog.New(discardHandler{}), time.Now, nil)
}

// startTestServerWith starts a callback server with its logger, clock and
// TLS configuration (nil for http).
func startTestServerWith(t *testing.T, logger *slog.Logger, now func() time.Time, tlsConfig *tls.Config) *callbackServer {
	t.Helper()
	ln, err := listenLoopback(context.Background(), 0, false, false, slog.New(discardHandler{}))
	if err != nil {
		t.Fatal(err)
	}
	var wrap func(net.Listener) net.Listener
	if tlsConfig != nil {
		wrap = func(ln net.Listener) net.Listener { return tls.NewListener(ln, tlsConfig) }
	}
	s := startCallbackServer(ln, "127.0.0.1", testState, logger, log.New(io.Discard, "", 0), wrap, now)
	t.Cleanup(s.close)
	return s
}

// rawRequest sends bytes to the server and returns the response, so tests
// can send what a browser never would (bad Host, absolute-form targets...).
func rawRequest(t *testing.T, s *callbackServer, req string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", s.host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func get(target, host string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
}

// assertStillWaiting fails if the server handed any callback to the flow.
func assertStillWaiting(t *testing.T, s *callbackServer) {
	t.Helper()
	select {
	case cb := <-s.results:
		t.Fatalf("a refused request reached the flow: %+v", cb.err)
	default:
	}
}

// TestCallbackRefusesWithoutEndingFlow covers rows C-02..C-07, C-13, C-19,
// C-20, H-07 and H-10: requests that are not the provider's redirect with
// the right state get a 4xx page, reveal nothing, and the flow keeps
// waiting.
func TestCallbackRefusesWithoutEndingFlow(t *testing.T) {
	s := startTestServer(t)
	host := s.host
	other := fmt.Sprintf("127.0.0.1:%d", s.port+1)
	wrongSameLen := strings.Repeat("B", len(testState))
	cases := []struct {
		id, name string
		req      string
		status   int
	}{
		{"C-02", "DNS rebinding host", get("/callback?code=c&state="+testState, fmt.Sprintf("attacker.example:%d", s.port)), 421},
		{"C-03", "other port in Host", get("/callback?code=c&state="+testState, other), 421},
		{"C-03", "missing Host (HTTP/1.0)", "GET /callback?code=c&state=" + testState + " HTTP/1.0\r\n\r\n", 421},
		{"C-03", "absolute-form target naming another host", get("http://evil.example/callback?code=c&state="+testState, host), 421},
		{"C-03", "localhost Host is not the redirect URI's", get("/callback?code=c&state="+testState, fmt.Sprintf("localhost:%d", s.port)), 421},
		{"C-04", "root", get("/", host), 404},
		{"C-04", "favicon", get("/favicon.ico", host), 404},
		{"C-04", "trailing slash", get("/callback/?code=c&state="+testState, host), 404},
		{"C-04", "upper case", get("/CALLBACK?code=c&state="+testState, host), 404},
		{"C-04", "double slash", get("//callback?code=c&state="+testState, host), 404},
		{"C-04", "dot segment", get("/./callback?code=c&state="+testState, host), 404},
		{"C-04", "percent-encoded path", get("/%63allback?code=c&state="+testState, host), 404},
		{"C-04", "path parameter", get("/callback;x?code=c&state="+testState, host), 404},
		{"C-05", "POST", "POST /callback?code=c&state=" + testState + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 0\r\n\r\n", 405},
		{"C-05", "HEAD", "HEAD /callback?code=c&state=" + testState + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n", 405},
		{"C-05", "OPTIONS preflight", "OPTIONS /callback HTTP/1.1\r\nHost: " + host + "\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: GET\r\n\r\n", 405},
		{"C-05", "PUT", "PUT /callback HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 0\r\n\r\n", 405},
		{"C-05", "TRACE", "TRACE /callback HTTP/1.1\r\nHost: " + host + "\r\n\r\n", 405},
		{"C-06", "code without state", get("/callback?code=c", host), 400},
		{"C-31", "no parameters (code sent in a fragment)", get("/callback", host), 400},
		{"C-07", "wrong state of same length", get("/callback?code=c&state="+wrongSameLen, host), 400},
		{"C-07", "state differing in case", get("/callback?code=c&state="+strings.ToLower(testState), host), 400},
		{"C-07", "state prefix", get("/callback?code=c&state="+testState[:20], host), 400},
		{"C-09", "two wrong states", get("/callback?code=c&state=x&state=y", host), 400},
		{"C-13", "error without state", get("/callback?error=access_denied", host), 400},
		{"C-13", "error with wrong state", get("/callback?error=access_denied&state="+wrongSameLen, host), 400},
		{"C-19", "semicolon separator", get("/callback?code=a;state="+testState, host), 400},
		{"C-19", "bad percent escape", get("/callback?code=%zz&state="+testState, host), 400},
		{"C-20", "too many parameters", get("/callback?state="+testState+strings.Repeat("&a=b", 40), host), 400},
		{"C-20", "query too long", get("/callback?state="+testState+"&code="+strings.Repeat("x", maxCallbackQueryBytes), host), 414},
		{"H-07", "next parameter without state", get("/callback?next=https://evil.example", host), 400},
		{"C-32", "image request with the right state", "GET /callback?code=c&state=" + testState + " HTTP/1.1\r\nHost: " + host + "\r\nSec-Fetch-Dest: image\r\nSec-Fetch-Mode: no-cors\r\n\r\n", 400},
		{"C-32", "fetch with the right state", "GET /callback?code=c&state=" + testState + " HTTP/1.1\r\nHost: " + host + "\r\nSec-Fetch-Dest: empty\r\nSec-Fetch-Mode: cors\r\nOrigin: https://evil.example\r\n\r\n", 400},
		{"C-32", "iframe with the right state", "GET /callback?code=c&state=" + testState + " HTTP/1.1\r\nHost: " + host + "\r\nSec-Fetch-Dest: iframe\r\nSec-Fetch-Mode: navigate\r\n\r\n", 400},
	}
	for _, tc := range cases {
		t.Run(tc.id+" "+tc.name, func(t *testing.T) {
			resp := rawRequest(t, s, tc.req)
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("refusal redirects to %q", loc)
			}
			if acao := resp.Header.Get("Access-Control-Allow-Origin"); acao != "" {
				t.Errorf("CORS header sent: %q", acao)
			}
			if tc.status == 405 && resp.Header.Get("Allow") != "GET" {
				t.Errorf("Allow = %q, want GET", resp.Header.Get("Allow"))
			}
			body, _ := io.ReadAll(resp.Body)
			// H-10: nothing from the request, and never the expected state.
			for _, leak := range []string{testState, "evil", "access_denied", "favicon"} {
				if strings.Contains(string(body), leak) {
					t.Errorf("page reflects %q", leak)
				}
			}
			assertSecurityHeaders(t, resp.Header)
			assertStillWaiting(t, s)
		})
	}
	if total, bad := s.refusals(); total != int64(len(cases)) || bad == 0 || bad >= total {
		t.Errorf("refusals counted: %d, %d with a bad state; want %d, some but not all with a bad state", total, bad, len(cases))
	}
}

// assertSecurityHeaders checks row H-02 on any page.
func assertSecurityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"Referrer-Policy":        "no-referrer",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
		}
	}
}

// TestCallbackMalformedWithRightState covers C-09..C-12, C-17, C-18: a
// request with the right state but an unusable response ends the flow
// with ErrCallbackMalformed and no code.
func TestCallbackMalformedWithRightState(t *testing.T) {
	cases := []struct{ id, query string }{
		{"C-09", "state=" + testState + "&state=" + testState + "&code=c"},
		{"C-09", "state=" + testState + "&state=other&code=c"},
		{"C-10", "state=" + testState + "&code=a&code=b"},
		{"C-11", "state=" + testState + "&code=a&error=access_denied"},
		{"C-12", "state=" + testState + "&code="},
		{"C-12", "state=" + testState},
		{"C-17", "state=" + testState + "&code=" + strings.Repeat("x", maxCodeBytes+1)},
		{"C-18", "state=" + testState + "&code=ab%00cd"},
		{"C-18", "state=" + testState + "&code=ab%0D%0Acd"},
		{"C-18", "state=" + testState + "&code=ab%7Fcd"},
		{"C-18", "state=" + testState + "&code=caf%C3%A9"},
		{"C-28", "state=" + testState + "&code=c&iss=a&iss=b"},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			s := startTestServer(t)
			respCh := make(chan *http.Response, 1)
			go func() {
				resp, err := http.Get("http://" + s.host + "/callback?" + tc.query)
				if err == nil {
					resp.Body.Close()
				}
				respCh <- resp
			}()
			cb := <-s.results
			if !errors.Is(cb.err, ErrCallbackMalformed) || cb.code != "" {
				t.Fatalf("callback = code %q, err %v; want ErrCallbackMalformed", cb.code, cb.err)
			}
			cb.reply <- "<p>error page</p>"
			if resp := <-respCh; resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Errorf("browser did not get the 400 error page: %v", resp)
			}
		})
	}
}

// TestCallbackValidOnce covers C-14, C-24 and C-25: the right state ends
// the flow once; a concurrent or later duplicate is refused and never
// reaches the flow.
func TestCallbackValidOnce(t *testing.T) {
	s := startTestServer(t)
	url := "http://" + s.host + "/callback?code=the-code&state=" + testState
	const n = 8
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(url)
			if err != nil {
				statuses <- 0
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(body) != "<p>done</p>" {
				t.Errorf("winner got body %q", body)
			}
			statuses <- resp.StatusCode
		}()
	}
	cb := <-s.results
	if cb.err != nil || cb.code != "the-code" {
		t.Fatalf("callback = %q, %v", cb.code, cb.err)
	}
	cb.reply <- "<p>done</p>"
	wg.Wait()
	close(statuses)
	ok, conflict := 0, 0
	for st := range statuses {
		switch st {
		case 200:
			ok++
		case 409:
			conflict++
		case 0:
			// Connection refused: the winner's page at /done was served
			// and the port released before this request connected.
			conflict++
		default:
			t.Errorf("unexpected status %d", st)
		}
	}
	if ok != 1 || conflict != n-1 {
		t.Errorf("ok = %d, conflict = %d; want 1 and %d", ok, conflict, n-1)
	}
	assertStillWaiting(t, s)

	// C-14: an error with the right state is a ProviderError.
	s2 := startTestServer(t)
	go func() {
		resp, err := http.Get("http://" + s2.host + "/callback?error=access_denied&error_description=%3Cscript%3E%1B%5B31m&state=" + testState)
		if err == nil {
			resp.Body.Close()
		}
	}()
	cb = <-s2.results
	var pe *ProviderError
	if !errors.As(cb.err, &pe) || pe.ErrorCode != "access_denied" || pe.StatusCode != 0 {
		t.Fatalf("err = %v, want ProviderError access_denied", cb.err)
	}
	if strings.ContainsAny(pe.ErrorDescription, "\x1b") {
		t.Errorf("description keeps control characters: %q", pe.ErrorDescription)
	}
	cb.reply <- "x"
}

// recordHandler keeps every log record, for tests that count log lines.
type recordHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// lines returns each record as "LEVEL message key=value...".
func (h *recordHandler) lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		line := r.Level.String() + " " + r.Message
		r.Attrs(func(a slog.Attr) bool {
			line += " " + a.String()
			return true
		})
		out = append(out, line)
	}
	return out
}

// TestCallbackRefusalLogRateLimited: the first refusals are logged one by
// one with their status and nothing of the request; after that, one
// summary line at most per minute of the server's clock, and the rest
// when the server closes.
func TestCallbackRefusalLogRateLimited(t *testing.T) {
	var elapsed atomic.Int64
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return start.Add(time.Duration(elapsed.Load())) }
	h := &recordHandler{}
	s := startTestServerWith(t, slog.New(h), now, nil)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	refuse := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			resp, err := client.Get("http://" + s.host + "/callback?code=secret-code&state=wrong-state")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	advance := func(d time.Duration) { elapsed.Add(int64(d)) }
	summary := "DEBUG loopauth: more callback requests refused count="

	refuse(100) // 8 lines, then counted silently
	advance(59 * time.Second)
	refuse(100)
	if got := len(h.lines()); got != refusalsLogged {
		t.Fatalf("%d log lines within the first minute, want %d: %q", got, refusalsLogged, h.lines())
	}
	advance(time.Second)
	refuse(1) // a minute has passed: one summary of everything not logged
	refuse(300)
	advance(time.Minute)
	refuse(1)
	refuse(5)
	s.close() // the last 5, once
	want := []string{summary + "193", summary + "301", summary + "5"}
	lines := h.lines()
	if len(lines) != refusalsLogged+len(want) {
		t.Fatalf("%d log lines, want %d: %q", len(lines), refusalsLogged+len(want), lines)
	}
	for i, line := range lines[:refusalsLogged] {
		if line != "DEBUG loopauth: refused a callback request status=400" {
			t.Errorf("line %d = %q", i, line)
		}
	}
	for i, line := range lines[refusalsLogged:] {
		if line != want[i] {
			t.Errorf("summary %d = %q, want %q", i, line, want[i])
		}
	}
	for _, line := range lines {
		if strings.Contains(line, "secret") || strings.Contains(line, "wrong") {
			t.Errorf("log line shows the request: %q", line)
		}
	}
}

// slowPeers opens n connections of each kind: that send nothing, that
// send half a request line (half a ClientHello with tls) and stall, and
// that send a request line (a ClientHello) one byte every 100 ms, a
// slowloris. All are closed when the test ends.
func slowPeers(t *testing.T, addr string, n int, overTLS bool) {
	half, line := "GET /callback?state=", "GET /callback?state="+strings.Repeat("x", 1000)
	if overTLS {
		// A handshake record header announcing 16 KiB, then its bytes.
		half, line = "\x16\x03\x01\x40\x00", "\x16\x03\x01\x40\x00\x01"+strings.Repeat("\x00", 1000)
	}
	t.Helper()
	var dribblers []net.Conn
	for i := 0; i < 3*n; i++ {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		switch i % 3 {
		case 1:
			if _, err := io.WriteString(c, half); err != nil {
				t.Fatal(err)
			}
		case 2:
			dribblers = append(dribblers, c)
		}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			for _, c := range dribblers {
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
				_, _ = c.Write([]byte{line[i%len(line)]}) // fails once the server closed it
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// TestCallbackSlowConnections covers C-23 and C-36: hundreds of
// connections that send nothing, half a request line or one byte at a
// time, more than the server keeps open, do not delay the real callback,
// over http and https (where they are half a ClientHello).
func TestCallbackSlowConnections(t *testing.T) {
	cert, err := newSelfSignedCertificate()
	if err != nil {
		t.Fatal(err)
	}
	for _, https := range []bool{false, true} {
		t.Run(fmt.Sprintf("https=%v", https), func(t *testing.T) {
			var tlsConfig *tls.Config
			scheme := "http"
			tr := &http.Transport{DisableKeepAlives: true}
			if https {
				tlsConfig, scheme = cert.serverConfig(), "https"
				tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the certificate is not what is tested
			}
			s := startTestServerWith(t, slog.New(discardHandler{}), time.Now, tlsConfig)
			slowPeers(t, s.host, 200, https)
			sent := time.Now()
			go func() {
				resp, err := (&http.Client{Transport: tr}).Get(scheme + "://" + s.host + "/callback?code=real&state=" + testState)
				if err == nil {
					resp.Body.Close()
				}
			}()
			select {
			case cb := <-s.results:
				if cb.code != "real" {
					t.Fatalf("code = %q", cb.code)
				}
				// Liveness, not speed: silent peers held the old server's
				// 16 slots for 5 s each.
				if d := time.Since(sent); d > time.Second {
					t.Errorf("the real callback took %v behind 600 slow connections", d)
				}
				cb.reply <- "ok"
			case <-time.After(10 * time.Second):
				t.Fatal("real callback blocked by slow connections")
			}
		})
	}
}

// TestConnTable: a connection that sends nothing is closed after the
// first-byte timeout; at the cap, a newcomer closes the connection that
// has waited longest without a request in progress, never one with a
// request in progress, and is itself closed when every connection has one.
func TestConnTable(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	table := newConnTable(ln, 3, 200*time.Millisecond)
	defer table.Close()
	accepted := make(chan *trackedConn)
	go func() {
		for {
			c, err := table.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c.(*trackedConn)
		}
	}()
	dial := func() (client net.Conn, server *trackedConn) {
		t.Helper()
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("G")); err != nil { // not silent
			t.Fatal(err)
		}
		select {
		case sc := <-accepted:
			t.Cleanup(func() { sc.Close() })
			// Read the byte, as net/http would.
			if _, err := sc.Read(make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			return c, sc
		case <-time.After(5 * time.Second):
			t.Fatal("not accepted")
		}
		return nil, nil
	}
	// closed reports whether the server closed the client's connection.
	closed := func(c net.Conn, wait time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}

	// A silent connection is closed by the first-byte timeout; one that
	// has spoken is not.
	silent, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	<-accepted
	if !closed(silent, 5*time.Second) {
		t.Error("a silent connection was not closed")
	}
	c1, s1 := dial()
	c2, _ := dial()
	c3, s3 := dial()
	if closed(c1, 400*time.Millisecond) {
		t.Fatal("a connection that sent a byte was closed by the first-byte timeout")
	}

	trackConn(s1, http.StateActive)
	c4, s4 := dial() // closes c2, the oldest without a request
	if !closed(c2, 5*time.Second) {
		t.Error("the longest-waiting connection was not closed for a newcomer")
	}
	if closed(c1, 50*time.Millisecond) || closed(c3, 50*time.Millisecond) || closed(c4, 50*time.Millisecond) {
		t.Error("a connection other than the longest-waiting one was closed")
	}

	trackConn(s3, http.StateActive)
	trackConn(tls.Server(s4, &tls.Config{}), http.StateActive) // seen through TLS
	c5, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c5.Close()
	if !closed(c5, 5*time.Second) {
		t.Error("a newcomer was admitted while every connection had a request in progress")
	}

	trackConn(s1, http.StateIdle) // its request is over: it may go
	c6, _ := dial()
	if !closed(c1, 5*time.Second) {
		t.Error("the idle connection was not closed for a newcomer")
	}
	if closed(c6, 50*time.Millisecond) {
		t.Error("the newcomer was closed")
	}
}

// TestCallbackRequestBody covers C-40: a body is never read and does not
// stop the response.
func TestCallbackRequestBody(t *testing.T) {
	s := startTestServer(t)
	resp := rawRequest(t, s, "GET /callback?code=c&state=wrong HTTP/1.1\r\nHost: "+s.host+"\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n")
	if resp.StatusCode != 400 {
		t.Errorf("status = %d, want 400", resp.StatusCode)
	}
	if !resp.Close {
		t.Error("connection not closed after the response")
	}
}

// TestCallbackHugeHeaders covers C-21 and C-22: oversized headers get 431
// and large cookies of other localhost apps are tolerated.
func TestCallbackHugeHeaders(t *testing.T) {
	s := startTestServer(t)
	resp := rawRequest(t, s, "GET /callback?state=wrong HTTP/1.1\r\nHost: "+s.host+"\r\nX-Big: "+strings.Repeat("a", 2<<20)+"\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status = %d, want 431", resp.StatusCode)
	}
	go func() {
		req, _ := http.NewRequest("GET", "http://"+s.host+"/callback?code=c&state="+testState, nil)
		req.Header.Set("Cookie", "session="+strings.Repeat("c", 40<<10))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case cb := <-s.results:
		cb.reply <- "ok"
	case <-time.After(5 * time.Second):
		t.Fatal("callback with a 40 KiB cookie was not accepted")
	}
}

// TestListenLoopback covers C-01 and C-34 and the port modes.
func TestListenLoopback(t *testing.T) {
	logger := slog.New(discardHandler{})
	lns, err := listenLoopback(context.Background(), 0, false, false, logger)
	if err != nil || len(lns) != 1 {
		t.Fatal(lns, err)
	}
	ln := lns[0]
	defer ln.Close()
	addr := ln.Addr().(*net.TCPAddr)
	if !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("bound %v, want 127.0.0.1", addr.IP)
	}
	busy := addr.Port

	_, err = listenLoopback(context.Background(), busy, true, false, logger)
	if !errors.Is(err, ErrPortInUse) {
		t.Errorf("required busy port: err = %v, want ErrPortInUse", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("required busy port: cause is not a *net.OpError: %v", err)
	}

	lns, err = listenLoopback(context.Background(), busy, false, false, logger)
	if err != nil {
		t.Fatalf("busy hint should fall back: %v", err)
	}
	hinted := lns[0]
	defer hinted.Close()
	if p := hinted.Addr().(*net.TCPAddr).Port; p == busy || p == 0 {
		t.Errorf("fallback port = %d", p)
	}

	free := freePort(t)
	lns, err = listenLoopback(context.Background(), free, true, false, logger)
	if err != nil {
		t.Fatalf("free required port: %v", err)
	}
	got := lns[0]
	defer got.Close()
	if p := got.Addr().(*net.TCPAddr).Port; p != free {
		t.Errorf("port = %d, want %d", p, free)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

func TestIsLoopbackRemote(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:5000":   true,
		"127.9.9.9:1":      true,
		"[::1]:80":         true,
		"192.168.1.2:5000": false,
		"10.0.0.1:1":       false,
		"garbage":          false,
	} {
		if got := isLoopbackRemote(addr); got != want {
			t.Errorf("isLoopbackRemote(%q) = %v", addr, got)
		}
	}
}

// TestCallbackAcceptsNavigation: a browser's top-level navigation, with its
// Fetch Metadata headers, is accepted.
func TestCallbackAcceptsNavigation(t *testing.T) {
	s := startTestServer(t)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+s.host+"/callback?code=c&state="+testState, nil)
		req.Header.Set("Sec-Fetch-Dest", "document")
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case cb := <-s.results:
		if cb.code != "c" {
			t.Fatalf("callback = %+v", cb)
		}
		cb.reply <- "ok"
	case <-time.After(5 * time.Second):
		t.Fatal("navigation refused")
	}
}

// TestCallbackReplyBeatsClose: the flow replies and closes at once; the
// browser must get the reply, never the "stopped waiting" page.
func TestCallbackReplyBeatsClose(t *testing.T) {
	for i := 0; i < 20; i++ {
		s := startTestServer(t)
		// The handler is slow to wait for its page: by then the flow has
		// replied and closed.
		s.beforeReply = func() { time.Sleep(20 * time.Millisecond) }
		got := make(chan int, 1)
		go func() {
			resp, err := http.Get("http://" + s.host + "/callback?code=c&state=" + testState)
			if err != nil {
				got <- 0
				return
			}
			resp.Body.Close()
			got <- resp.StatusCode
		}()
		cb := <-s.results
		cb.reply <- "ok"
		s.close()
		if st := <-got; st != http.StatusOK {
			t.Fatalf("round %d: status %d, want 200", i, st)
		}
	}
}

// TestCallbackHostDefaultPort covers C-34's default ports: a browser drops
// the scheme's default port from Host, so on port 80 (http) or 443 (https)
// the bare address is the redirect URI's host; on any other port, or with
// the other scheme, it is another origin (DNS rebinding check, C-02).
func TestCallbackHostDefaultPort(t *testing.T) {
	cases := []struct {
		port  int
		https bool
		host  string
		ok    bool
	}{
		{80, false, "127.0.0.1", true},
		{80, false, "127.0.0.1:80", true},
		{443, true, "127.0.0.1", true},
		{443, true, "127.0.0.1:443", true},
		{80, true, "127.0.0.1", false},
		{443, false, "127.0.0.1", false},
		{8080, false, "127.0.0.1", false},
		{8443, true, "127.0.0.1", false},
		{80, false, "127.0.0.1:", false},
		{80, false, "localhost", false},
		{80, false, "127.0.0.1:8080", false},
		{80, false, "attacker.example", false},
		{443, true, "127.0.0.1:80", false},
	}
	for _, tc := range cases {
		s := &callbackServer{
			logger: slog.New(discardHandler{}), now: time.Now, state: testState,
			port: tc.port, https: tc.https, host: net.JoinHostPort("127.0.0.1", strconv.Itoa(tc.port)),
		}
		// A wrong state: 400 once past the Host check, 421 if refused by it.
		r := httptest.NewRequest(http.MethodGet, "/callback?code=c&state=wrong", nil)
		r.Host, r.RemoteAddr = tc.host, "127.0.0.1:50000"
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		want := http.StatusMisdirectedRequest
		if tc.ok {
			want = http.StatusBadRequest
		}
		if w.Code != want {
			t.Errorf("port %d https=%v Host %q: status %d, want %d", tc.port, tc.https, tc.host, w.Code, want)
		}
	}
}

// TestCallbackRedirectsToDone covers H-06 and H-07 at the server: the valid
// callback is answered with a 303 to the fixed relative path /done, with
// no secret in the response; /done serves the flow's page exactly once,
// under the same Host, method and Fetch Metadata checks as /callback; and
// once it has been served the port is released.
func TestCallbackRedirectsToDone(t *testing.T) {
	s := startTestServer(t)
	host := s.host
	// Before the flow has a page there is nothing at /done.
	if resp := rawRequest(t, s, get("/done", host)); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" {
		t.Fatalf("early /done: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	answered := make(chan *http.Response, 1)
	go func() {
		c, err := net.Dial("tcp", host)
		if err != nil {
			answered <- nil
			return
		}
		defer c.Close()
		io.WriteString(c, get("/callback?code=the-code&state="+testState, host))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			answered <- nil
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		answered <- resp
	}()
	cb := <-s.results
	// While the flow exchanges the code, /done still has nothing.
	if resp := rawRequest(t, s, get("/done", host)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/done during the exchange: %d", resp.StatusCode)
	}
	s.stopAccepting()
	cb.reply <- "<p>the page</p>"
	resp := <-answered
	if resp == nil {
		t.Fatal("no answer to the callback")
	}
	body, _ := io.ReadAll(resp.Body)
	loc := resp.Header.Get("Location")
	key, ok := strings.CutPrefix(loc, "/done?k=")
	if resp.StatusCode != http.StatusSeeOther || !ok || len(key) < 43 {
		t.Fatalf("callback answered %d, Location %q", resp.StatusCode, loc)
	}
	for _, secret := range []string{"the-code", testState, "the page"} {
		if strings.Contains(string(body), secret) || strings.Contains(fmt.Sprint(resp.Header), secret) {
			t.Errorf("the 303 carries %q", secret)
		}
	}
	assertSecurityHeaders(t, resp.Header)

	// Refused at /done like at /callback, and the page is still there.
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"other host", get("/done", "attacker.example:"+strconv.Itoa(s.port)), 421},
		{"POST", "POST /done HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 0\r\n\r\n", 405},
		{"image", "GET /done HTTP/1.1\r\nHost: " + host + "\r\nSec-Fetch-Dest: image\r\nSec-Fetch-Mode: no-cors\r\n\r\n", 400},
		{"fetch", "GET /done HTTP/1.1\r\nHost: " + host + "\r\nSec-Fetch-Dest: empty\r\nSec-Fetch-Mode: cors\r\n\r\n", 400},
		{"no key (a local process polling /done)", get("/done", host), 404},
		{"wrong key", get("/done?k="+strings.Repeat("A", len(key)), host), 404},
		{"key and more", get(loc+"&x=1", host), 404},
		{"other query", get("/done?x=1", host), 404},
		{"trailing slash", get("/done/?k="+key, host), 404},
	} {
		if r := rawRequest(t, s, tc.req); r.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, r.StatusCode, tc.status)
		}
	}
	nav := "GET " + loc + " HTTP/1.1\r\nHost: " + host + "\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Site: cross-site\r\n\r\n"
	first := rawRequest(t, s, nav)
	page, _ := io.ReadAll(first.Body)
	if first.StatusCode != 200 || string(page) != "<p>the page</p>" || first.Header.Get("Location") != "" {
		t.Fatalf("/done: %d %q", first.StatusCode, page)
	}
	assertSecurityHeaders(t, first.Header)
	// Served once: a second look is 410, unless the port is closed already.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", host)
		if err != nil {
			break // released
		}
		io.WriteString(c, nav)
		r, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			b, _ := io.ReadAll(r.Body)
			if r.StatusCode != http.StatusGone || strings.Contains(string(b), "the page") {
				t.Fatalf("second /done: %d %q", r.StatusCode, b)
			}
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the port was not released after /done was served")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCallbackDoneServedOnce: a second GET /done, on a server whose port
// is still open, is a fixed 410 page without the result.
func TestCallbackDoneServedOnce(t *testing.T) {
	s := startTestServer(t)
	s.result.Store(&resultPage{status: 200, body: "<p>the page</p>", key: "one-time-key"})
	for i, want := range []int{200, 410, 410} {
		r := httptest.NewRequest(http.MethodGet, "/done?k=one-time-key", nil)
		r.Host, r.RemoteAddr = s.host, "127.0.0.1:50000"
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != want || (want != 200) == strings.Contains(w.Body.String(), "the page") {
			t.Errorf("GET %d: %d %q", i+1, w.Code, w.Body.String())
		}
		assertSecurityHeaders(t, w.Header())
	}
}

// chainBrowser is a user agent that follows redirects and records, for
// each response on the way, its path and status; follow decides whether
// it follows the 303 to /done.
type chainBrowser struct {
	follow bool
	mu     sync.Mutex
	hops   []string // "status path", in order
	final  string   // the final page
	done   chan struct{}
}

func (b *chainBrowser) open(ctx context.Context, authURL string) error {
	defer close(b.done)
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			prev := req.Response
			b.mu.Lock()
			b.hops = append(b.hops, fmt.Sprintf("%d %s", prev.StatusCode, prev.Request.URL.Path))
			b.mu.Unlock()
			if req.URL.Path == donePath && !b.follow {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", authURL, nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.mu.Lock()
	defer b.mu.Unlock()
	if resp.StatusCode != http.StatusSeeOther {
		b.hops = append(b.hops, fmt.Sprintf("%d %s", resp.StatusCode, resp.Request.URL.Path))
	}
	b.final = string(body)
	return nil
}

// TestFlowRedirectsToDone covers H-06 end to end: the browser goes from the
// provider to /callback, is sent with a 303 to /done, and the flow's page
// (success or error) is what it ends on. A user agent that does not follow
// the redirect does not hold the flow up for long, and leaves nothing
// running.
func TestFlowRedirectsToDone(t *testing.T) {
	cases := []struct {
		name   string
		opts   []loopauthtest.Option
		follow bool
		hops   string
		page   string
	}{
		{"success", nil, true, "302 /authorize,303 /callback,200 /done", "Authentication successful"},
		{"access denied", []loopauthtest.Option{loopauthtest.WithAuthorizeError("access_denied", "", "")}, true, "302 /authorize,303 /callback,400 /done", "did not grant access"},
		{"exchange refused", []loopauthtest.Option{loopauthtest.WithCodeExchangeError(400, "invalid_grant", "")}, true, "302 /authorize,303 /callback,200 /done", "refused to issue tokens"},
		{"redirect not followed", nil, false, "302 /authorize,303 /callback", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, tc.opts...)
			b := &chainBrowser{follow: tc.follow, done: make(chan struct{})}
			var port int
			c := flowClient(t, p, b.open, func(cb *CLITokenClientBuilder) { cb.OnServerReady(func(p int) { port = p }) })
			check := noLeaks(t)
			start := time.Now()
			_, err := c.RunAuthorizationFlow(context.Background())
			elapsed := time.Since(start)
			check()
			<-b.done
			if (err == nil) != (tc.name == "success" || tc.name == "redirect not followed") {
				t.Errorf("flow error: %v", err)
			}
			if got := strings.Join(b.hops, ","); got != tc.hops {
				t.Errorf("hops %s, want %s", got, tc.hops)
			}
			if tc.page != "" && !strings.Contains(b.final, tc.page) {
				t.Errorf("final page lacks %q:\n%s", tc.page, b.final)
			}
			if !tc.follow && elapsed > winnerCloseWait+openerGrace+5*time.Second {
				t.Errorf("the flow waited %v for a browser that never came back", elapsed)
			}
			for _, tr := range p.TokenRequests() {
				if code := tr.Get("code"); code != "" && strings.Contains(b.final, code) {
					t.Error("the page holds the code")
				}
			}
			assertPortReleased(t, port)
		})
	}
	// loopauthtest's own browser follows the 303 and ends on a 2xx page.
	p := loopauthtest.NewProvider(t)
	if _, err := flowClient(t, p, p.Browser()).RunAuthorizationFlow(context.Background()); err != nil {
		t.Fatalf("loopauthtest.Browser: %v", err)
	}
}

// TestListenLocalhost: UseLocalhost binds 127.0.0.1 and ::1 on one port,
// and never leaves ::1 of that port to another program.
func TestListenLocalhost(t *testing.T) {
	logger := slog.New(discardHandler{})
	lns, err := listenLoopback(context.Background(), 0, false, true, logger)
	if err != nil {
		t.Fatal(err)
	}
	if len(lns) != 2 {
		t.Fatalf("%d listeners, want 2 on a dual-stack machine", len(lns))
	}
	a4, a6 := lns[0].Addr().(*net.TCPAddr), lns[1].Addr().(*net.TCPAddr)
	if !a4.IP.Equal(net.IPv4(127, 0, 0, 1)) || !a6.IP.Equal(net.IPv6loopback) || a4.Port != a6.Port {
		t.Errorf("bound %v and %v", a4, a6)
	}
	lns[0].Close()
	lns[1].Close()

	// Another program holds [::1]:PORT while 127.0.0.1:PORT is free.
	squatter, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	taken := squatter.Addr().(*net.TCPAddr).Port
	if _, err := listenLoopback(context.Background(), taken, true, true, logger); !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "::1") {
		t.Errorf("required port taken on ::1: %v", err)
	}
	lns, err = listenLoopback(context.Background(), taken, false, true, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer lns[0].Close()
	defer lns[1].Close()
	if p := lns[0].Addr().(*net.TCPAddr).Port; p == taken || lns[1].Addr().(*net.TCPAddr).Port != p {
		t.Errorf("hint taken on ::1: bound %v and %v", lns[0].Addr(), lns[1].Addr())
	}
}

const noIPv6ChildEnv = "LOOPAUTH_NO_IPV6_CHILD"

// TestListenLocalhostNoIPv6 runs TestListenLocalhostNoIPv6Child in a
// network namespace whose loopback has no ::1.
func TestListenLocalhostNoIPv6(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces are Linux's")
	}
	path, err := exec.LookPath("unshare")
	if err == nil {
		err = exec.Command(path, "--net", "true").Run()
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must run this test: unshare --net: %v", err)
		}
		t.Skipf("needs unshare(1) with network namespaces (root): %v", err)
	}
	cmd := exec.Command(path, "--net", os.Args[0], "-test.run=^TestListenLocalhostNoIPv6Child$", "-test.v")
	cmd.Env = append(os.Environ(), noIPv6ChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "one listener, and said why") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestListenLocalhostNoIPv6Child(t *testing.T) {
	if os.Getenv(noIPv6ChildEnv) == "" {
		t.Skip("runs only as the child of TestListenLocalhostNoIPv6")
	}
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/lo/disable_ipv6", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	lns, err := listenLoopback(context.Background(), 0, false, true, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer lns[0].Close()
	if len(lns) != 1 || !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "no IPv6 loopback") {
		t.Fatalf("%d listeners; log: %s", len(lns), logs.String())
	}
	t.Log("one listener, and said why")
}
