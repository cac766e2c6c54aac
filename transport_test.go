package loopauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// trRequest is what a test API server saw of one request.
type trRequest struct {
	host string
	path string
	auth []string // every Authorization value, to catch a missing and a doubled one
	body string
}

// trAPI is an httptest server standing for the API the transport calls.
// respond decides the status (and a Location for redirects) of the nth
// request (from 0); nil answers 200 to everything.
type trAPI struct {
	*httptest.Server
	mu   sync.Mutex
	seen []trRequest
}

func newTrAPI(t testing.TB, respond func(r *http.Request, n int) (status int, location string)) *trAPI {
	t.Helper()
	a := &trAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("API: reading the body: %v", err)
		}
		a.mu.Lock()
		n := len(a.seen)
		a.seen = append(a.seen, trRequest{host: r.Host, path: r.URL.Path, auth: r.Header.Values("Authorization"), body: string(body)})
		a.mu.Unlock()
		status, location := http.StatusOK, ""
		if respond != nil {
			status, location = respond(r, n)
		}
		if location != "" {
			w.Header().Set("Location", location)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d to request %d", status, n)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *trAPI) requests() []trRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]trRequest(nil), a.seen...)
}

// trRejecting answers 401 to requests carrying the bearer token bad.
func trRejecting(bad string) func(*http.Request, int) (int, string) {
	return func(r *http.Request, _ int) (int, string) {
		if r.Header.Get("Authorization") == "Bearer "+bad {
			return http.StatusUnauthorized, ""
		}
		return http.StatusOK, ""
	}
}

// trNoBrowser is a BrowserOpener that fails the test: the transport must
// not sign in when the stored set can be used or refreshed.
func trNoBrowser(t *testing.T) BrowserOpener {
	return func(context.Context, string) error {
		t.Error("the browser was opened")
		return errors.New("no browser in this test")
	}
}

// trSignIn signs in once at p and returns a refresh token that p
// accepts (one authorization_code grant).
func trSignIn(t *testing.T, p *loopauthtest.Provider) string {
	t.Helper()
	ts, err := flowClient(t, p, nil).RunAuthorizationFlow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ts.RefreshToken() == "" {
		t.Fatal("the provider issued no refresh token")
	}
	return ts.RefreshToken()
}

// trStore wraps a TokenStore, counts Load and Save, and can fail them.
type trStore struct {
	TokenStore
	loads, saves     atomic.Int32
	loadErr, saveErr error
}

func (s *trStore) Load(ctx context.Context) (*TokenSet, error) {
	s.loads.Add(1)
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	return s.TokenStore.Load(ctx)
}

func (s *trStore) Save(ctx context.Context, ts *TokenSet) error {
	s.saves.Add(1)
	if s.saveErr != nil {
		return s.saveErr
	}
	return s.TokenStore.Save(ctx, ts)
}

// trStoreWith returns a counting store holding ts.
func trStoreWith(t *testing.T, ts *TokenSet) *trStore {
	t.Helper()
	m := NewMemoryStore()
	if err := m.Save(context.Background(), ts); err != nil {
		t.Fatal(err)
	}
	return &trStore{TokenStore: m}
}

// trBody is a request body that records Close.
type trBody struct {
	io.Reader
	closed atomic.Int32
}

func (b *trBody) Close() error { b.closed.Add(1); return nil }

// readAll reads and closes a response body.
func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return string(b)
}

// TestTransportAttachesBearer: a valid stored set is sent as
// "Authorization: Bearer", once, with no token request and no browser, and
// the caller's request is left as it was.
func TestTransportAttachesBearer(t *testing.T) {
	for _, via := range []string{"RoundTrip", "AuthorizedHTTPClient"} {
		t.Run(via, func(t *testing.T) {
			p := loopauthtest.NewProvider(t)
			c := flowClient(t, p, trNoBrowser(t))
			store := trStoreWith(t, storedSet(t, "stored-access", "stored-refresh", time.Hour))
			api := newTrAPI(t, nil)

			req, err := http.NewRequest("GET", api.URL+"/thing", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Caller", "kept")
			before := req.Header.Clone()
			var resp *http.Response
			if via == "RoundTrip" {
				resp, err = c.Transport(store, nil).RoundTrip(req)
			} else {
				resp, err = c.AuthorizedHTTPClient(store).Do(req)
			}
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)

			seen := api.requests()
			if len(seen) != 1 || !reflect.DeepEqual(seen[0].auth, []string{"Bearer stored-access"}) {
				t.Errorf("API saw %+v, want one request with Authorization: Bearer stored-access", seen)
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
			}
			if n := len(p.TokenRequests()); n != 0 {
				t.Errorf("%d token requests for a valid stored set", n)
			}
			if n := store.saves.Load(); n != 0 {
				t.Errorf("%d saves for a valid stored set", n)
			}
			if got := req.Header.Values("Authorization"); got != nil {
				t.Errorf("the caller's request was modified: Authorization %q", got)
			}
			if !reflect.DeepEqual(req.Header, before) {
				t.Errorf("the caller's headers changed: %v, were %v", req.Header, before)
			}
		})
	}
}

