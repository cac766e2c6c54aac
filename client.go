package loopauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CLITokenClient runs OAuth 2.0 authorization-code flows with PKCE for a
// command-line program, receiving the browser's redirect on a short-lived
// loopback server (RFC 6749, RFC 7636, RFC 8252). Make one with a
// CLITokenClientBuilder. It is immutable and safe for concurrent use; each
// flow has its own server, port, state and verifier.
type CLITokenClient struct {
	settings
	authURL  *url.URL
	tokenURL *url.URL
	// revokeURL is the RFC 7009 endpoint, nil when none is known.
	revokeURL *url.URL
	now       func() time.Time // the one clock of every expiry decision
	errorLog  *log.Logger      // net/http's messages, to logger at debug level
	// systemOpener: the opener is the system browser, which the detection
	// of a headless machine may skip (see Headless).
	systemOpener bool

	flightMu sync.Mutex
	flight   *flight // the refresh or sign-in that Token callers share
	lazy     *lazyProvider
}

// lazyProvider is a FromIssuer client's builder, kept to build the client
// that talks to the provider once the discovery document is in.
type lazyProvider struct {
	mu     sync.Mutex
	b      CLITokenClientBuilder
	client *CLITokenClient
}

// online returns the client that talks to the provider: c itself or, for
// FromIssuer, the client built from the discovery document, fetched on
// first need (and again after a failure).
func (c *CLITokenClient) online(ctx context.Context) (*CLITokenClient, error) {
	l := c.lazy
	if l == nil {
		return c, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client == nil {
		cfg, err := fetchOpenIDConfiguration(ctx, l.b.httpClient, c.logger, l.b.lazyIssuer)
		if err != nil {
			return nil, err
		}
		b := l.b
		if b.useConfig(cfg); b.validator == nil && !b.noValidation {
			b.WithOpenIDConfigurationJWKSValidator(cfg)
		}
		if l.client, err = b.Build(); err != nil {
			return nil, err
		}
		l.client.now = c.now
	}
	return l.client, nil
}

// openerGrace is how long a flow that has answered the browser waits for
// the opener to return by itself before cancelling it.
const openerGrace = 2 * time.Second

// ExtraAuthParams collects provider-specific authorization parameters in an
// OnAuthURL hook. Parameters the flow owns are dropped when applied.
type ExtraAuthParams struct {
	pairs [][2]string
}

// Append adds a parameter. Repeats are kept, in order.
func (p *ExtraAuthParams) Append(key, value string) *ExtraAuthParams {
	p.pairs = append(p.pairs, [2]string{key, value})
	return p
}

// reservedAuthParams are set by the flow and cannot be overridden by a
// hook: letting a hook replace state, the redirect URI or the PKCE
// challenge would undo the protections they give. response_mode, request
// and request_uri would change how or where the response arrives.
var reservedAuthParams = []string{
	"response_type", "client_id", "redirect_uri", "state", "code_challenge",
	"code_challenge_method", "nonce", "scope", "response_mode", "request", "request_uri",
}

func isReservedAuthParam(key string) bool {
	return slices.ContainsFunc(reservedAuthParams, func(r string) bool { return strings.EqualFold(key, r) })
}

// authorizationURL builds the RFC 6749 §4.1.1 request on top of the
// configured endpoint, keeping the endpoint's own query (§3.1).
func (c *CLITokenClient) authorizationURL(redirectURI string, secrets flowSecrets) *url.URL {
	u := *c.authURL
	q := u.Query()
	q.Set("response_type", "code")
	q.Set("client_id", c.clientID)
	q.Set("redirect_uri", redirectURI)
	q.Set("state", secrets.state)
	q.Set("code_challenge", s256Challenge(secrets.verifier))
	q.Set("code_challenge_method", "S256")
	if secrets.nonce != "" {
		q.Set("nonce", secrets.nonce)
	}
	if len(c.scopes) > 0 {
		q.Set("scope", joinScopes(c.scopes))
	}
	if c.onAuthURL != nil {
		var extra ExtraAuthParams
		c.onAuthURL(&extra)
		for _, kv := range extra.pairs {
			if kv[0] == "" || isReservedAuthParam(kv[0]) {
				c.logger.Warn("loopauth: OnAuthURL hook tried to set a reserved parameter; ignoring it", "key", sanitizeText(kv[0], 64))
				continue
			}
			q.Add(kv[0], kv[1])
		}
	}
	u.RawQuery = q.Encode()
	return &u
}

// RunAuthorizationFlow signs the user in: it starts the loopback server,
// opens the browser at the authorization URL, waits for the provider's
// redirect, exchanges the code and returns the tokens.
//
// It returns when the flow has succeeded or failed; by then the server is
// closed, its port released and every goroutine it started has ended.
// Cancelling ctx stops it with an error matching context.Canceled; waiting
// longer than the Timeout ends it with an error matching ErrTimeout. Other
// requests to the callback server, however many, are refused and never
// end the flow; a flow that times out or is cancelled says how many there
// were.
func (c *CLITokenClient) RunAuthorizationFlow(ctx context.Context) (*TokenSet, error) {
	if c.nonInteractive {
		return nil, errorf("%w: the client is NonInteractive", ErrLoginRequired)
	}
	if err := ctx.Err(); err != nil {
		return nil, flowContextError(err, nil, c.timeout)
	}
	c, err := c.online(ctx) // FromIssuer: the client made from discovery
	if err != nil {
		return nil, err
	}
	secrets := newFlowSecrets(c.openID)

	var tlsListener func(net.Listener) net.Listener
	if c.tlsListener != nil {
		if tlsListener, err = c.tlsListener(); err != nil {
			return nil, err
		}
	}
	lns, err := listenLoopback(ctx, c.port, c.portRequired, c.localhost, c.logger)
	if err != nil {
		return nil, err
	}
	hostname := "127.0.0.1"
	if c.localhost {
		hostname = "localhost"
	}
	srv := startCallbackServer(lns, hostname, secrets.state, c.logger, c.errorLog, tlsListener, c.now)
	authURL := c.authorizationURL(srv.redirectURI, secrets).String()
	srv.authURL.Store(&authURL)
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	progress := &flowProgress{fn: c.onProgress, ev: ProgressEvent{
		Port: srv.port, Deadline: deadline, URL: authURL, ShortURL: "http://" + srv.host + "/",
	}}
	secrets.progress = progress
	progress.emit(ProgressServerReady, nil)
	if c.onServerReady != nil {
		c.onServerReady(srv.port)
	}
	if c.onURL != nil {
		u, _ := url.Parse(authURL)
		c.onURL(u)
	}
	progress.emit(ProgressURLReady, nil)

	// progress.ev is changed here only before the opener goroutine starts
	// or after it failed, the one other goroutine that emits.
	var stopPastes func()
	startPasting := func(r io.Reader, owned bool) {
		if r != nil && stopPastes == nil {
			stopPastes = startPastes(r, owned, c.stderr, srv)
			progress.ev.Paste = true
		}
	}
	if c.pasteSet {
		startPasting(c.paste, false)
	}
	// goHeadless tells the user how to sign in without a browser here,
	// with paste-back from the terminal unless the caller chose a reader.
	goHeadless := func(kind ProgressKind, err error) {
		if !c.pasteSet {
			if f := openPasteTerminal(); f != nil {
				startPasting(f, true)
			}
		}
		progress.emit(kind, err)
	}

	openerCtx, stopOpener := context.WithCancel(ctx)
	openerDone, openerFailed := make(chan struct{}), make(chan error, 1)
	if why := c.headlessReason(); why != "" {
		close(openerDone)
		progress.ev.Reason = why
		goHeadless(ProgressHeadless, nil)
	} else {
		go func() {
			defer close(openerDone)
			if err := c.opener(openerCtx, authURL); err != nil && openerCtx.Err() == nil {
				c.logger.Debug("loopauth: could not open a browser", "error", err)
				openerFailed <- err
			} else if err == nil {
				progress.emit(ProgressBrowserOpened, nil)
			}
		}()
	}
	answered := false
	defer func() {
		srv.close()
		if stopPastes != nil {
			stopPastes() // after close: a paste offered meanwhile is refused, not stuck
		}
		if answered {
			// The opener may still be reading the page it was just sent
			// (a text browser, a test user agent): let it finish.
			t := time.NewTimer(openerGrace)
			select {
			case <-openerDone:
			case <-t.C:
			}
			t.Stop()
		}
		stopOpener()
		<-openerDone
	}()

	tokens, err := c.awaitCallback(ctx, srv, secrets, openerFailed, goHeadless, &answered)
	progress.emit(ProgressDone, err)
	return tokens, err
}

// awaitCallback waits for the one valid authorization response, from the
// browser or a paste, and completes the flow with it; meanwhile an opener
// that fails sends the flow headless. answered is set once the browser has
// its page.
func (c *CLITokenClient) awaitCallback(ctx context.Context, srv *callbackServer, secrets flowSecrets, openerFailed <-chan error, goHeadless func(ProgressKind, error), answered *bool) (*TokenSet, error) {
	waitCtx, cancelWait := context.WithTimeout(ctx, c.timeout)
	defer cancelWait()
	var cb callback
	for cb.reply == nil {
		select {
		case cb = <-srv.results:
		case err := <-openerFailed:
			goHeadless(ProgressBrowserFailed, err)
		case <-waitCtx.Done():
			return nil, flowContextError(ctx.Err(), srv, c.timeout)
		case err := <-srv.serveErr:
			return nil, errorf("loopauth: the loopback callback server failed: %w", err)
		}
	}
	srv.stopAccepting()
	if cb.pasted {
		secrets.progress.emit(ProgressPasteReceived, nil)
	} else {
		secrets.progress.emit(ProgressCallbackReceived, nil)
	}
	tokens, err := c.completeFlow(ctx, cb, secrets, srv.redirectURI)
	*answered = true
	if err != nil {
		cb.reply <- c.renderError(ctx, err, srv.redirectURI)
		return nil, err
	}
	cb.reply <- c.renderSuccess(ctx, tokens, srv.redirectURI)
	c.changed(tokens)
	return tokens, nil
}

// headlessReason says why the flow opens no browser here, or "" when it
// opens one. The detection (whereAmI) decides only for the system
// browser: an opener set by the caller is always called.
func (c *CLITokenClient) headlessReason() string {
	switch {
	case c.noBrowser:
		return "the program turned browser opening off"
	case c.headless != nil:
		if *c.headless {
			return "the program asked for headless sign-in"
		}
	case c.systemOpener:
		if env := hostEnvironment(); env.headless {
			return env.reason
		}
	}
	return ""
}

// flowProgress hands one flow's steps to OnProgress, one call at a time,
// each event carrying all that is known by then.
type flowProgress struct {
	mu sync.Mutex
	fn func(ProgressEvent)
	ev ProgressEvent
}

// emit reports a step; a nil flowProgress (a test's flowSecrets) has no
// one to tell. An opener that returns only once the browser has come back
// (a test user agent) has nothing left to tell the user: its success is
// not reported after the answer arrived.
func (p *flowProgress) emit(kind ProgressKind, err error) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if kind == ProgressBrowserOpened && p.ev.Kind >= ProgressCallbackReceived {
		return
	}
	p.ev.Kind, p.ev.Err = kind, err
	p.fn(p.ev)
}

