package loopauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// storedSet builds a token set in the storage format.
func storedSet(t *testing.T, access, refresh string, expiresIn time.Duration) *TokenSet {
	t.Helper()
	var ts TokenSet
	doc := fmt.Sprintf(`{"access_token":%q,"refresh_token":%q,"expires_at":%d,"token_type":"Bearer","scopes":["email","offline_access"]}`,
		access, refresh, time.Now().Add(expiresIn).Unix())
	if err := json.Unmarshal([]byte(doc), &ts); err != nil {
		t.Fatal(err)
	}
	return &ts
}

// grants counts the token requests of each grant type.
func grants(p *loopauthtest.Provider) (codes, refreshes int) {
	for _, f := range p.TokenRequests() {
		switch f.Get("grant_type") {
		case "authorization_code":
			codes++
		case "refresh_token":
			refreshes++
		}
	}
	return codes, refreshes
}

// TestTokenDecisionTable walks the rows of Token's documented table; no
// row leaves a goroutine behind.
func TestTokenDecisionTable(t *testing.T) {
	ctx := context.Background()
	t.Run("empty store: sign in and save", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		store := NewMemoryStore()
		check := noLeaks(t)
		ts, err := flowClient(t, p, nil).Token(ctx, store)
		check()
		if err != nil {
			t.Fatal(err)
		}
		saved, err := store.Load(ctx)
		if err != nil || saved.AccessToken() != ts.AccessToken() || len(p.AuthorizeRequests()) != 1 {
			t.Errorf("saved %v, err %v, %d sign-ins", saved, err, len(p.AuthorizeRequests()))
		}
	})
	t.Run("valid set: returned, nothing sent, nothing written", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		store := NewMemoryStore()
		want := storedSet(t, "still-good", "rt", time.Hour)
		store.Save(ctx, want)
		var changes int
		c := flowClient(t, p, nil, func(b *CLITokenClientBuilder) { b.OnTokenSetChange(func(*TokenSet) { changes++ }) })
		check := noLeaks(t)
		ts, err := c.Token(ctx, store)
		check()
		if err != nil || ts.AccessToken() != "still-good" || len(p.TokenRequests()) != 0 || changes != 0 {
			t.Errorf("ts %v, err %v, %d token requests, %d changes", ts, err, len(p.TokenRequests()), changes)
		}
	})
	t.Run("expiring with a refresh token: refreshed and saved", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		c := flowClient(t, p, nil)
		store := NewMemoryStore()
		first, err := c.Token(ctx, store) // sign in for a real refresh token
		if err != nil {
			t.Fatal(err)
		}
		store.Save(ctx, storedSet(t, "old", first.RefreshToken(), 30*time.Second))
		check := noLeaks(t)
		ts, err := c.Token(ctx, store)
		check()
		if err != nil {
			t.Fatal(err)
		}
		saved, _ := store.Load(ctx)
		codes, refreshes := grants(p)
		if codes != 1 || refreshes != 1 || ts.AccessToken() == "old" || saved.RefreshToken() != ts.RefreshToken() || ts.RefreshToken() == first.RefreshToken() {
			t.Errorf("codes %d refreshes %d; saved %v", codes, refreshes, saved)
		}
	})
	t.Run("refresh token rejected: sign in again", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		store := NewMemoryStore()
		store.Save(ctx, storedSet(t, "old", "revoked-refresh-token", -time.Minute))
		check := noLeaks(t)
		ts, err := flowClient(t, p, nil).Token(ctx, store)
		check()
		if err != nil || ts.AccessToken() == "old" || len(p.AuthorizeRequests()) != 1 {
			t.Errorf("ts %v, err %v", ts, err)
		}
	})
	t.Run("expiring without a refresh token: sign in", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		store := NewMemoryStore()
		store.Save(ctx, storedSet(t, "old", "", 10*time.Second))
		check := noLeaks(t)
		_, err := flowClient(t, p, nil).Token(ctx, store)
		check()
		if err != nil || len(p.AuthorizeRequests()) != 1 {
			t.Errorf("err %v, %d sign-ins", err, len(p.AuthorizeRequests()))
		}
	})
	t.Run("refresh fails for another reason: error, no browser", func(t *testing.T) {
		p := loopauthtest.NewProvider(t, loopauthtest.WithRefreshError(503, "temporarily_unavailable", ""))
		store := NewMemoryStore()
		store.Save(ctx, storedSet(t, "old", "rt", -time.Minute))
		opened := false
		check := noLeaks(t)
		_, err := flowClient(t, p, func(context.Context, string) error { opened = true; return nil }).Token(ctx, store)
		check()
		var pe *ProviderError
		if !errors.As(err, &pe) || pe.StatusCode != 503 || opened {
			t.Errorf("err %v, browser opened %v", err, opened)
		}
	})
	t.Run("unreadable file: sign in and overwrite", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		path := filepath.Join(t.TempDir(), "tokens.json")
		os.WriteFile(path, []byte(`{"access_token":`), 0o600)
		store := NewFileStore(path)
		check := noLeaks(t)
		_, err := flowClient(t, p, nil).Token(ctx, store)
		check()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Load(ctx); err != nil {
			t.Errorf("not repaired: %v", err)
		}
	})
	t.Run("insecure file: error, no browser", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("file modes are Unix")
		}
		p := loopauthtest.NewProvider(t)
		path := filepath.Join(t.TempDir(), "tokens.json")
		data, _ := json.Marshal(storedSet(t, "a", "r", time.Hour))
		os.WriteFile(path, data, 0o644)
		os.Chmod(path, 0o644)
		check := noLeaks(t)
		_, err := flowClient(t, p, nil).Token(ctx, NewFileStore(path))
		check()
		if err == nil || len(p.AuthorizeRequests()) != 0 {
			t.Errorf("err %v, %d sign-ins", err, len(p.AuthorizeRequests()))
		}
	})
	t.Run("directory others can write to: error, no browser", func(t *testing.T) {
		if !modeBitsApply {
			t.Skip("permission bits are Unix")
		}
		p := loopauthtest.NewProvider(t)
		dir := filepath.Join(t.TempDir(), "shared")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o777|fs.ModeSticky)
		check := noLeaks(t)
		_, err := flowClient(t, p, nil).Token(ctx, NewFileStore(filepath.Join(dir, "tokens.json")))
		check()
		var modeErr *FileModeError
		if !errors.As(err, &modeErr) || modeErr.Path != dir || len(p.AuthorizeRequests()) != 0 {
			t.Errorf("err %v, %d sign-ins", err, len(p.AuthorizeRequests()))
		}
	})
}