// TestTransportRefreshesBeforeExpiry: a stored set expiring within the
// skew is refreshed once before the request, the API sees the new token,
// the store holds it, and later requests use the cached set without
// reading the store.
func TestTransportRefreshesBeforeExpiry(t *testing.T) {
	tests := []struct {
		name        string
		expiresIn   time.Duration
		within      time.Duration // RefreshWithin; 0 keeps the default minute
		wantRefresh bool
	}{
		{"already expired", -time.Minute, 0, true},
		{"within the default skew", 30 * time.Second, 0, true},
		{"within a configured skew", 5 * time.Minute, 10 * time.Minute, true},
		{"outside the default skew", 2 * time.Minute, 0, false},
		{"outside a configured skew", 5 * time.Minute, 2 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			p := loopauthtest.NewProvider(t)
			rt := trSignIn(t, p)
			var opts []func(*CLITokenClientBuilder)
			if tt.within != 0 {
				opts = append(opts, func(b *CLITokenClientBuilder) { b.RefreshWithin(tt.within) })
			}
			c := flowClient(t, p, trNoBrowser(t), opts...)
			store := trStoreWith(t, storedSet(t, "old-access", rt, tt.expiresIn))
			// A refreshed set must be sent before the old one: the API
			// rejects it, so a late refresh (through a 401) shows as a
			// second request.
			respond := trRejecting("old-access")
			if !tt.wantRefresh {
				respond = nil
			}
			api := newTrAPI(t, respond)
			client := &http.Client{Transport: c.Transport(store, nil)}

			resp, err := client.Get(api.URL + "/first")
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			codes, refreshes := grants(p)
			want := map[bool]int{false: 0, true: 1}[tt.wantRefresh]
			if codes != 1 || refreshes != want {
				t.Fatalf("%d sign-ins and %d refreshes, want 1 (the setup) and %d", codes, refreshes, want)
			}
			seen := api.requests()
			if len(seen) != 1 || len(seen[0].auth) != 1 {
				t.Fatalf("API saw %+v, want one request with one token", seen)
			}
			sent := strings.TrimPrefix(seen[0].auth[0], "Bearer ")
			saved, err := store.TokenStore.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantRefresh {
				if sent == "old-access" || sent != saved.AccessToken() || saved.RefreshToken() == rt {
					t.Errorf("sent %q, store holds %q (refresh token rotated: %v); want the refreshed set sent and saved",
						sent, saved.AccessToken(), saved.RefreshToken() != rt)
				}
			} else if sent != "old-access" || saved.AccessToken() != "old-access" || store.saves.Load() != 0 {
				t.Errorf("sent %q, store holds %q after %d saves; want the stored set untouched", sent, saved.AccessToken(), store.saves.Load())
			}

			loads := store.loads.Load()
			for i := 0; i < 5; i++ {
				resp, err := client.Get(api.URL + "/later")
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, resp)
			}
			if n := store.loads.Load() - loads; n != 0 {
				t.Errorf("the store was read %d times by 5 later requests, want 0 (the set is cached)", n)
			}
			if _, r := grants(p); r != want {
				t.Errorf("%d refreshes after the later requests, want %d", r, want)
			}
			for _, s := range api.requests()[1:] {
				if !reflect.DeepEqual(s.auth, []string{"Bearer " + sent}) {
					t.Errorf("a later request carried %q, want the cached %q", s.auth, sent)
				}
			}
		})
	}
}

