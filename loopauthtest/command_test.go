package loopauthtest_test

// The command as a CLI's integration test uses it: a process of its own,
// a client (loopauth itself) in the test, and a fake API that checks
// tokens by introspection, as one in a third process would.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loopauth/loopauth"
	"github.com/loopauth/loopauth/loopauthtest"
)

// buildCommand builds loopauthtest/cmd/loopauthtest into a temporary
// directory.
func buildCommand(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the loopauthtest command; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("stops the command with SIGTERM, which Windows does not have")
	}
	bin := filepath.Join(t.TempDir(), "loopauthtest")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "github.com/loopauth/loopauth/loopauthtest/cmd/loopauthtest")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the command: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer is written by exec's copying goroutine and read by the test.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	newline chan struct{} // closed at the first newline
	once    sync.Once
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{newline: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bytes.IndexByte(p, '\n') >= 0 {
		b.once.Do(func() { close(b.newline) })
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// command is a running loopauthtest command.
type command struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	issuer         string
}

// startCommand runs the command and waits for its issuer line.
func startCommand(t *testing.T, bin string, args ...string) *command {
	t.Helper()
	c := &command{cmd: exec.Command(bin, args...), stdout: newSyncBuffer(), stderr: newSyncBuffer()}
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	select {
	case <-c.stdout.newline:
	case <-time.After(30 * time.Second):
		t.Fatalf("no issuer line after 30s; stderr:\n%s", c.stderr)
	}
	first, _, _ := strings.Cut(c.stdout.String(), "\n")
	issuer, ok := strings.CutPrefix(first, "issuer: ")
	if !ok || !strings.HasPrefix(issuer, "http://127.0.0.1:") {
		t.Fatalf("first line %q, want \"issuer: http://127.0.0.1:PORT\"", first)
	}
	c.issuer = issuer
	return c
}

// stop sends SIGTERM and checks a clean exit.
func (c *command) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGTERM: %v; stderr:\n%s", err, c.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30s after SIGTERM")
	}
	if out := c.stdout.String(); out != "issuer: "+c.issuer+"\n" {
		t.Errorf("stdout %q, want the issuer line alone", out)
	}
	if !strings.HasSuffix(c.stderr.String(), "loopauthtest: stopped\n") {
		t.Errorf("stderr does not end with the stop line:\n%s", c.stderr)
	}
}

// followRedirects is a browser for an auto-approving provider: it GETs
// the authorization URL and follows the redirects to the loopback callback.
func followRedirects(ctx context.Context, authURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// introspect is the fake API in another process: it asks the provider
// about a bearer token, as RFC 7662 describes.
func introspect(t *testing.T, issuer, token, id, secret string) (status int, answer map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, issuer+"/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatalf("introspection answered %s %q", resp.Status, body)
	}
	return resp.StatusCode, answer
}

func revoke(t *testing.T, revocationURL string, form url.Values) {
	t.Helper()
	resp, err := http.PostForm(revocationURL, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("revocation answered %s %q", resp.Status, body)
	}
}

