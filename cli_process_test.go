package loopauth_test

// A CLI's own integration test, as a user of the library would write it:
// testdata/mycli runs as login, whoami and logout, three processes, against
// the loopauthtest command, a fourth. $BROWSER is testdata/mycli/fakebrowser,
// so the sign-in goes through the library's real system-browser path.

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
)

func TestCLIAsThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs programs; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("stops the provider with SIGTERM, which Windows does not have")
	}
	bin := t.TempDir()
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin+string(filepath.Separator),
		"github.com/loopauth/loopauth/loopauthtest/cmd/loopauthtest",
		"github.com/loopauth/loopauth/testdata/mycli",
		"github.com/loopauth/loopauth/testdata/mycli/fakebrowser")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "config", "mycli", "token.json")
	browserLog := filepath.Join(dir, "browser.log")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	providerArgs := []string{"-addr", addr, "-state", filepath.Join(dir, "provider.json"), "-client", "mycli"}
	provider := startProviderProcess(t, filepath.Join(bin, "loopauthtest"), providerArgs...)

	cli := &cliRunner{t: t, bin: filepath.Join(bin, "mycli"), env: append(os.Environ(),
		"MYCLI_ISSUER="+provider.issuer,
		"MYCLI_CLIENT_ID=mycli",
		"MYCLI_TOKEN_FILE="+tokenFile,
		// $BROWSER also makes the library treat this machine as having a
		// browser, even over SSH or without DISPLAY.
		"BROWSER="+filepath.Join(bin, "fakebrowser"),
		"FAKEBROWSER_LOG="+browserLog,
	)}
	signIns := func() int {
		t.Helper()
		b, err := os.ReadFile(browserLog)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return bytes.Count(b, []byte("\n"))
	}
	const user = "user-1234 <user@example.com>"

	// login: a sign-in through $BROWSER, the tokens in a private file.
	if out := cli.run(0, "login"); out != "Signed in as "+user+"\n" {
		t.Errorf("login printed %q", out)
	}
	if n := signIns(); n != 1 {
		t.Errorf("login opened the browser %d times, want 1", n)
	}
	for path, want := range map[string]os.FileMode{tokenFile: 0o600, filepath.Dir(tokenFile): 0o700 | os.ModeDir} {
		if fi, err := os.Stat(path); err != nil {
			t.Error(err)
		} else if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
		}
	}
	first := readTokenFile(t, tokenFile)
	if answer := introspectAt(t, provider.issuer, first.AccessToken); answer["active"] != true || answer["sub"] != "user-1234" || answer["client_id"] != "mycli" {
		t.Errorf("introspection of the access token after login: %v", answer)
	}

	// whoami: the stored tokens, never a browser.
	if out := cli.run(0, "whoami"); out != user+"\n" {
		t.Errorf("whoami printed %q, want %q", out, user)
	}

	// The provider down: whoami, with fresh stored tokens and FromIssuer,
	// makes no request and still works.
	provider.stop(t)
	if out := cli.run(0, "whoami"); out != user+"\n" {
		t.Errorf("whoami with the provider down printed %q, want %q", out, user)
	}

	// The provider restarts with its state file, and the access token has
	// expired meanwhile: whoami refreshes it, without a browser, with the
	// refresh token the first provider process issued.
	provider = startProviderProcess(t, filepath.Join(bin, "loopauthtest"), providerArgs...)
	ageTokenFile(t, tokenFile)
	if out := cli.run(0, "whoami"); out != user+"\n" {
		t.Errorf("whoami after the provider's restart printed %q", out)
	}
	second := readTokenFile(t, tokenFile)
	if second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken {
		t.Error("whoami with an expired access token did not refresh (and rotate) the stored tokens")
	}
	if n := signIns(); n != 1 {
		t.Errorf("the browser was opened %d times in all, want once, by login", n)
	}
	if answer := introspectAt(t, provider.issuer, second.AccessToken); answer["active"] != true {
		t.Errorf("introspection of the refreshed access token: %v, want active", answer)
	}

	// logout: the refresh token is revoked at the provider, and with it
	// the access token; the file is gone.
	if out := cli.run(0, "logout"); out != "Signed out.\n" {
		t.Errorf("logout printed %q", out)
	}
	if _, err := os.Stat(tokenFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the token file after logout: %v, want it removed", err)
	}
	if answer := introspectAt(t, provider.issuer, second.AccessToken); answer["active"] != false {
		t.Errorf("introspection of the access token after logout: %v, want inactive", answer)
	}
	if status, code := refreshAt(t, provider.issuer, second.RefreshToken); status != http.StatusBadRequest || code != "invalid_grant" {
		t.Errorf("refresh after logout: %d %q, want 400 invalid_grant", status, code)
	}

	// whoami again: its own exit status and a hint, and still no browser.
	if out := cli.run(3, "whoami"); out != "" {
		t.Errorf("whoami when signed out printed %q on stdout", out)
	}
	if last := cli.stderr; !strings.Contains(last, "sign-in required") || !strings.Contains(last, `Run "mycli login"`) {
		t.Errorf("whoami when signed out said %q", last)
	}
	if n := signIns(); n != 1 {
		t.Errorf("the browser was opened %d times in all, want once, by login", n)
	}
	provider.stop(t)

	for _, secret := range []string{first.AccessToken, first.RefreshToken, first.OIDC.Raw, second.AccessToken, second.RefreshToken, second.OIDC.Raw} {
		if secret == "" {
			t.Fatal("a token set without a refresh or an ID token")
		}
		if strings.Contains(cli.output.String(), secret) {
			t.Fatal("mycli printed a token")
		}
	}
}