// TestTransportCachedSetExpires: the cached set is used only while it is
// valid for longer than the skew; once the clock reaches the skew, the
// next request refreshes (exactly once) and sends the new token.
func TestTransportCachedSetExpires(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	rt := trSignIn(t, p)
	c := flowClient(t, p, trNoBrowser(t))
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	c.now = func() time.Time { return time.Unix(0, clock.Load()) }
	store := trStoreWith(t, storedSet(t, "old-access", rt, 2*time.Hour))
	api := newTrAPI(t, nil)
	client := &http.Client{Transport: c.Transport(store, nil)}
	get := func() string {
		t.Helper()
		resp, err := client.Get(api.URL)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		seen := api.requests()
		return strings.Join(seen[len(seen)-1].auth, ",")
	}

	if got := get(); got != "Bearer old-access" {
		t.Fatalf("sent %q", got)
	}
	clock.Add(int64(time.Hour)) // an hour left: still cached
	loads := store.loads.Load()
	if got := get(); got != "Bearer old-access" || store.loads.Load() != loads {
		t.Fatalf("sent %q after %d loads, want the cached set", got, store.loads.Load()-loads)
	}
	clock.Add(int64(time.Hour - 30*time.Second)) // 30s left: within the skew
	fresh := get()
	if _, refreshes := grants(p); refreshes != 1 || fresh == "Bearer old-access" {
		t.Fatalf("sent %q after %d refreshes, want a refreshed token after 1", fresh, refreshes)
	}
	loads = store.loads.Load()
	if got := get(); got != fresh || store.loads.Load() != loads {
		t.Errorf("sent %q after %d loads, want the refreshed set from the cache", got, store.loads.Load()-loads)
	}
	if _, refreshes := grants(p); refreshes != 1 {
		t.Errorf("%d refreshes, want 1", refreshes)
	}
}

// TestTransportRetriesOnceAfter401: a 401 forces one refresh and one
// retry with the new token; a 401 to every token ends after two requests
// with the 401 given to the caller, body intact.
func TestTransportRetriesOnceAfter401(t *testing.T) {
	tests := []struct {
		name         string
		opts         []loopauthtest.Option
		respond      func(*http.Request, int) (int, string)
		wantStatus   int
		wantRequests int
		wantNewToken bool // the second request carries a refreshed token
	}{
		{
			name:         "token revoked early",
			respond:      trRejecting("old-access"),
			wantStatus:   http.StatusOK,
			wantRequests: 2,
			wantNewToken: true,
		},
		{
			name:         "every token rejected",
			respond:      func(*http.Request, int) (int, string) { return http.StatusUnauthorized, "" },
			wantStatus:   http.StatusUnauthorized,
			wantRequests: 2,
			wantNewToken: true,
		},
		{
			name:         "the refresh fails: the 401 stands",
			opts:         []loopauthtest.Option{loopauthtest.WithRefreshError(503, "temporarily_unavailable", "")},
			respond:      trRejecting("old-access"),
			wantStatus:   http.StatusUnauthorized,
			wantRequests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			p := loopauthtest.NewProvider(t, tt.opts...)
			rt := trSignIn(t, p)
			c := flowClient(t, p, trNoBrowser(t))
			store := trStoreWith(t, storedSet(t, "old-access", rt, time.Hour))
			api := newTrAPI(t, tt.respond)

			tr := c.Transport(store, nil)
			req, _ := http.NewRequest("GET", api.URL+"/resource", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			seen := api.requests()
			if resp.StatusCode != tt.wantStatus || len(seen) != tt.wantRequests {
				t.Fatalf("status %d after %d API requests, want %d after %d", resp.StatusCode, len(seen), tt.wantStatus, tt.wantRequests)
			}
			if want := fmt.Sprintf("answer %d to request %d", tt.wantStatus, tt.wantRequests-1); body != want {
				t.Errorf("body %q, want %q (the last answer, readable)", body, want)
			}
			if _, refreshes := grants(p); refreshes != 1 {
				t.Errorf("%d refresh requests, want 1", refreshes)
			}
			if req.Header.Get("Authorization") != "" {
				t.Error("the caller's request was modified")
			}
			if !reflect.DeepEqual(seen[0].auth, []string{"Bearer old-access"}) {
				t.Errorf("first request carried %q", seen[0].auth)
			}
			if !tt.wantNewToken {
				return
			}
			saved, _ := store.TokenStore.Load(ctx)
			if !reflect.DeepEqual(seen[1].auth, []string{"Bearer " + saved.AccessToken()}) || saved.AccessToken() == "old-access" {
				t.Errorf("retry carried %q, store holds %q; want the refreshed token in both", seen[1].auth, saved.AccessToken())
			}
			if tt.wantStatus != http.StatusOK {
				return
			}
			// The refreshed set is now the cached one: no 401, no refresh.
			loads := store.loads.Load()
			resp, err = tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if n := store.loads.Load() - loads; n != 0 {
				t.Errorf("the store was read %d times after the retry refreshed the cached set", n)
			}
			if _, refreshes := grants(p); resp.StatusCode != http.StatusOK || refreshes != 1 || len(api.requests()) != 3 {
				t.Errorf("next request: status %d, %d refreshes, %d API requests", resp.StatusCode, refreshes, len(api.requests()))
			}
		})
	}
}