// TestTokenSingleFlight: 100 goroutines asking for a token that needs a
// refresh cause exactly one refresh request.
func TestTokenSingleFlight(t *testing.T) {
	ctx := context.Background()
	p := loopauthtest.NewProvider(t, loopauthtest.WithTokenDelay(50*time.Millisecond))
	c := flowClient(t, p, nil)
	store := NewMemoryStore()
	first, err := c.Token(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	store.Save(ctx, storedSet(t, "old", first.RefreshToken(), 10*time.Second))
	var wg sync.WaitGroup
	results := make(chan string, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts, err := c.Token(ctx, store)
			if err != nil {
				t.Error(err)
				return
			}
			results <- ts.AccessToken()
		}()
	}
	wg.Wait()
	close(results)
	seen := map[string]bool{}
	for a := range results {
		seen[a] = true
	}
	if _, refreshes := grants(p); refreshes != 1 || len(seen) != 1 || seen["old"] {
		t.Errorf("%d refresh requests, %d distinct tokens; want one refresh shared by all", refreshes, len(seen))
	}
}

// TestTokenRotationAcrossClients: two clients (as two processes would)
// sharing one file store never spend the same refresh token: the second
// waits for the lock, then loads what the first saved. The provider
// revokes the whole grant if a rotated refresh token is reused.
func TestTokenRotationAcrossClients(t *testing.T) {
	ctx := context.Background()
	p := loopauthtest.NewProvider(t, loopauthtest.WithTokenDelay(50*time.Millisecond))
	store := NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
	a, b := flowClient(t, p, nil), flowClient(t, p, nil)
	first, err := a.Token(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	store.Save(ctx, storedSet(t, "old", first.RefreshToken(), 10*time.Second))
	var wg sync.WaitGroup
	for _, c := range []*CLITokenClient{a, b} {
		wg.Add(1)
		go func(c *CLITokenClient) {
			defer wg.Done()
			if _, err := c.Token(ctx, store); err != nil {
				t.Error(err)
			}
		}(c)
	}
	wg.Wait()
	codes, refreshes := grants(p)
	if codes != 1 || refreshes != 1 {
		t.Fatalf("%d sign-ins and %d refreshes, want 1 and 1", codes, refreshes)
	}
	// The saved refresh token still works: nothing reused a rotated one.
	saved, _ := store.Load(ctx)
	if _, err := a.Refresh(ctx, saved.RefreshToken()); err != nil {
		t.Errorf("saved refresh token: %v", err)
	}
}

// TestTokenAcrossProcesses: five processes started together with an empty
// file store cause exactly one browser sign-in; the other four load the
// saved result.
func TestTokenAcrossProcesses(t *testing.T) {
	if os.Getenv("LOOPAUTH_TOKEN_CHILD") != "" {
		t.Skip("child")
	}
	p := loopauthtest.NewProvider(t, loopauthtest.WithTokenDelay(100*time.Millisecond))
	store := filepath.Join(t.TempDir(), "tokens.json")
	var cmds []*exec.Cmd
	for i := 0; i < 5; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTokenChild$")
		cmd.Env = append(os.Environ(), "LOOPAUTH_TOKEN_CHILD="+store, "LOOPAUTH_TOKEN_AUTH="+p.AuthURL(), "LOOPAUTH_TOKEN_TOKEN="+p.TokenURL())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v", err)
		}
	}
	if n := len(p.AuthorizeRequests()); n != 1 {
		t.Errorf("%d browser sign-ins for 5 processes, want 1", n)
	}
}