// cliRunner runs mycli commands, one process each.
type cliRunner struct {
	t      *testing.T
	bin    string
	env    []string
	stderr string       // of the last run
	output bytes.Buffer // everything printed, by all runs
}

// run runs mycli with args, checks its exit status and returns its
// standard output.
func (c *cliRunner) run(wantCode int, args ...string) string {
	c.t.Helper()
	// A login whose browser failed would wait minutes for the callback.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Env, cmd.Stdout, cmd.Stderr = c.env, &stdout, &stderr
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	c.stderr = stderr.String()
	c.output.Write(stdout.Bytes())
	c.output.Write(stderr.Bytes())
	if code := cmd.ProcessState.ExitCode(); code != wantCode {
		c.t.Fatalf("mycli %s: %v (exit %d, want %d); stderr:\n%s", strings.Join(args, " "), err, code, wantCode, c.stderr)
	}
	return stdout.String()
}

// providerProcess is a running loopauthtest command.
type providerProcess struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	issuer string
}

// startProviderProcess starts the command and reads its issuer line. The
// process is killed at the end of the test if it still runs.
func startProviderProcess(t *testing.T, bin string, args ...string) *providerProcess {
	t.Helper()
	stdout := &lockedBuffer{line: make(chan struct{})}
	p := &providerProcess{cmd: exec.Command(bin, args...), stderr: &lockedBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	select {
	case <-stdout.line:
	case <-time.After(10 * time.Second):
		t.Fatalf("no issuer line after 10s; stderr:\n%s", p.stderr)
	}
	first, _, _ := strings.Cut(stdout.String(), "\n")
	var ok bool
	if p.issuer, ok = strings.CutPrefix(first, "issuer: "); !ok {
		t.Fatalf("the provider's first line is %q", first)
	}
	return p
}

// stop ends the provider with SIGTERM and checks that it exits cleanly.
func (p *providerProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the provider after SIGTERM: %v; stderr:\n%s", err, p.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the provider still runs 10s after SIGTERM")
	}
}

// lockedBuffer collects a process's output; line, when set, is closed at
// the first newline.
type lockedBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	line chan struct{}
	once sync.Once
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.line != nil && bytes.IndexByte(p, '\n') >= 0 {
		b.once.Do(func() { close(b.line) })
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// storedTokens is the part of mycli's token file the test looks at.
type storedTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	OIDC         struct {
		Raw string `json:"raw"`
	} `json:"oidc"`
}

func readTokenFile(t *testing.T, path string) storedTokens {
	t.Helper()
	var ts storedTokens
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &ts)
	}
	if err != nil {
		t.Fatalf("reading the token file: %v", err)
	}
	return ts
}

// ageTokenFile makes the stored access token expired, as time would.
func ageTokenFile(t *testing.T, path string) {
	t.Helper()
	var m map[string]json.RawMessage
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatal(err)
	}
	m["expires_at"] = json.RawMessage(strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10))
	if b, err = json.Marshal(m); err == nil {
		err = os.WriteFile(path, b, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// introspectAt asks the provider about an access token, as a fake API in
// another process would (RFC 7662, with the command's default credential).
func introspectAt(t *testing.T, issuer, token string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, issuer+"/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("api", "api-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("introspection: %s, %v", resp.Status, err)
	}
	return answer
}

// refreshAt tries a refresh token at the provider's token endpoint and
// returns the status and the OAuth error code.
func refreshAt(t *testing.T, issuer, refreshToken string) (int, string) {
	t.Helper()
	resp, err := http.PostForm(issuer+"/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {"mycli"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Error string `json:"error"`
	}
	body, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(body, &answer)
	return resp.StatusCode, answer.Error
}