// TestTransportReplaysOnlyReplayableBodies: after a 401 a request is
// retried only when its body can be produced again (GetBody, or no body);
// the retry sends the whole body.
func TestTransportReplaysOnlyReplayableBodies(t *testing.T) {
	payload := strings.Repeat("0123456789abcdef", 16<<10) // 256 KiB, more than one write
	tests := []struct {
		name         string
		method       string
		newReq       func(t *testing.T, url string) *http.Request
		wantRequests int
		wantStatus   int
		wantBody     string
	}{
		{
			name: "io.Reader without GetBody: not retried",
			newReq: func(t *testing.T, url string) *http.Request {
				req, err := http.NewRequest("POST", url, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Body = io.NopCloser(strings.NewReader(payload))
				req.ContentLength = int64(len(payload))
				if req.GetBody != nil {
					t.Fatal("GetBody set")
				}
				return req
			},
			wantRequests: 1, wantStatus: http.StatusUnauthorized, wantBody: payload,
		},
		{
			name: "chunked io.Reader without GetBody: not retried",
			newReq: func(t *testing.T, url string) *http.Request {
				req, err := http.NewRequest("POST", url, io.MultiReader(strings.NewReader(payload)))
				if err != nil || req.GetBody != nil {
					t.Fatalf("err %v, GetBody set %v", err, req.GetBody != nil)
				}
				return req
			},
			wantRequests: 1, wantStatus: http.StatusUnauthorized, wantBody: payload,
		},
		{
			name: "strings.Reader: retried with the whole body",
			newReq: func(t *testing.T, url string) *http.Request {
				req, err := http.NewRequest("POST", url, strings.NewReader(payload))
				if err != nil {
					t.Fatal(err)
				}
				return req
			},
			wantRequests: 2, wantStatus: http.StatusOK, wantBody: payload,
		},
		{
			name: "bytes.Buffer: retried with the whole body",
			newReq: func(t *testing.T, url string) *http.Request {
				req, err := http.NewRequest("PUT", url, bytes.NewBufferString(payload))
				if err != nil {
					t.Fatal(err)
				}
				return req
			},
			wantRequests: 2, wantStatus: http.StatusOK, wantBody: payload,
		},
		{
			name: "no body: retried",
			newReq: func(t *testing.T, url string) *http.Request {
				req, err := http.NewRequest("DELETE", url, nil)
				if err != nil {
					t.Fatal(err)
				}
				return req
			},
			wantRequests: 2, wantStatus: http.StatusOK, wantBody: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t)
			rt := trSignIn(t, p)
			c := flowClient(t, p, trNoBrowser(t))
			store := trStoreWith(t, storedSet(t, "old-access", rt, time.Hour))
			api := newTrAPI(t, trRejecting("old-access"))

			// Without keep-alive: on a reused connection net/http rewinds
			// a spent body through GetBody by itself (a request that wrote
			// nothing is retried), which would hide a retry sending the
			// spent body instead of a new one from GetBody.
			base := &http.Transport{DisableKeepAlives: true}
			defer base.CloseIdleConnections()
			resp, err := c.Transport(store, base).RoundTrip(tt.newReq(t, api.URL+"/upload"))
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			seen := api.requests()
			if resp.StatusCode != tt.wantStatus || len(seen) != tt.wantRequests {
				t.Fatalf("status %d after %d API requests, want %d after %d", resp.StatusCode, len(seen), tt.wantStatus, tt.wantRequests)
			}
			for i, s := range seen {
				if s.body != tt.wantBody {
					t.Errorf("request %d: the API received %d body bytes, want %d", i, len(s.body), len(tt.wantBody))
				}
			}
			if tt.wantRequests == 2 && reflect.DeepEqual(seen[0].auth, seen[1].auth) {
				t.Errorf("the retry carried the rejected token %q", seen[1].auth)
			}
		})
	}
}