// completeFlow turns the valid callback into tokens.
func (c *CLITokenClient) completeFlow(ctx context.Context, cb callback, secrets flowSecrets, redirectURI string) (*TokenSet, error) {
	// RFC 9207 §2.4: a response from another issuer, success or error, is
	// rejected before anything else, and before any token request.
	if err := c.checkCallbackIssuer(cb.iss); err != nil {
		return nil, err
	}
	if cb.err != nil {
		return nil, cb.err
	}
	secrets.progress.emit(ProgressExchanging, nil)
	return c.exchangeCode(ctx, cb.code, secrets, redirectURI)
}

// checkCallbackIssuer compares the callback's iss parameter (RFC 9207)
// with the expected issuer, exactly. OpenID mode always has an expected
// issuer (Build requires one); outside it, without one there is nothing to
// compare with, and the parameter is ignored.
func (c *CLITokenClient) checkCallbackIssuer(iss string) error {
	switch {
	case c.issuer == "":
		return nil
	case iss == "" && c.issRequired:
		return errorf("%w: the provider sends the iss parameter (RFC 9207), but this callback has none", ErrInvalidIssuer)
	case iss != "" && iss != c.issuer && !fitsTemplate(c.issuer, iss):
		return errorf("%w: the callback came from issuer %q, not %q (possible mix-up attack)", ErrInvalidIssuer, sanitizeText(iss, 256), c.issuer)
	}
	return nil
}