func TestCommandAsAProviderProcess(t *testing.T) {
	bin := buildCommand(t)
	dir := t.TempDir()
	state, issuerFile := filepath.Join(dir, "state.json"), filepath.Join(dir, "issuer")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := []string{"-addr", addr, "-state", state, "-issuer-file", issuerFile, "-client", "my-cli", "-client", "my-app:app-secret", "-token-lifetime", "10m"}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first := startCommand(t, bin, args...)
	if first.issuer != "http://"+addr {
		t.Fatalf("issuer %s, want http://%s", first.issuer, addr)
	}
	if b, err := os.ReadFile(issuerFile); err != nil || string(b) != first.issuer+"\n" {
		t.Fatalf("issuer file: %q, %v", b, err)
	}

	cfg, err := loopauth.FetchOpenIDConfiguration(ctx, first.issuer)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Revocation    string `json:"revocation_endpoint"`
		Introspection string `json:"introspection_endpoint"`
	}
	resp, err := http.Get(first.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || doc.Revocation != first.issuer+"/revoke" || doc.Introspection != first.issuer+"/introspect" {
		t.Fatalf("discovery: %+v, %v", doc, err)
	}

	client, err := loopauth.FromOpenIDConfiguration(cfg).
		ClientID("my-cli").
		WithOpenIDConfigurationJWKSValidator(cfg).
		AddScopes(loopauth.ScopeEmail, loopauth.ScopeOfflineAccess).
		BrowserOpener(followRedirects).
		Stderr(io.Discard).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	signIn := func() *loopauth.TokenSet {
		t.Helper()
		ts, err := client.RunAuthorizationFlow(ctx)
		if err != nil {
			t.Fatalf("sign-in against the command: %v", err)
		}
		return ts
	}
	gone, kept := signIn(), signIn()
	if exp := time.Until(gone.ExpiresAt()); exp < 9*time.Minute || exp > 11*time.Minute {
		t.Errorf("access token expires in %s, want -token-lifetime 10m", exp)
	}

	// The fake API: introspection needs its credential, then tells who.
	if status, answer := introspect(t, first.issuer, gone.AccessToken(), "", ""); status != http.StatusUnauthorized || answer["error"] != "invalid_client" {
		t.Errorf("introspection without a credential: %d %v", status, answer)
	}
	status, answer := introspect(t, first.issuer, gone.AccessToken(), "api", "api-secret")
	if status != http.StatusOK || answer["active"] != true || answer["sub"] != "user-1234" || answer["client_id"] != "my-cli" ||
		answer["scope"] != "openid email offline_access" || answer["token_type"] != "Bearer" {
		t.Errorf("introspection of a fresh token: %d %v", status, answer)
	}

	// Logout: the refresh token is revoked, and its access token with it.
	revoke(t, doc.Revocation, url.Values{"token": {gone.RefreshToken()}, "token_type_hint": {"refresh_token"}, "client_id": {"my-cli"}})
	if _, answer := introspect(t, first.issuer, gone.AccessToken(), "api", "api-secret"); len(answer) != 1 || answer["active"] != false {
		t.Errorf("introspection after revocation: %v, want {\"active\":false}", answer)
	}
	var pe *loopauth.ProviderError
	if _, err := client.Refresh(ctx, gone.RefreshToken()); !errors.As(err, &pe) || pe.ErrorCode != "invalid_grant" {
		t.Errorf("refresh with a revoked token: %v, want invalid_grant", err)
	}
	first.stop(t)

	// A second run with the same state carries on.
	second := startCommand(t, bin, args...)
	if second.issuer != first.issuer {
		t.Fatalf("issuer changed across the restart: %s, then %s", first.issuer, second.issuer)
	}
	if err := loopauth.NewRemoteJWKSValidator(cfg.JWKSURI, "my-cli").Validate(ctx, kept.IDTokenRaw()); err != nil {
		t.Errorf("an ID token from the first run does not verify against the second: %v", err)
	}
	if _, answer := introspect(t, second.issuer, kept.AccessToken(), "api", "api-secret"); answer["active"] != true {
		t.Errorf("an access token from the first run: %v, want active", answer)
	}
	if _, answer := introspect(t, second.issuer, gone.AccessToken(), "api", "api-secret"); answer["active"] != false {
		t.Errorf("a token revoked in the first run: %v, want inactive", answer)
	}
	next, err := client.Refresh(ctx, kept.RefreshToken())
	if err != nil {
		t.Fatalf("refresh with a token from the first run: %v", err)
	}
	if next.IDToken().Claims().Subject != "user-1234" {
		t.Errorf("refreshed ID token subject %q", next.IDToken().Claims().Subject)
	}
	second.stop(t)
}

func TestCommandRefusesBadSetups(t *testing.T) {
	bin := buildCommand(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.json")
	if err := os.WriteFile(junk, []byte("<html>"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-client", ":secret"}, 2, "want ID or ID:SECRET"},
		{[]string{"-introspection", "api"}, 2, "-introspection wants ID:SECRET"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"-addr", "0.0.0.0:0"}, 1, "loopback"},
		{[]string{"-state", junk}, 1, "not a loopauthtest state file"},
		{[]string{"-alg", "HS256"}, 1, "unsupported signing alg"},
	} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, tt.args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != tt.code || !strings.Contains(stderr.String(), tt.want) || stdout.Len() != 0 {
			t.Errorf("%v: %v, stdout %q, stderr %q; want exit %d saying %q", tt.args, err, stdout.String(), stderr.String(), tt.code, tt.want)
		}
	}
}

// The default client is the public loopauth-cli, and port 0 picks a port.
func TestCommandDefaults(t *testing.T) {
	c := startCommand(t, buildCommand(t))
	if _, port, _ := net.SplitHostPort(strings.TrimPrefix(c.issuer, "http://")); port == "0" || port == "" {
		t.Fatalf("issuer %s has no real port", c.issuer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	landing, err := loopauthtest.LandingAddress(ctx, c.issuer+"/authorize?"+url.Values{
		"response_type": {"code"}, "client_id": {"loopauth-cli"}, "redirect_uri": {"http://127.0.0.1:1/callback"},
		"state": {"s"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"},
	}.Encode())
	if err != nil || !strings.Contains(landing, "code=") {
		t.Fatalf("LandingAddress: %q, %v", landing, err)
	}
	_, err = loopauthtest.LandingAddress(ctx, c.issuer+"/authorize?client_id=other&redirect_uri=http://127.0.0.1:1/callback")
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(http.StatusBadRequest)) {
		t.Errorf("an unregistered client: %v, want a 400 page", err)
	}
	c.stop(t)
}