// TestTransportRedirects: through AuthorizedHTTPClient, a redirect to
// another host:port carries no Authorization header; one within the same
// host keeps the token.
func TestTransportRedirects(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	c := flowClient(t, p, trNoBrowser(t))
	store := trStoreWith(t, storedSet(t, "secret-access", "secret-refresh", time.Hour))
	b := newTrAPI(t, nil)
	var a *trAPI
	a = newTrAPI(t, func(r *http.Request, _ int) (int, string) {
		q := r.URL.Query()
		var code int
		fmt.Sscan(q.Get("code"), &code)
		switch r.URL.Path {
		case "/to-b":
			return code, b.URL + "/landing"
		case "/to-a":
			return code, a.URL + "/landing"
		case "/hop": // within A first, then to B
			return code, a.URL + "/to-b?code=" + q.Get("code")
		}
		return http.StatusOK, ""
	})
	if a.Listener.Addr().String() == b.Listener.Addr().String() {
		t.Fatal("A and B share an address")
	}

	const payload = "redirected body"
	tests := []struct {
		method, path string
		code         int
		wantHost     *trAPI // where the final request lands
		wantToken    bool   // whether it carries the token
	}{
		{"GET", "/to-b", http.StatusFound, b, false},
		{"GET", "/to-b", http.StatusMovedPermanently, b, false},
		{"GET", "/to-b", http.StatusSeeOther, b, false},
		{"POST", "/to-b", http.StatusTemporaryRedirect, b, false},
		{"PUT", "/to-b", http.StatusPermanentRedirect, b, false},
		{"GET", "/hop", http.StatusFound, b, false},
		{"POST", "/hop", http.StatusTemporaryRedirect, b, false},
		{"GET", "/to-a", http.StatusFound, a, true},
		{"POST", "/to-a", http.StatusTemporaryRedirect, a, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s %d", tt.method, tt.path, tt.code), func(t *testing.T) {
			nA, nB := len(a.requests()), len(b.requests())
			var body io.Reader
			if tt.method != "GET" {
				body = strings.NewReader(payload)
			}
			req, err := http.NewRequest(tt.method, a.URL+tt.path+"?code="+fmt.Sprint(tt.code), body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.AuthorizedHTTPClient(store).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			seenA, seenB := a.requests()[nA:], b.requests()[nB:]
			if len(seenA) == 0 || !reflect.DeepEqual(seenA[0].auth, []string{"Bearer secret-access"}) {
				t.Fatalf("A saw %+v, want the token on the first request", seenA)
			}
			var last trRequest
			if tt.wantHost == b {
				if len(seenB) != 1 {
					t.Fatalf("B saw %d requests, want 1", len(seenB))
				}
				last = seenB[0]
			} else {
				if len(seenB) != 0 || len(seenA) != 2 {
					t.Fatalf("A saw %d and B %d requests, want 2 and 0", len(seenA), len(seenB))
				}
				last = seenA[1]
			}
			if tt.wantToken && !reflect.DeepEqual(last.auth, []string{"Bearer secret-access"}) {
				t.Errorf("redirect within A carried %q, want the token", last.auth)
			}
			if !tt.wantToken && last.auth != nil {
				t.Errorf("redirect to %s carried Authorization %q", last.host, last.auth)
			}
			for _, s := range append(seenA, seenB...) {
				for _, v := range s.auth {
					if v != "Bearer secret-access" {
						t.Errorf("unexpected Authorization %q", v)
					}
				}
			}
			if tt.code == http.StatusTemporaryRedirect || tt.code == http.StatusPermanentRedirect {
				if last.body != payload {
					t.Errorf("the redirected request's body is %q, want %q", last.body, payload)
				}
			}
		})
	}
	if n := len(p.TokenRequests()); n != 0 {
		t.Errorf("%d token requests", n)
	}
}

// TestTransportRedirectWithBareBase: the token must not follow a redirect
// to another host even when base is a RoundTripper that does not fill
// Response.Request (net/http documents the field as set only for client
// requests; test doubles, caches and record/replay transports often leave
// it nil). sameOrigin then cannot walk back to the first request, and must
// fail closed.
func TestTransportRedirectWithBareBase(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	c := flowClient(t, p, trNoBrowser(t))
	store := trStoreWith(t, storedSet(t, "secret-access", "secret-refresh", time.Hour))
	b := newTrAPI(t, nil)
	a := newTrAPI(t, func(*http.Request, int) (int, string) { return http.StatusFound, b.URL + "/landing" })
	base := trRoundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if resp != nil {
			resp.Request = nil
		}
		return resp, err
	})
	resp, err := (&http.Client{Transport: c.Transport(store, base)}).Get(a.URL + "/start")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if seen := b.requests(); len(seen) != 1 || seen[0].auth != nil {
		t.Errorf("B saw %+v, want one request without Authorization", seen)
	}
}

type trRoundTripFunc func(*http.Request) (*http.Response, error)