// issuerFor is the issuer an ID token with these claims must name: the
// configured one, or the IssuerTemplate's answer for its tid, which must
// itself fit the template.
func (c *CLITokenClient) issuerFor(cl *Claims) (string, error) {
	if !strings.Contains(c.issuer, tenantPlaceholder) {
		return c.issuer, nil
	}
	iss, err := c.issuerTemplate(c.issuer, cl.tid)
	if err == nil && !fitsTemplate(c.issuer, iss) {
		err = errors.New("its answer does not fit the template")
	}
	if err != nil {
		return "", invalidIDToken(ErrInvalidIssuer, "the issuer template %q refused the tid %q: %s", c.issuer, sanitizeText(cl.tid, 64), sanitizeText(err.Error(), 200))
	}
	return iss, nil
}

// verifyIDToken checks an ID token: signature first (ErrInvalidIDToken
// and the signature error, never a claim error with it), then the claims.
// nonce is empty on refresh; prev, when known, is the ID token being
// replaced, whose identity a refreshed one must keep (OpenID Connect Core
// §12.2).
func (c *CLITokenClient) verifyIDToken(ctx context.Context, raw, accessToken, nonce string, prev *IDToken) (*IDToken, error) {
	tok, err := parseCompactJWS(raw)
	if err != nil {
		return nil, errorf("%w: %w", ErrInvalidIDToken, err)
	}
	switch v := c.validator.(type) {
	case nil: // WithoutJWKSValidation: claims only
	case *RemoteJWKSValidator:
		// The signature only: the parsed token is not parsed twice, and
		// exp and nbf, which Validate also checks, are checked below once.
		err = v.verify(ctx, tok)
	default:
		err = v.Validate(ctx, raw)
	}
	switch {
	case errors.Is(err, ErrInvalidIDToken):
		// A caller's validator built on RemoteJWKSValidator.Validate
		// already says so.
		return nil, err
	case err != nil:
		return nil, errorf("%w: %w", ErrInvalidIDToken, err)
	}
	claims, err := parseClaims(tok.payload)
	if err != nil {
		return nil, errorf("%w: %w", ErrInvalidIDToken, err)
	}
	issuer, err := c.issuerFor(claims)
	if err != nil {
		return nil, err
	}
	checks := idTokenChecks{clientID: c.clientID, issuer: issuer, nonce: nonce, accessToken: accessToken, now: c.now()}
	if err := checks.check(claims, tok.alg); err != nil {
		return nil, err
	}
	if prev != nil {
		if err := sameIdentity(prev.claims, claims); err != nil {
			return nil, err
		}
	}
	return &IDToken{raw: newSecret(raw), alg: tok.alg, claims: claims}, nil
}