// TestTokenChild is one process of TestTokenAcrossProcesses.
func TestTokenChild(t *testing.T) {
	path := os.Getenv("LOOPAUTH_TOKEN_CHILD")
	if path == "" {
		t.Skip("runs only as a child of TestTokenAcrossProcesses")
	}
	c, err := NewBuilder().ClientID("test-cli").AuthURL(os.Getenv("LOOPAUTH_TOKEN_AUTH")).TokenURL(os.Getenv("LOOPAUTH_TOKEN_TOKEN")).
		BrowserOpener(func(ctx context.Context, u string) error {
			// The provider approves at once; follow it to the callback.
			req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
			resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
			if err == nil {
				resp.Body.Close()
			}
			return err
		}).Stderr(new(strings.Builder)).Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ts, err := c.Token(ctx, NewFileStore(path)); err != nil || ts.AccessToken() == "" {
		t.Fatalf("Token: %v", err)
	}
}

// failingStore wraps a store and fails every Save.
type failingStore struct{ TokenStore }

func (failingStore) Save(context.Context, *TokenSet) error { return errors.New("disk full") }

// TestTokenStoreRules covers and the refresh scope
// rule of the issue.
func TestTokenStoreRules(t *testing.T) {
	ctx := context.Background()
	t.Run("R-02 saving a rotated set fails", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		c := flowClient(t, p, nil)
		mem := NewMemoryStore()
		first, err := c.Token(ctx, mem)
		if err != nil {
			t.Fatal(err)
		}
		mem.Save(ctx, storedSet(t, "old", first.RefreshToken(), time.Second))
		ts, err := c.Token(ctx, failingStore{mem})
		if err == nil || ts != nil || !strings.Contains(err.Error(), "sign in again") {
			t.Errorf("ts %v, err %v", ts, err)
		}
	})
	t.Run("R-09 a set issued to another client is not used", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		other := openIDClient(t, p, func(b *CLITokenClientBuilder) {
			b.ClientID("other-cli").JWKSValidator(NewRemoteJWKSValidator(p.JWKSURL(), "other-cli"))
		})
		store := NewMemoryStore()
		if _, err := other.Token(ctx, store); err != nil {
			t.Fatal(err)
		}
		mine := openIDClient(t, p)
		ts, err := mine.Token(ctx, store)
		if err != nil || ts.IDToken().Claims().Audience[0] != "test-cli" || len(p.AuthorizeRequests()) != 2 {
			t.Errorf("err %v; the other client's set was used", err)
		}
	})
	t.Run("R-10 short-lived tokens do not cause a refresh per call", func(t *testing.T) {
		p := loopauthtest.NewProvider(t, loopauthtest.WithTokenLifetime(30*time.Second))
		c := flowClient(t, p, nil) // RefreshWithin defaults to a minute, longer than the lifetime
		store := NewMemoryStore()
		tr := c.Transport(store, nil).(*bearerTransport)
		for i := 0; i < 20; i++ {
			if _, err := tr.token(httptestRequest(ctx)); err != nil {
				t.Fatal(err)
			}
		}
		if codes, refreshes := grants(p); codes != 1 || refreshes != 0 {
			t.Errorf("%d sign-ins and %d refreshes for 20 requests, want 1 and 0", codes, refreshes)
		}
	})
	t.Run("scope is sent on refresh only when asked", func(t *testing.T) {
		for _, scopes := range [][]Scope{nil, {ScopeEmail}} {
			p := loopauthtest.NewProvider(t)
			c := flowClient(t, p, nil, func(b *CLITokenClientBuilder) { b.RefreshScopes(scopes...) })
			ts, err := c.RunAuthorizationFlow(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Refresh(ctx, ts.RefreshToken()); err != nil {
				t.Fatal(err)
			}
			form := p.TokenRequests()[1]
			if got := form.Get("scope"); got != joinScopes(scopes) || form.Has("scope") != (scopes != nil) {
				t.Errorf("RefreshScopes(%v): sent scope %q", scopes, got)
			}
		}
	})
}