func (f trRoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSameOrigin checks the redirect rule on crafted chains, including a
// downgrade from https to http on the same host, which two plain-http test
// servers cannot show.
func TestSameOrigin(t *testing.T) {
	// chain builds a request for the last URL, as http.Client builds
	// redirects: each request's Response.Request is the previous request.
	chain := func(urls ...string) *http.Request {
		var prev *http.Request
		for _, u := range urls {
			req := httptest.NewRequest("GET", u, nil)
			req.RequestURI = ""
			if prev != nil {
				req.Response = &http.Response{StatusCode: http.StatusFound, Request: prev}
			}
			prev = req
		}
		return prev
	}
	tests := []struct {
		name string
		req  *http.Request
		want bool
	}{
		{"the caller's request", chain("https://api.example.com/v1"), true},
		{"same scheme and host", chain("https://api.example.com/v1", "https://api.example.com/v2"), true},
		{"https to http on the same host", chain("https://api.example.com/v1", "http://api.example.com/v1"), false},
		{"http to https on the same host", chain("http://api.example.com/v1", "https://api.example.com/v1"), false},
		{"another host", chain("https://api.example.com/v1", "https://evil.example.net/v1"), false},
		{"a subdomain", chain("https://example.com/v1", "https://api.example.com/v1"), false},
		{"another port", chain("http://127.0.0.1:8080/", "http://127.0.0.1:8081/"), false},
		{"explicit default port", chain("https://api.example.com/", "https://api.example.com:443/"), false},
		{"two hops within the host", chain("https://api.example.com/a", "https://api.example.com/b", "https://api.example.com/c"), true},
		{"two hops, then http", chain("https://api.example.com/a", "https://api.example.com/b", "http://api.example.com/c"), false},
		{"away and back to the first host", chain("https://api.example.com/a", "https://cdn.example.net/b", "https://api.example.com/c"), true},
		{"back to the first host over http", chain("https://api.example.com/a", "https://cdn.example.net/b", "http://api.example.com/c"), false},
		{"hop within another host", chain("https://api.example.com/a", "https://cdn.example.net/b", "https://cdn.example.net/c"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameOrigin(tt.req); got != tt.want {
				t.Errorf("sameOrigin(%s) = %v, want %v", tt.req.URL, got, tt.want)
			}
		})
	}
}

// TestTransportConcurrentRefresh: 50 goroutines through one transport
// share one refresh, whether the set is expiring or rejected with 401s.
// Run with -race.
func TestTransportConcurrentRefresh(t *testing.T) {
	tests := []struct {
		name         string
		expiresIn    time.Duration
		respond      func(*http.Request, int) (int, string)
		wantRequests [2]int // bounds on the API requests
	}{
		{"expiring set", 30 * time.Second, trRejecting("old-access"), [2]int{50, 50}},
		{"valid set rejected with 401", time.Hour, trRejecting("old-access"), [2]int{51, 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, loopauthtest.WithTokenDelay(50*time.Millisecond))
			rt := trSignIn(t, p)
			c := flowClient(t, p, trNoBrowser(t))
			store := trStoreWith(t, storedSet(t, "old-access", rt, tt.expiresIn))
			api := newTrAPI(t, tt.respond)
			client := &http.Client{Transport: c.Transport(store, nil)}

			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := 0; i < 50; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					resp, err := client.Get(api.URL + "/concurrent")
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					io.Copy(io.Discard, resp.Body)
					if resp.StatusCode != http.StatusOK {
						t.Errorf("status %d", resp.StatusCode)
					}
				}()
			}
			close(start)
			wg.Wait()

			codes, refreshes := grants(p)
			if codes != 1 || refreshes != 1 {
				t.Errorf("%d sign-ins and %d refreshes, want 1 (the setup) and 1", codes, refreshes)
			}
			seen := api.requests()
			if len(seen) < tt.wantRequests[0] || len(seen) > tt.wantRequests[1] {
				t.Errorf("%d API requests, want %d to %d", len(seen), tt.wantRequests[0], tt.wantRequests[1])
			}
			fresh := map[string]bool{}
			for _, s := range seen {
				if len(s.auth) != 1 {
					t.Fatalf("request with Authorization %q", s.auth)
				}
				if s.auth[0] != "Bearer old-access" {
					fresh[s.auth[0]] = true
				}
			}
			if len(fresh) != 1 {
				t.Errorf("%d distinct refreshed tokens sent, want 1", len(fresh))
			}
		})
	}
}