// flowContextError explains why waiting stopped: the caller cancelled, or
// the wait timed out. Requests refused meanwhile are reported too, as they
// may be an attack or a stale tab.
func flowContextError(ctxErr error, srv *callbackServer, timeout time.Duration) error {
	if errors.Is(ctxErr, context.Canceled) {
		return errors.Join(errorf("loopauth: authorization flow canceled: %w", ctxErr), refusedError(srv))
	}
	if ctxErr != nil {
		timeout = 0 // the caller's deadline, not ours: its length is unknown
	}
	return errors.Join(timeoutError{after: timeout}, refusedError(srv))
}

// timeoutError is the error of a flow whose browser did not come back. It
// matches ErrTimeout and context.DeadlineExceeded.
type timeoutError struct{ after time.Duration }

func (e timeoutError) Error() string {
	if e.after > 0 {
		return fmt.Sprintf("loopauth: no answer from the browser within %v; run the command again to sign in", e.after)
	}
	return "loopauth: no answer from the browser before the deadline; run the command again to sign in"
}

func (e timeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

// refusedError tells the user how many requests the callback server
// refused while the flow waited: their login may have been interfered
// with. It matches ErrStateMismatch when some carried a wrong or missing
// state. It is nil when there were none.
func refusedError(srv *callbackServer) error {
	if srv == nil {
		return nil
	}
	total, badState := srv.refusals()
	what := groupThousands(total) + " requests to the callback server were refused"
	if total == 1 {
		what = "1 request to the callback server was refused"
	}
	switch {
	case badState > 0:
		return errorf("%w: %s, %s with a wrong or missing state; another program or web page may have interfered with this sign-in, see the debug log",
			ErrStateMismatch, what, groupThousands(badState))
	case total > 0:
		return errorf("loopauth: %s; another program or web page may have interfered with this sign-in, see the debug log", what)
	}
	return nil
}

// groupThousands writes a count (never negative) with thousands
// separators: 1,204.
func groupThousands(n int64) string {
	digits := strconv.FormatInt(n, 10)
	b := make([]byte, 0, len(digits)+len(digits)/3)
	for i := 0; i < len(digits); i++ {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, digits[i])
	}
	return string(b)
}