func httptestRequest(ctx context.Context) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:1/", nil)
	return req
}

// TestTokenSavesAfterCancel: once the provider has answered a
// refresh, the rotated refresh token is saved even though the caller's
// context is cancelled at that very moment (Ctrl-C, a deadline): the old
// one is spent, and the provider revokes the grant if it is used again.
func TestTokenSavesAfterCancel(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t)
			var cancelNow atomic.Pointer[context.CancelFunc]
			var c *CLITokenClient
			c = flowClient(t, p, nil, func(b *CLITokenClientBuilder) {
				b.OnTokenSetChange(func(*TokenSet) { // right after the provider answered
					if cancel := cancelNow.Swap(nil); cancel != nil {
						(*cancel)()
						// Until the caller has left and the work's own
						// context is cancelled too.
						for !flightAbandoned(c) {
							time.Sleep(time.Millisecond)
						}
					}
				})
			})
			store := kind.new(t)
			first, err := c.Token(context.Background(), store)
			if err != nil {
				t.Fatal(err)
			}
			if err := store.Save(context.Background(), storedSet(t, "old", first.RefreshToken(), 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cancelNow.Store(&cancel)
			check := noLeaks(t)
			c.Token(ctx, store) // its result may be the set or ctx's error
			check()
			saved, err := store.Load(context.Background())
			if _, refreshes := grants(p); refreshes != 1 || err != nil || saved.RefreshToken() == first.RefreshToken() {
				t.Fatalf("%d refreshes; stored %v, %v: the rotated refresh token was not saved", refreshes, saved, err)
			}
			if _, err := c.Refresh(context.Background(), saved.RefreshToken()); err != nil {
				t.Errorf("the saved refresh token: %v", err)
			}
		})
	}
}

// panicStore panics in its first Save after armed is set, once before
// has returned.
type panicStore struct {
	TokenStore
	armed  atomic.Bool
	before func()
}

func (s *panicStore) Save(ctx context.Context, ts *TokenSet) error {
	if s.armed.CompareAndSwap(true, false) {
		s.before()
		panic("store exploded")
	}
	return s.TokenStore.Save(ctx, ts)
}

// flightWaiters returns how many callers wait for the client's shared
// refresh or sign-in, -1 when there is none.
func flightWaiters(c *CLITokenClient) int {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	if c.flight == nil {
		return -1
	}
	return c.flight.waiters
}

// flightAbandoned reports whether every caller has left the client's
// shared work, which is then cancelled.
func flightAbandoned(c *CLITokenClient) bool {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	return c.flight != nil && c.flight.abandoned
}

// waitWaiters waits until n callers share the client's work.
func waitWaiters(c *CLITokenClient, n int) {
	for flightWaiters(c) != n {
		time.Sleep(time.Millisecond)
	}
}

