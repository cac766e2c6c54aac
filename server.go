package loopauth

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// callbackPath is the fixed path of the redirect URI.
const callbackPath = "/callback"

// donePath is where the valid callback sends the browser (303 See Other)
// once the flow has its page: the code and state leave the address bar
// and the history, and the page is served there exactly once, to the
// request that carries the one-time key of the 303 (donePath?k=KEY). It
// is the only Location the server ever sends, relative (same origin).
const donePath = "/done"

// Timeouts of the callback server. A browser sends its request as soon as
// it connects, so a peer that dawdles is not a browser.
const (
	callbackReadHeaderTimeout = 5 * time.Second
	callbackReadTimeout       = 10 * time.Second
	callbackWriteTimeout      = 10 * time.Second
	// callbackFirstByteTimeout closes a connection that has sent nothing:
	// a browser sends its request as soon as it connects, and drops and
	// retries a speculative preconnect that the server closed.
	callbackFirstByteTimeout = 2 * time.Second
	// winnerCloseWait bounds how long teardown waits for the browser to
	// get its page: the 303 on the connection that carried the valid
	// callback, then the page at donePath. A browser that does not follow
	// the redirect in time finds the port closed.
	winnerCloseWait = 2 * time.Second
)

// callback is the one request that carried the right state, handed from
// the server to the flow. The flow answers it exactly once on reply.
type callback struct {
	code   string // set on success
	iss    string // RFC 9207 issuer parameter, if any
	err    error  // *ProviderError or ErrCallbackMalformed
	pasted bool   // it came through paste-back, not the server
	reply  chan<- string
}

// Logging of refused requests is bounded by rate, never by giving up: the
// first few are logged one by one, the rest as a count at most once per
// refusalSummaryEvery, and once more when the server closes.
const (
	refusalsLogged      = 8
	refusalSummaryEvery = time.Minute
)

// callbackServer is the short-lived loopback server of one flow. Only a
// request with the right Host, path, method and state can end the flow;
// every other request gets a 4xx page and the flow keeps waiting, however
// many there are, so a local process or web page that finds the port
// cannot cancel a login.
type callbackServer struct {
	logger      *slog.Logger
	now         func() time.Time // the clock of the refusal log's rate limit
	state       string
	host        string // the accepted Host header, "127.0.0.1:PORT"
	port        int
	https       bool
	redirectURI string
	srv         *http.Server
	tables      []*connTable // one per listener: 127.0.0.1, and ::1 with UseLocalhost

	results  chan callback // the valid callback, at most one ever sent
	done     chan struct{} // closed when the flow no longer listens
	serveErr chan error    // Serve's unexpected failure

	claimed  atomic.Bool  // a request with the right state was taken
	refused  atomic.Int64 // refused requests
	badState atomic.Int64 // refused for a wrong or missing state

	logMu       sync.Mutex
	unlogged    int64     // refusals not yet in the log
	lastSummary time.Time // when unlogged was last reported

	winner       atomic.Pointer[net.Conn]
	winnerClosed chan struct{}
	winnerOnce   sync.Once

	authURL     atomic.Pointer[string]     // the short URL's target
	result      atomic.Pointer[resultPage] // the flow's page, set before the 303
	resultSent  atomic.Bool                // donePath has served it
	doneConn    atomic.Pointer[net.Conn]   // the connection it was served on
	doneClosed  chan struct{}              // closed when that connection closed
	doneOnce    sync.Once
	closeOnce   sync.Once
	stopped     atomic.Bool    // the listener was closed on purpose
	beforeReply func()         // tests only: runs before the handler waits for its page
	serving     sync.WaitGroup // the Serve calls
}