// TestTransportTokenErrors: when no token can be had, RoundTrip returns
// the error without calling the API, and closes the request body.
func TestTransportTokenErrors(t *testing.T) {
	diskErr := errors.New("disk on fire")
	tests := []struct {
		name    string
		opts    []loopauthtest.Option
		store   func(t *testing.T) TokenStore
		ctx     func() context.Context
		wantErr func(t *testing.T, err error)
	}{
		{
			name: "refresh refused with 503, stored set expired",
			opts: []loopauthtest.Option{loopauthtest.WithRefreshError(503, "temporarily_unavailable", "try later")},
			store: func(t *testing.T) TokenStore {
				return trStoreWith(t, storedSet(t, "old-access", "old-refresh", -time.Minute))
			},
			wantErr: func(t *testing.T, err error) {
				var pe *ProviderError
				if !errors.As(err, &pe) || pe.StatusCode != 503 {
					t.Errorf("err %v, want the provider's 503", err)
				}
			},
		},
		{
			name: "store unreadable",
			store: func(t *testing.T) TokenStore {
				return &trStore{TokenStore: NewMemoryStore(), loadErr: diskErr}
			},
			wantErr: func(t *testing.T, err error) {
				if !errors.Is(err, diskErr) {
					t.Errorf("err %v, want the store's error", err)
				}
			},
		},
		{
			name: "context canceled",
			store: func(t *testing.T) TokenStore {
				return trStoreWith(t, storedSet(t, "old-access", "old-refresh", time.Hour))
			},
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			wantErr: func(t *testing.T, err error) {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err %v, want context.Canceled", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, tt.opts...)
			c := flowClient(t, p, trNoBrowser(t))
			api := newTrAPI(t, nil)
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			body := &trBody{Reader: strings.NewReader("payload")}
			req, err := http.NewRequestWithContext(ctx, "POST", api.URL+"/upload", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Body, req.ContentLength = body, int64(len("payload"))

			resp, err := c.Transport(tt.store(t), nil).RoundTrip(req)
			if err == nil || resp != nil {
				t.Fatalf("resp %v, err %v; want an error and no response", resp, err)
			}
			tt.wantErr(t, err)
			if n := len(api.requests()); n != 0 {
				t.Errorf("the API got %d requests", n)
			}
			if body.closed.Load() == 0 {
				t.Error("the request body was not closed")
			}
			if n := len(p.AuthorizeRequests()); n != 0 {
				t.Errorf("%d sign-ins", n)
			}
		})
	}
}

// TestTransportErrorsHideToken: no error the transport returns, directly
// or through http.Client, contains an access or refresh token.
func TestTransportErrorsHideToken(t *testing.T) {
	const access = "tok-ACCESS-4f9c2e7d1a"
	type setup struct {
		p      *loopauthtest.Provider
		store  *trStore
		client *http.Client
		mu     sync.Mutex
		issued []string // every token known to the test
	}
	// newSetup stores a set holding access and a refresh token that p
	// accepts (signed in once), expiring in expiresIn.
	newSetup := func(t *testing.T, expiresIn time.Duration, opts ...loopauthtest.Option) *setup {
		s := &setup{p: loopauthtest.NewProvider(t, opts...)}
		rt := trSignIn(t, s.p)
		s.issued = []string{access, rt}
		c := flowClient(t, s.p, trNoBrowser(t), func(b *CLITokenClientBuilder) {
			b.OnTokenSetChange(func(ts *TokenSet) {
				s.mu.Lock()
				s.issued = append(s.issued, ts.AccessToken(), ts.RefreshToken())
				s.mu.Unlock()
			})
		})
		s.store = trStoreWith(t, storedSet(t, access, rt, expiresIn))
		s.client = &http.Client{Transport: c.Transport(s.store, nil), Timeout: 5 * time.Second}
		return s
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s *setup) error
		opts []loopauthtest.Option
		exp  time.Duration
	}{
		{
			name: "refresh refused",
			opts: []loopauthtest.Option{loopauthtest.WithRefreshError(503, "temporarily_unavailable", "")},
			exp:  -time.Minute,
			run: func(t *testing.T, s *setup) error {
				_, err := s.client.Get("http://127.0.0.1:1/never")
				return err
			},
		},
		{
			name: "refreshed, but the save failed",
			exp:  -time.Minute,
			run: func(t *testing.T, s *setup) error {
				s.store.saveErr = errors.New("read-only store")
				_, err := s.client.Get("http://127.0.0.1:1/never")
				if _, refreshes := grants(s.p); refreshes != 1 {
					t.Fatalf("%d refreshes, want 1: %v", refreshes, err)
				}
				return err
			},
		},
		{
			name: "API unreachable",
			exp:  time.Hour,
			run: func(t *testing.T, s *setup) error {
				api := newTrAPI(t, nil)
				api.Close()
				_, err := s.client.Get(api.URL + "/gone")
				return err
			},
		},
		{
			name: "API hangs up",
			exp:  time.Hour,
			run: func(t *testing.T, s *setup) error {
				api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
						conn.Close()
					}
				}))
				defer api.Close()
				_, err := s.client.Get(api.URL)
				return err
			},
		},
		{
			name: "client timeout",
			exp:  time.Hour,
			run: func(t *testing.T, s *setup) error {
				release := make(chan struct{})
				api := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
				defer api.Close()
				defer close(release)
				s.client.Timeout = 100 * time.Millisecond
				_, err := s.client.Get(api.URL)
				return err
			},
		},
		{
			name: "GetBody fails on the retry",
			exp:  time.Hour,
			run: func(t *testing.T, s *setup) error {
				api := newTrAPI(t, trRejecting(access))
				req, _ := http.NewRequest("POST", api.URL, strings.NewReader("x"))
				req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("body gone") }
				_, err := s.client.Do(req)
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t, tt.exp, tt.opts...)
			err := tt.run(t, s)
			if err == nil {
				t.Fatal("no error")
			}
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Errorf("err %T, want *url.Error from http.Client", err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err)} {
				for _, secret := range s.issued {
					if secret != "" && strings.Contains(text, secret) {
						t.Errorf("the error shows a token: %s", text)
					}
				}
			}
		})
	}
}