// catchPanic returns what f panicked with, or nil.
func catchPanic(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// TestTokenPanic: a panic in a TokenStore or an OnTokenSetChange hook
// during the shared sign-in is raised again in the call that started it;
// a second caller waiting for the same work gets an error, and later
// calls are not blocked by what the panic left behind.
func TestTokenPanic(t *testing.T) {
	for _, where := range []string{"Save", "OnTokenSetChange"} {
		t.Run(where, func(t *testing.T) {
			p := loopauthtest.NewProvider(t)
			var c *CLITokenClient
			var hookArmed atomic.Bool
			c = flowClient(t, p, nil, func(b *CLITokenClientBuilder) {
				b.OnTokenSetChange(func(*TokenSet) {
					if hookArmed.CompareAndSwap(true, false) {
						waitWaiters(c, 2)
						panic("hook exploded")
					}
				})
			})
			store := &panicStore{TokenStore: NewMemoryStore(), before: func() { waitWaiters(c, 2) }}
			want := "store exploded"
			if where == "Save" {
				store.armed.Store(true)
			} else {
				hookArmed.Store(true)
				want = "hook exploded"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			check := noLeaks(t)
			waiter := make(chan error, 1)
			go func() {
				for flightWaiters(c) < 1 {
					time.Sleep(time.Millisecond)
				}
				_, err := c.Token(ctx, store)
				waiter <- err
			}()
			got := catchPanic(func() { c.Token(ctx, store) })
			if got != want {
				t.Errorf("the call that started the work panicked with %v, want %q", got, want)
			}
			if err := <-waiter; err == nil || !strings.Contains(err.Error(), "panicked") {
				t.Errorf("the waiting call got %v, want an error about the panic", err)
			}
			check()
			check = noLeaks(t)
			ts, err := c.Token(ctx, store)
			check()
			if err != nil || ts == nil {
				t.Fatalf("Token after the panic: %v", err)
			}
		})
	}
}

// TestTokenWaitersOwnContext: each caller sharing a refresh or sign-in
// returns on its own context. When the one that started the work leaves,
// the others still get the token; when every caller has left, the work is
// cancelled and nothing outlives the last call.
func TestTokenWaitersOwnContext(t *testing.T) {
	t.Run("the starter leaves, the waiter gets the token", func(t *testing.T) {
		p := loopauthtest.NewProvider(t, loopauthtest.WithTokenDelay(300*time.Millisecond))
		c := flowClient(t, p, nil)
		store := NewMemoryStore()
		first, err := c.Token(context.Background(), store)
		if err != nil {
			t.Fatal(err)
		}
		store.Save(context.Background(), storedSet(t, "old", first.RefreshToken(), 10*time.Second))
		starterCtx, cancelStarter := context.WithCancel(context.Background())
		defer cancelStarter()
		waiterCtx, cancelWaiter := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancelWaiter()

		check := noLeaks(t)
		type result struct {
			ts  *TokenSet
			err error
		}
		waiter := make(chan result, 1)
		go func() {
			for flightWaiters(c) < 1 {
				time.Sleep(time.Millisecond)
			}
			ts, err := c.Token(waiterCtx, store)
			waiter <- result{ts, err}
		}()
		go func() {
			waitWaiters(c, 2)
			cancelStarter() // as if its deadline had passed
		}()
		_, err = c.Token(starterCtx, store)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the starter got %v, want its own context's error", err)
		}
		r := <-waiter
		check()
		if r.err != nil || r.ts.AccessToken() == "old" {
			t.Fatalf("the waiter got %v, %v; want the refreshed set", r.ts, r.err)
		}
		saved, _ := store.Load(context.Background())
		if _, refreshes := grants(p); refreshes != 1 || saved.AccessToken() != r.ts.AccessToken() {
			t.Errorf("%d refreshes, saved %v", refreshes, saved)
		}
	})
	t.Run("every caller leaves: the work is cancelled", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		opened, openerCancelled := make(chan struct{}, 1), make(chan struct{})
		c := flowClient(t, p, func(ctx context.Context, _ string) error {
			opened <- struct{}{} // and the user never signs in
			<-ctx.Done()         // the browser is told to go once the flow ends
			close(openerCancelled)
			return nil
		}, func(b *CLITokenClientBuilder) { b.Timeout(time.Minute) })
		store := NewMemoryStore()
		ctxs := make([]context.Context, 2)
		cancels := make([]context.CancelFunc, 2)
		for i := range ctxs {
			ctxs[i], cancels[i] = context.WithCancel(context.Background())
			defer cancels[i]()
		}
		check := noLeaks(t)
		errs := make(chan error, 2)
		go func() {
			_, err := c.Token(ctxs[0], store)
			errs <- err
		}()
		<-opened
		go func() {
			_, err := c.Token(ctxs[1], store)
			errs <- err
		}()
		waitWaiters(c, 2)
		cancels[0]()
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("first caller: %v", err)
		}
		if n := flightWaiters(c); n != 1 {
			t.Fatalf("%d callers wait after the first left, want the sign-in to go on for the other", n)
		}
		cancels[1]()
		select {
		case <-openerCancelled:
		case <-time.After(10 * time.Second): // the flow's own Timeout is a minute
			t.Fatal("the sign-in went on after every caller had left")
		}
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("second caller: %v", err)
		}
		check() // the sign-in's server and goroutines are gone
		if n := flightWaiters(c); n != -1 {
			t.Errorf("the shared work is still registered (%d waiters)", n)
		}
	})
}