// listenLoopback binds 127.0.0.1 (never a wildcard address) on the
// configured port: 0 for a random port, a hint that falls back to a random
// port, or a required port whose failure wraps ErrPortInUse. With
// localhost (UseLocalhost) it binds [::1] on the same port too, since a
// browser may resolve localhost to either: when ::1 does not exist it
// serves 127.0.0.1 alone and says so at Warn level, and when another
// program holds the port on ::1 (it would receive the callbacks sent
// there) it tries other random ports, or fails for a required one.
func listenLoopback(ctx context.Context, port int, required, localhost bool, logger *slog.Logger) ([]net.Listener, error) {
	lc := net.ListenConfig{Control: controlListener}
	for tries := 0; ; tries++ {
		ln, err := lc.Listen(ctx, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil && !required && port != 0 {
			logger.Debug("loopauth: port hint unavailable, using a random port", "port", port)
			ln, err = lc.Listen(ctx, "tcp4", "127.0.0.1:0")
		}
		switch {
		case err != nil && required:
			return nil, errorf("%w: port %d: %w", ErrPortInUse, port, err)
		case err != nil:
			return nil, errorf("loopauth: binding the loopback callback server: %w", err)
		case !localhost:
			return []net.Listener{ln}, nil
		}
		bound := ln.Addr().(*net.TCPAddr).Port
		ln6, err := lc.Listen(ctx, "tcp6", net.JoinHostPort("::1", strconv.Itoa(bound)))
		switch {
		case err == nil:
			return []net.Listener{ln, ln6}, nil
		case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT):
			logger.Warn("loopauth: this machine has no IPv6 loopback (::1), so the localhost callback is served on 127.0.0.1 only; browsers that try ::1 first fall back to it", "error", err)
			return []net.Listener{ln}, nil
		}
		ln.Close()
		if required || tries == 2 {
			return nil, errorf("%w: port %d is taken on ::1, where another program would receive the callback: %w", ErrPortInUse, bound, err)
		}
		port = 0
	}
}

// startCallbackServer starts serving on ln, over TLS when tlsListener (which
// wraps ln) is not nil; net/http's own messages (TLS handshake errors...) go to errorLog,
// and now is the clock that rate-limits the log of refused requests. The
// server holds the expected state and nothing else of the flow's secrets.
func startCallbackServer(lns []net.Listener, hostname, state string, logger *slog.Logger, errorLog *log.Logger, tlsListener func(net.Listener) net.Listener, now func() time.Time) *callbackServer {
	port := lns[0].Addr().(*net.TCPAddr).Port
	s := &callbackServer{
		logger:       logger,
		now:          now,
		lastSummary:  now(),
		state:        state,
		port:         port,
		https:        tlsListener != nil,
		host:         net.JoinHostPort(hostname, strconv.Itoa(port)),
		results:      make(chan callback),
		done:         make(chan struct{}),
		serveErr:     make(chan error, len(lns)),
		winnerClosed: make(chan struct{}),
		doneClosed:   make(chan struct{}),
	}
	scheme := "http"
	if s.https {
		scheme = "https"
	}
	s.redirectURI = scheme + "://" + s.host + callbackPath
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: callbackReadHeaderTimeout,
		ReadTimeout:       callbackReadTimeout,
		WriteTimeout:      callbackWriteTimeout,
		IdleTimeout:       callbackReadTimeout,
		MaxHeaderBytes:    maxCallbackHeaderBytes,
		ErrorLog:          errorLog,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ConnState: s.connState,
	}
	for _, ln := range lns {
		table := newConnTable(ln, maxCallbackConns, callbackFirstByteTimeout)
		s.tables = append(s.tables, table)
		var serveLn net.Listener = table
		if tlsListener != nil {
			// Handshakes run in each connection's own goroutine, bounded by
			// the read-header timeout, so a client that connects and never
			// speaks cannot delay the real callback (the Rust crate shook
			// hands in its accept loop). The connection table sees the TCP
			// connections under TLS: a ClientHello is a connection's first
			// byte.
			serveLn = tlsListener(table)
		}
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			err := s.srv.Serve(serveLn)
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !s.stopped.Load() {
				s.serveErr <- err
			}
		}()
	}
	return s
}

// resultPage is the flow's answer to the browser, served at donePath.
type resultPage struct {
	status int
	body   string
	key    string // the one-time key of its address, donePath?k=KEY
}

