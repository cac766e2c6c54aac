package loopauth

import (
	"io"
	"net/http"
	"sync"
)

// Transport returns an http.RoundTripper that sends requests through base
// (http.DefaultTransport when nil) with "Authorization: Bearer" and the
// access token of Token(store): it refreshes before expiry, or signs in,
// through the same shared path as Token. On a 401 it refreshes once and
// retries the request once, when the request's body can be sent again
// (no body, or GetBody set: http.NewRequest sets it for in-memory bodies);
// otherwise the 401 is returned and later requests use the new token.
//
// The token goes only to the host of the request the caller made: when
// http.Client follows a redirect to another host or scheme, the redirected
// request is sent without it. The caller's request is never modified.
func (c *CLITokenClient) Transport(store TokenStore, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &bearerTransport{client: c, store: store, base: base}
}

// AuthorizedHTTPClient returns an *http.Client whose requests carry the
// access token of Token(store), through Transport. Its redirect policy is
// http.Client's default; the token never follows a redirect to another
// host.
func (c *CLITokenClient) AuthorizedHTTPClient(store TokenStore) *http.Client {
	return &http.Client{Transport: c.Transport(store, nil)}
}

type bearerTransport struct {
	client *CLITokenClient
	store  TokenStore
	base   http.RoundTripper

	mu     sync.Mutex
	cached *TokenSet // the last set used: read from the store only when it expires
}

// RoundTrip implements http.RoundTripper.
func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(req) {
		return t.send(req)
	}
	ctx := req.Context()
	ts, err := t.token(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	sent := withBearer(req, ts)
	resp, err := t.send(sent)
	if resp != nil && resp.Request == nil {
		// Keep the redirect chain traceable for sameOrigin.
		resp.Request = sent
	}
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	// The provider may have revoked the token early, or the clock is off:
	// refresh once (unless another caller already did), then retry once if
	// the body can be sent again.
	next, err := t.client.obtainShared(ctx, t.store, ts)
	if err != nil || next.AccessToken() == ts.AccessToken() {
		return resp, nil // the 401 stands
	}
	t.setCached(next)
	if !replayable(req) {
		return resp, nil // later requests use the new token
	}
	drain(resp)
	retry := req.Clone(ctx)
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	return t.send(withBearer(retry, next))
}

// send is base.RoundTrip, with a base that returns neither a response nor
// an error turned into an error, as http.Client does.
func (t *bearerTransport) send(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if resp == nil && err == nil {
		return nil, errorf("loopauth: the base RoundTripper (%T) returned a nil *http.Response with a nil error", t.base)
	}
	return resp, err
}

// token returns the cached set while it is valid, and otherwise the set
// Token gives.
func (t *bearerTransport) token(req *http.Request) (*TokenSet, error) {
	t.mu.Lock()
	ts := t.cached
	t.mu.Unlock()
	if ts != nil && t.client.fresh(ts) {
		return ts, nil
	}
	ts, err := t.client.Token(req.Context(), t.store)
	if err != nil {
		return nil, err
	}
	t.setCached(ts)
	return ts, nil
}

func (t *bearerTransport) setCached(ts *TokenSet) {
	t.mu.Lock()
	t.cached = ts
	t.mu.Unlock()
}

// withBearer returns a copy of req with the access token; RoundTrippers
// must not modify the caller's request.
func withBearer(req *http.Request, ts *TokenSet) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+ts.AccessToken())
	return r
}

// sameOrigin reports whether req is the caller's own request, or a
// redirect that stays on its scheme and host. http.Client sets
// req.Response on the requests it makes to follow a redirect; the first
// request of the chain is the one the caller made.
// A chain it cannot trace back (a base RoundTripper that leaves
// Response.Request unset) counts as another origin: withholding the token
// is the safe failure.
func sameOrigin(req *http.Request) bool {
	first := req
	for first.Response != nil {
		if first.Response.Request == nil {
			return false
		}
		first = first.Response.Request
	}
	return first == req || first.URL.Scheme == req.URL.Scheme && first.URL.Host == req.URL.Host
}

// replayable reports whether req can be sent a second time.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// drain reads a little of an abandoned response so its connection can be
// reused, then closes it.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// closeBody closes the request body a RoundTripper must close even when
// it fails before sending.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