// TestTokenNonInteractive: a NonInteractive client never opens a browser.
// Where a sign-in would be needed, Token, the transport and
// RunAuthorizationFlow return ErrLoginRequired with the reason; a refresh
// still happens.
func TestTokenNonInteractive(t *testing.T) {
	ctx := context.Background()
	otherIssuer := func(t *testing.T, store TokenStore) {
		// A set signed in at another provider, in OpenID mode.
		other := loopauthtest.NewProvider(t)
		c := flowClient(t, other, nil, func(b *CLITokenClientBuilder) {
			b.WithOpenIDScope().Issuer(other.Issuer()).JWKSValidator(NewRemoteJWKSValidator(other.JWKSURL(), "test-cli"))
		})
		if _, err := c.Token(ctx, store); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		openID bool
		stored func(t *testing.T, store TokenStore)
		why    string // "" when Token succeeds by refreshing
	}{
		{"no set", false, func(*testing.T, TokenStore) {}, "no token set usable by this client is stored"},
		{"expired, no refresh token", false, func(t *testing.T, s TokenStore) { s.Save(ctx, storedSet(t, "old", "", -time.Minute)) }, "no refresh token"},
		{"expired, refresh refused", false, func(t *testing.T, s TokenStore) { s.Save(ctx, storedSet(t, "old", "unknown-rt", -time.Minute)) }, "refused the refresh token"},
		{"another issuer", true, otherIssuer, "another issuer"},
		{"expired, refresh works", false, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t)
			store := NewMemoryStore()
			opener := func(context.Context, string) error {
				t.Error("a NonInteractive client opened a browser")
				return nil
			}
			if tc.stored == nil { // a real refresh token, from an interactive sign-in
				first, err := flowClient(t, p, nil).Token(ctx, store)
				if err != nil {
					t.Fatal(err)
				}
				store.Save(ctx, storedSet(t, "old", first.RefreshToken(), -time.Minute))
			} else {
				tc.stored(t, store)
			}
			c := flowClient(t, p, opener, func(b *CLITokenClientBuilder) {
				b.NonInteractive()
				if tc.openID {
					b.WithOpenIDScope().Issuer(p.Issuer()).JWKSValidator(NewRemoteJWKSValidator(p.JWKSURL(), "test-cli"))
				}
			})
			check := noLeaks(t)
			ts, err := c.Token(ctx, store)
			check()
			if tc.why == "" {
				if err != nil || ts.AccessToken() == "old" {
					t.Fatalf("refresh: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrLoginRequired) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("err = %v, want ErrLoginRequired saying %q", err, tc.why)
			}
			// The transport says the same, without a browser either.
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Issuer()+"/", nil)
			if _, err := c.AuthorizedHTTPClient(store).Do(req); !errors.Is(err, ErrLoginRequired) {
				t.Errorf("transport: %v", err)
			}
			if len(p.AuthorizeRequests()) != 0 && tc.stored != nil {
				t.Error("the provider saw an authorization request")
			}
		})
	}
	c := flowClient(t, loopauthtest.NewProvider(t), nil, func(b *CLITokenClientBuilder) { b.NonInteractive() })
	if _, err := c.RunAuthorizationFlow(ctx); !errors.Is(err, ErrLoginRequired) {
		t.Errorf("RunAuthorizationFlow: %v", err)
	}
}