// renderSuccess picks the success page: renderer, then fixed HTML, then
// the default page.
func (c *CLITokenClient) renderSuccess(ctx context.Context, ts *TokenSet, redirectURI string) string {
	p := &PageContext{
		scopes:          ts.scopes,
		redirectURI:     redirectURI,
		clientID:        c.clientID,
		expiresAt:       ts.expiresAt,
		hasRefreshToken: ts.RefreshToken() != "",
	}
	if ts.idToken != nil {
		p.claims = ts.idToken.claims
	}
	switch {
	case c.successRenderer != nil:
		return c.successRenderer.RenderSuccess(ctx, p)
	case c.successHTML != nil:
		return *c.successHTML
	}
	return defaultSuccessPage(p)
}

// renderError picks the error page the same way.
func (c *CLITokenClient) renderError(ctx context.Context, err error, redirectURI string) string {
	p := &ErrorPageContext{err: err, scopes: c.scopes, redirectURI: redirectURI, clientID: c.clientID}
	switch {
	case c.errorRenderer != nil:
		return c.errorRenderer.RenderError(ctx, p)
	case c.errorHTML != nil:
		return *c.errorHTML
	}
	return defaultErrorPage(p)
}

// changed calls the OnTokenSetChange hook.
func (c *CLITokenClient) changed(ts *TokenSet) {
	if c.onTokens != nil {
		c.onTokens(ts)
	}
}

// Refresh exchanges a refresh token for a new token set (RFC 6749 §6). When
// the provider does not return a new refresh token, the one passed in is
// kept in the result. An empty refreshToken gives ErrNoRefreshToken without
// a request.
//
// Refresh knows nothing of the token set the refresh token came from: in
// OpenID mode a returned ID token is verified, but not compared with the
// previous one, and when none is returned the result has none. Prefer
// RefreshIfExpiring with the previous set, which keeps its scopes and ID
// token and checks that a new ID token names the same user (OpenID
// Connect Core §12.2); a threshold longer than the token's lifetime forces
// the refresh.
func (c *CLITokenClient) Refresh(ctx context.Context, refreshToken string) (*TokenSet, error) {
	return c.refresh(ctx, refreshToken, nil)
}

// RefreshIfExpiring refreshes ts when its access token expires within
// threshold (or has expired). A token set without a known expiry is never
// refreshed. When a refresh is needed but ts has no refresh token, the
// error is ErrNoRefreshToken. Scopes the refresh response does not restate
// are kept from ts.
func (c *CLITokenClient) RefreshIfExpiring(ctx context.Context, ts *TokenSet, threshold time.Duration) (RefreshOutcome, error) {
	if ts == nil {
		return RefreshOutcome{}, errors.New("loopauth: RefreshIfExpiring needs a token set")
	}
	if ts.expiresAt.IsZero() || ts.expiresAt.Sub(c.now()) > threshold {
		return RefreshOutcome{tokens: ts}, nil
	}
	if ts.RefreshToken() == "" {
		return RefreshOutcome{}, ErrNoRefreshToken
	}
	next, err := c.refresh(ctx, ts.RefreshToken(), ts)
	if err != nil {
		return RefreshOutcome{}, err
	}
	return RefreshOutcome{refreshed: true, tokens: next}, nil
}

// String describes the client without its client secret. The methods
// that print a client are on the pointer, as a client holds a mutex and
// is never copied; a copy made anyway (by reflection) prints the client
// secret as an address, since it is kept behind a pointer.
func (c *CLITokenClient) String() string {
	if c == nil {
		return "CLITokenClient(nil)"
	}
	return c.settings.describe("CLITokenClient", c.authURL.Redacted(), c.tokenURL.Redacted())
}

// GoString is String, so %#v cannot print the client secret either.
func (c *CLITokenClient) GoString() string { return c.String() }

// Format makes every fmt verb print String: the client holds the client
// secret, which %+v or %x of its fields would otherwise print.
func (c *CLITokenClient) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue describes the client to log/slog without its client secret.
func (c *CLITokenClient) LogValue() slog.Value { return slog.StringValue(c.String()) }