// stopAccepting is called once the flow has its one authorization
// response. When that response came through this server, a browser will
// come back for its page at donePath, on a new connection (every response
// says Connection: close): the listener stays open for it, and is closed
// as soon as the page has been written (or by close, at the latest
// winnerCloseWait after the flow answered). Until then nothing can
// complete the flow: a replay gets 409, anything else its refusal.
// Otherwise the port is released at once (RFC 8252 §8.3).
func (s *callbackServer) stopAccepting() {
	if !s.claimed.Load() {
		s.closeListener()
	}
}

// closeListener releases the port; Serve returns, and open connections
// finish.
func (s *callbackServer) closeListener() {
	s.stopped.Store(true)
	for _, t := range s.tables {
		t.Close()
	}
}

type connKey struct{}

// connState tells the connection table which connections have a request
// in progress, and notices when the connection that carried the valid
// callback, or the one that got the page at donePath, has been closed by
// net/http, i.e. its response is fully written.
func (s *callbackServer) connState(c net.Conn, st http.ConnState) {
	trackConn(c, st)
	if st != http.StateClosed && st != http.StateHijacked {
		return
	}
	if w := s.winner.Load(); w != nil && *w == c {
		s.winnerOnce.Do(func() { close(s.winnerClosed) })
	}
	if d := s.doneConn.Load(); d != nil && *d == c {
		s.doneOnce.Do(func() {
			close(s.doneClosed)
			s.closeListener() // the browser has its page: nothing more to serve
		})
	}
}

// close stops the server. When a valid callback was answered it first
// waits, at most winnerCloseWait in all, for that connection to finish
// (the 303) and then for the browser to fetch and receive its page at
// donePath; other connections (favicon requests, speculative preconnects)
// are cut. It returns once Serve has returned.
func (s *callbackServer) close() {
	s.closeOnce.Do(func() {
		close(s.done)
		if s.winner.Load() != nil {
			t := time.NewTimer(winnerCloseWait)
			select {
			case <-s.winnerClosed:
				// The handler stored the page before writing the 303.
				if s.result.Load() != nil {
					select {
					case <-s.doneClosed:
					case <-t.C:
					}
				}
			case <-t.C:
			}
			t.Stop()
		}
		_ = s.srv.Close()
		s.closeListener()
		s.serving.Wait()
		s.logRefusalSummary(true) // nothing is refused any more
	})
}

// ServeHTTP checks a request from the outside world. The checks are ordered
// so that nothing about the flow is revealed to a request that fails an
// earlier one.
func (s *callbackServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// One request per connection (set with the page headers): a browser
	// needs no more, and it lets teardown know when the page has been
	// delivered.
	setPageHeaders(w.Header())

	switch {
	case !s.hostAllowed(r.Host) || !isLoopbackRemote(r.RemoteAddr):
		// DNS rebinding: a web page that resolves its own name to
		// 127.0.0.1 reaches this port with its own Host header.
		s.refuse(w, http.StatusMisdirectedRequest, "This address does not serve that host.", false)
	case r.URL.Path != callbackPath && r.URL.Path != donePath && r.URL.Path != "/" || r.URL.RawPath != "" || r.URL.IsAbs():
		s.refuse(w, http.StatusNotFound, "There is nothing here.", false)
	case r.Method != http.MethodGet:
		w.Header().Set("Allow", http.MethodGet)
		s.refuse(w, http.StatusMethodNotAllowed, "Only the provider's redirect is accepted here.", false)
	case !isTopLevelNavigation(r.Header):
		// A page that knows the port can make the browser send requests
		// with <img>, fetch or an iframe; the provider's redirect, and
		// the browser following the 303 to donePath, are always top-level
		// navigations (Fetch Metadata, when sent).
		s.refuse(w, http.StatusBadRequest, "Only a top-level navigation is accepted here.", false)
	case r.URL.Path == donePath:
		s.serveResult(w, r)
	case r.URL.Path == "/":
		s.redirectToProvider(w)
	case len(r.URL.RawQuery) > maxCallbackQueryBytes:
		s.refuse(w, http.StatusRequestURITooLong, "The request is too long.", false)
	default:
		s.handleCallback(w, r)
	}
}

