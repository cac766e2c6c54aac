package loopauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
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

// TestTokenDecisionTable walks the rows of Token's documented table.
func TestTokenDecisionTable(t *testing.T) {
	ctx := context.Background()
	t.Run("empty store: sign in and save", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		store := NewMemoryStore()
		ts, err := flowClient(t, p, nil).Token(ctx, store)
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
		ts, err := c.Token(ctx, store)
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
		ts, err := c.Token(ctx, store)
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
		ts, err := flowClient(t, p, nil).Token(ctx, store)
		if err != nil || ts.AccessToken() == "old" || len(p.AuthorizeRequests()) != 1 {
			t.Errorf("ts %v, err %v", ts, err)
		}
	})
	t.Run("expiring without a refresh token: sign in", func(t *testing.T) {
		p := loopauthtest.NewProvider(t)
		store := NewMemoryStore()
		store.Save(ctx, storedSet(t, "old", "", 10*time.Second))
		if _, err := flowClient(t, p, nil).Token(ctx, store); err != nil || len(p.AuthorizeRequests()) != 1 {
			t.Errorf("err %v, %d sign-ins", err, len(p.AuthorizeRequests()))
		}
	})
	t.Run("refresh fails for another reason: error, no browser", func(t *testing.T) {
		p := loopauthtest.NewProvider(t, loopauthtest.WithRefreshError(503, "temporarily_unavailable", ""))
		store := NewMemoryStore()
		store.Save(ctx, storedSet(t, "old", "rt", -time.Minute))
		opened := false
		_, err := flowClient(t, p, func(context.Context, string) error { opened = true; return nil }).Token(ctx, store)
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
		if _, err := flowClient(t, p, nil).Token(ctx, store); err != nil {
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
		if _, err := flowClient(t, p, nil).Token(ctx, NewFileStore(path)); err == nil || len(p.AuthorizeRequests()) != 0 {
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