// TestTransportNilResponse: a base RoundTripper that returns neither a
// response nor an error is an error, as http.Client makes it, not a
// panic, on the first request and on the retry after a 401.
func TestTransportNilResponse(t *testing.T) {
	for _, nilOn := range []int{1, 2} {
		t.Run(fmt.Sprintf("request %d", nilOn), func(t *testing.T) {
			p := loopauthtest.NewProvider(t)
			rt := trSignIn(t, p)
			c := flowClient(t, p, trNoBrowser(t))
			store := trStoreWith(t, storedSet(t, "old-access", rt, time.Hour))
			var n atomic.Int32
			base := trRoundTripFunc(func(r *http.Request) (*http.Response, error) {
				if int(n.Add(1)) == nilOn {
					return nil, nil
				}
				return &http.Response{StatusCode: http.StatusUnauthorized, Body: http.NoBody, Request: r}, nil
			})
			req, _ := http.NewRequest("GET", "http://127.0.0.1:1/resource", nil)
			var resp *http.Response
			var err error
			if v := catchPanic(func() { resp, err = c.Transport(store, base).RoundTrip(req) }); v != nil {
				t.Fatalf("RoundTrip panicked: %v", v)
			}
			if resp != nil || err == nil || !strings.Contains(err.Error(), "nil *http.Response with a nil error") {
				t.Errorf("RoundTrip = %v, %v; want an error", resp, err)
			}
			if int(n.Load()) != nilOn {
				t.Errorf("%d requests sent, want %d", n.Load(), nilOn)
			}
		})
	}
}

// TestTransportNoLeaks: no exit path of a request through Transport
// leaves a goroutine behind: the token's refresh, the API's connection
// (the base keeps none alive) and the retry all end before RoundTrip
// returns.
func TestTransportNoLeaks(t *testing.T) {
	diskErr := errors.New("disk on fire")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		opts      []loopauthtest.Option
		expiresIn time.Duration
		loadErr   error
		ctx       context.Context
		respond   func(*http.Request, int) (int, string)
		base      http.RoundTripper // nil: a transport without keep-alives
		wantErr   bool
	}{
		{name: "valid token", expiresIn: time.Hour},
		{name: "refreshed before the request", expiresIn: -time.Minute},
		{name: "401, refreshed and retried", expiresIn: time.Hour, respond: trRejecting("old-access")},
		{name: "401, the refresh fails", expiresIn: time.Hour, respond: trRejecting("old-access"),
			opts: []loopauthtest.Option{loopauthtest.WithRefreshError(503, "temporarily_unavailable", "")}},
		{name: "the refresh fails", expiresIn: -time.Minute, wantErr: true,
			opts: []loopauthtest.Option{loopauthtest.WithRefreshError(503, "temporarily_unavailable", "")}},
		{name: "store unreadable", loadErr: diskErr, wantErr: true},
		{name: "context cancelled", expiresIn: -time.Minute, ctx: cancelled, wantErr: true},
		{name: "the base fails", expiresIn: time.Hour, wantErr: true,
			base: trRoundTripFunc(func(*http.Request) (*http.Response, error) { return nil, diskErr })},
		{name: "the base returns nothing", expiresIn: time.Hour, wantErr: true,
			base: trRoundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, tt.opts...)
			rt := trSignIn(t, p)
			c := flowClient(t, p, trNoBrowser(t))
			store := trStoreWith(t, storedSet(t, "old-access", rt, tt.expiresIn))
			store.loadErr = tt.loadErr
			api := newTrAPI(t, tt.respond)
			base := tt.base
			if base == nil {
				base = &http.Transport{DisableKeepAlives: true}
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", api.URL+"/resource", nil)
			check := noLeaks(t)
			resp, err := c.Transport(store, base).RoundTrip(req)
			if resp != nil {
				readAll(t, resp)
			}
			check()
			if (err != nil) != tt.wantErr {
				t.Errorf("RoundTrip = %v, %v", resp, err)
			}
		})
	}
}