func (s *callbackServer) handleCallback(w http.ResponseWriter, r *http.Request) {
	q, problem := s.matchState(r.URL.RawQuery)
	switch {
	case problem != "":
		s.refuse(w, http.StatusBadRequest, "This sign-in response is not valid for the program that is waiting.", true)
		return
	// Exactly one request with the right state is processed: a replay or
	// a racing duplicate is told the sign-in is over (RFC 9700 §4.2.4).
	case !s.claimed.CompareAndSwap(false, true):
		s.writePage(w, http.StatusConflict, statusPage(http.StatusConflict, "This sign-in has already been completed: its result is in your terminal."))
		return
	}
	cb := parseCallback(q)
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		s.winner.Store(&c)
	}
	// The page is written after the token exchange, which has its own
	// timeouts; the server-wide write timeout would cut it.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})

	reply := make(chan string, 1)
	cb.reply = reply
	select {
	case s.results <- cb:
	case <-s.done:
		s.writePage(w, http.StatusServiceUnavailable, statusPage(http.StatusServiceUnavailable, "The program stopped waiting for this sign-in. Run the command again to sign in."))
		return
	}
	if s.beforeReply != nil {
		s.beforeReply()
	}
	var page string
	select {
	case page = <-reply:
	case <-s.done:
		// The flow closes done right after it replies: a reply that is
		// there must win over done, which select would pick at random.
		select {
		case page = <-reply:
		default:
			s.writePage(w, http.StatusServiceUnavailable, statusPage(http.StatusServiceUnavailable, "The program stopped waiting for this sign-in. Run the command again to sign in."))
			return
		}
	}
	status := http.StatusOK
	if cb.err != nil {
		status = http.StatusBadRequest
	}
	// The page waits at donePath; this URL, which holds the code and the
	// state, is replaced in the address bar and the history by the clean
	// one (a 303 makes the browser GET it). The result is stored first:
	// close waits for this response, then for donePath.
	// The one-time key in its address keeps the page (who signed in) from
	// any local process that polls donePath: only the browser that
	// carried the code learns it, from this answer.
	key := newRandomString()
	s.result.Store(&resultPage{status: status, body: page, key: key})
	w.Header().Set("Location", donePath+"?k="+key)
	s.writePage(w, http.StatusSeeOther, statusPage(http.StatusSeeOther, "The result of the sign-in is on the next page."))
}

// redirectToProvider answers the short URL, http://127.0.0.1:PORT/ (see
// ProgressEvent.ShortURL), with a 302 to the authorization URL: an address
// short enough to type from another screen, with nothing to wrap or
// quote. It reveals nothing that the authorization URL, printed on the
// terminal and passed to the browser launcher, does not.
func (s *callbackServer) redirectToProvider(w http.ResponseWriter) {
	target := s.authURL.Load()
	if target == nil {
		s.refuse(w, http.StatusNotFound, "There is nothing here.", false)
		return
	}
	w.Header().Set("Location", *target)
	s.writePage(w, http.StatusFound, statusPage(http.StatusFound, "The sign-in continues at your provider."))
}

// serveResult answers GET donePath: the flow's page, exactly once. Before
// the page exists, or after it was served, the answer is a fixed refusal
// page; so a second look (a reload, the back button) says where the result
// went instead of showing it again.
func (s *callbackServer) serveResult(w http.ResponseWriter, r *http.Request) {
	p := s.result.Load()
	key, hasKey := strings.CutPrefix(r.URL.RawQuery, "k=")
	switch {
	case p == nil || !hasKey || !equalSecret(key, p.key):
		s.refuse(w, http.StatusNotFound, "There is nothing here.", false)
	case !s.resultSent.CompareAndSwap(false, true):
		s.refuse(w, http.StatusGone, "This page was shown once and is gone. The result of the sign-in is in your terminal.", false)
	default:
		if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			s.doneConn.Store(&c)
		}
		s.writePage(w, p.status, p.body)
		s.logger.Debug("loopauth: the browser fetched its page at " + donePath)
	}
}

// matchState parses an authorization response's query and compares its
// state with the flow's, in constant time. The problem, when there is
// one, is a short phrase for a user who pasted the response; it never
// quotes the input.
func (s *callbackServer) matchState(rawQuery string) (url.Values, string) {
	// Count pairs before parsing, so a flood of parameters costs nothing.
	if len(rawQuery) > maxCallbackQueryBytes || strings.Count(rawQuery, "&")+1 > maxCallbackParams {
		return nil, "it is too long"
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, "it is not a valid address"
	}
	for _, v := range q["state"] {
		if equalSecret(v, s.state) {
			return q, ""
		}
	}
	return nil, "it is not the answer to this sign-in (no matching state): paste the address of the sign-in started by this command"
}

// paste hands an authorization response the user pasted (the address the
// browser ended on, or its query) to the flow, checked exactly like a
// callback. It returns why the paste was refused, or "" when the flow
// has taken it.
func (s *callbackServer) paste(input string) string {
	input = strings.TrimSpace(input)
	if i := strings.IndexByte(input, '?'); i >= 0 {
		input = input[i+1:]
	}
	input, _, _ = strings.Cut(input, "#")
	q, problem := s.matchState(input)
	switch {
	case problem != "":
		return problem
	case !s.claimed.CompareAndSwap(false, true):
		return "this sign-in has already been answered"
	}
	cb := parseCallback(q)
	cb.pasted = true
	cb.reply = make(chan string, 1) // the page is for a browser; nobody reads it
	select {
	case s.results <- cb:
		return ""
	case <-s.done:
		return "the program stopped waiting for this sign-in"
	}
}

// parseCallback reads the RFC 6749 §4.1.2 response of a request whose state
// matched. Any ambiguity (a repeated parameter, code and error together,
// an empty or oversized code) is malformed: RFC 6749 §3.1 forbids repeats
// and treats empty values as omitted.
func parseCallback(q url.Values) callback {
	malformed := func(why string) callback {
		return callback{err: errorf("%w: %s", ErrCallbackMalformed, why)}
	}
	for _, k := range []string{"state", "code", "error", "error_description", "error_uri", "iss"} {
		if len(q[k]) > 1 {
			return malformed("parameter " + k + " is repeated")
		}
	}
	code, errCode := q.Get("code"), q.Get("error")
	cb := callback{iss: q.Get("iss")}
	switch {
	case code != "" && errCode != "":
		return malformed("both code and error are present")
	case errCode != "":
		cb.err = newProviderError(errCode, q.Get("error_description"), q.Get("error_uri"), 0)
	case code == "":
		return malformed("the code parameter is missing")
	case len(code) > maxCodeBytes:
		return malformed("the code is longer than " + strconv.Itoa(maxCodeBytes) + " bytes")
	case !isVSCHAR(code):
		return malformed("the code contains control or non-ASCII characters")
	default:
		cb.code = code
	}
	return cb
}

// hostAllowed reports whether a request's Host header names the redirect
// URI's origin. A browser leaves the scheme's default port out of Host, so
// on port 80 (http) or 443 (https) the bare address is the same origin;
// on any other port it is not.
func (s *callbackServer) hostAllowed(host string) bool {
	if host == s.host {
		return true
	}
	defaultPort := 80
	if s.https {
		defaultPort = 443
	}
	name, _, _ := strings.Cut(s.host, ":") // 127.0.0.1 or localhost
	return host == name && s.port == defaultPort
}

// refuse answers a request that cannot end the flow, and counts it. Only
// the status is logged: the query may hold a code or a state.
func (s *callbackServer) refuse(w http.ResponseWriter, status int, message string, badState bool) {
	if badState {
		s.badState.Add(1)
	}
	if s.refused.Add(1) <= refusalsLogged {
		s.logger.Debug("loopauth: refused a callback request", "status", status)
	} else {
		s.logRefusalSummary(false)
	}
	page := statusPage(status, message)
	if badState {
		page = staleCallbackPage()
	}
	s.writePage(w, status, page)
}

// logRefusalSummary counts a refusal that is not logged by itself and
// logs the count when the last summary is old enough, so a flood of
// requests cannot flood the log. When the server closes (final), it logs
// the refusals not yet in the log, if any, and counts none.
func (s *callbackServer) logRefusalSummary(final bool) {
	s.logMu.Lock()
	if !final {
		s.unlogged++
	}
	n, now := s.unlogged, s.now()
	due := n > 0 && (final || now.Sub(s.lastSummary) >= refusalSummaryEvery)
	if due {
		s.unlogged, s.lastSummary = 0, now
	}
	s.logMu.Unlock()
	if due {
		s.logger.Debug("loopauth: more callback requests refused", "count", n)
	}
}

// writePage writes a complete page with a Content-Length, so the response
// is whole on the wire once flushed.
func (s *callbackServer) writePage(w http.ResponseWriter, status int, page string) {
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(page))
}

// refusals reports how many requests were refused, and how many of those
// carried a wrong or missing state, for the flow's final error.
func (s *callbackServer) refusals() (total, badState int64) {
	return s.refused.Load(), s.badState.Load()
}

// isTopLevelNavigation reports whether the Fetch Metadata headers, when a
// browser sends them, describe a top-level navigation. Clients that send
// none (older browsers, command-line user agents) are not refused.
func isTopLevelNavigation(h http.Header) bool {
	mode, dest := h.Get("Sec-Fetch-Mode"), h.Get("Sec-Fetch-Dest")
	return (mode == "" || mode == "navigate") && (dest == "" || dest == "document")
}

func isLoopbackRemote(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	return err == nil && isLoopbackIP(host)
}

// connTable is the callback server's listener. Accept never waits for a
// slot: at most max connections are open, and a newcomer at the cap closes
// the connection that has waited longest without a request in progress
// (one that sent nothing, half a request line or half a TLS handshake).
// The browser's request, sent as soon as it connects, is always among the
// newest, so however many connections a local process holds open the
// real callback gets through. Only when every open connection is running a
// request (refusals are answered at once) is the newcomer closed. A
// connection that sends nothing is closed after firstByte.
type connTable struct {
	net.Listener
	max       int
	firstByte time.Duration

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

// trackedConn is a TCP connection of the callback server, under TLS when
// the server uses HTTPS.
type trackedConn struct {
	net.Conn
	table     *connTable
	silent    atomic.Bool // no byte read yet
	closeOnce sync.Once

	// Guarded by table.mu.
	since  time.Time   // accepted, or back to idle between requests
	active bool        // net/http is handling a request on it
	timer  *time.Timer // the first-byte deadline
}

func newConnTable(ln net.Listener, max int, firstByte time.Duration) *connTable {
	return &connTable{Listener: ln, max: max, firstByte: firstByte, conns: make(map[*trackedConn]struct{})}
}

func (t *connTable) Accept() (net.Conn, error) {
	for {
		c, err := t.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, table: t}
		tc.silent.Store(true)
		victim, ok := t.admit(tc)
		if victim != nil {
			victim.Close()
		}
		if ok {
			return tc, nil
		}
		c.Close() // every open connection is running a request
	}
}

// admit enters c in the table, choosing the connection to close for it
// when the table is full; ok is false when there is none.
func (t *connTable) admit(c *trackedConn) (victim *trackedConn, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.conns) >= t.max {
		for o := range t.conns {
			if !o.active && (victim == nil || o.since.Before(victim.since)) {
				victim = o
			}
		}
		if victim == nil {
			return nil, false
		}
		delete(t.conns, victim)
	}
	c.since = time.Now()
	c.timer = time.AfterFunc(t.firstByte, func() {
		if c.silent.Load() {
			c.Close()
		}
	})
	t.conns[c] = struct{}{}
	return victim, true
}

// trackConn follows net/http's view of a connection, in its own table: a
// connection with a request in progress is never closed to make room.
func trackConn(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	t := tc.table
	t.mu.Lock()
	defer t.mu.Unlock()
	switch st {
	case http.StateActive:
		tc.active = true
	case http.StateIdle:
		tc.active, tc.since = false, time.Now()
	case http.StateHijacked, http.StateClosed:
		delete(t.conns, tc)
	}
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.silent.Load() {
		c.silent.Store(false)
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.closeOnce.Do(func() {
		c.table.mu.Lock()
		delete(c.table.conns, c)
		c.timer.Stop()
		c.table.mu.Unlock()
	})
	return c.Conn.Close()
}
