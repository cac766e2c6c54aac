package loopauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// TestSizeProbesSignIn runs the probes that make size measures against
// loopauthtest. The comparison means something only if the hand-written
// floor does the whole job: each probe must sign in over http and https,
// with ES256 and RS256 keys, and print the subject; and both must refuse
// an ID token with a wrong nonce, audience, issuer, expiry or signature.
func TestSizeProbesSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four programs; skipped with -short")
	}
	switch runtime.GOOS {
	case "windows", "darwin", "ios":
		t.Skip("the probes' browser is replaced by a fake xdg-open script, which only this platform's launcher is")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	dir := t.TempDir()
	for _, probe := range []string{"login", "floor"} {
		for _, tags := range []string{"", "https"} {
			out := filepath.Join(dir, probe+tags)
			build := exec.Command(goTool, "build", "-tags", tags, "-o", out, "./testdata/size/"+probe)
			if msg, err := build.CombinedOutput(); err != nil {
				t.Fatalf("building %s %s: %v\n%s", probe, tags, err, msg)
			}
		}
	}
	// The fake launcher hands the URL to the test, which plays the browser.
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nprintf '%s\\n' \"$1\" > \"$LOOPAUTH_PROBE_URL_FILE.tmp\" && mv \"$LOOPAUTH_PROBE_URL_FILE.tmp\" \"$LOOPAUTH_PROBE_URL_FILE\"\n"
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}

	claims := func(hook func(c map[string]any)) loopauthtest.Option { return loopauthtest.WithIDTokenClaims(hook) }
	tamper := map[string]loopauthtest.Option{
		"":      nil,
		"nonce": claims(func(c map[string]any) { c["nonce"] = "not-the-nonce-sent" }),
		"aud":   claims(func(c map[string]any) { c["aud"] = "another-client" }),
		"iss":   claims(func(c map[string]any) { c["iss"] = "https://another-issuer.example" }),
		"exp":   claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }),
		"sig":   loopauthtest.WithTokenResponse(resignIDToken(t)),
	}
	tests := []struct{ probe, alg, tamper string }{
		{"login", loopauthtest.AlgES256, ""},
		{"loginhttps", loopauthtest.AlgRS256, ""},
		{"floor", loopauthtest.AlgRS256, ""},
		{"floor", loopauthtest.AlgES256, ""},
		{"floorhttps", loopauthtest.AlgES256, ""},
		{"floorhttps", loopauthtest.AlgRS256, ""},
	}
	for _, probe := range []string{"login", "floor"} {
		for _, claim := range []string{"nonce", "aud", "iss", "exp", "sig"} {
			tests = append(tests, struct{ probe, alg, tamper string }{probe, loopauthtest.AlgES256, claim})
		}
	}
	for _, tt := range tests {
		name := tt.probe + "/" + tt.alg
		if tt.tamper != "" {
			name += "/wrong-" + tt.tamper
		}
		t.Run(name, func(t *testing.T) {
			p := loopauthtest.NewProvider(t, loopauthtest.WithSigningAlg(tt.alg), tamper[tt.tamper])
			stdout, stderr := runSizeProbe(t, filepath.Join(dir, tt.probe), bin, p.Issuer())
			switch {
			case tt.tamper == "" && stdout != "user-1234\n":
				t.Errorf("stdout %q, want the subject; stderr:\n%s", stdout, stderr)
			case tt.tamper != "" && stdout != "":
				t.Errorf("an ID token with a wrong %s was accepted: stdout %q", tt.tamper, stdout)
			}
		})
	}
}

// resignIDToken returns a token-response hook that replaces the ES256
// signature of the ID token with one made by another key.
func resignIDToken(t *testing.T) func(string, map[string]any) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return func(_ string, resp map[string]any) {
		raw, _ := resp["id_token"].(string)
		dot := strings.LastIndexByte(raw, '.')
		if dot < 0 {
			return
		}
		signed := raw[:dot]
		sum := sha256.Sum256([]byte(signed))
		r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
		if err != nil {
			panic(err)
		}
		sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		resp["id_token"] = signed + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
}

// runSizeProbe runs a probe against the provider at issuer, with the fake
// launcher of bin first in PATH, and visits the URL it opens, following
// redirects to its callback as a browser would.
func runSizeProbe(t *testing.T, probe, bin, issuer string) (stdout, stderr string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	urlFile := filepath.Join(t.TempDir(), "url")
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, probe, issuer, "size-probe")
	// A desktop session, so that the probe opens its browser (the fake
	// launcher) instead of going headless.
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "LOOPAUTH_PROBE_URL_FILE="+urlFile,
		"DISPLAY=:0", "SSH_CONNECTION=", "SSH_CLIENT=", "SSH_TTY=", "BROWSER=")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		if data, err := os.ReadFile(urlFile); err == nil {
			browseCallback(ctx, t, strings.TrimSpace(string(data)))
			break
		}
		select {
		case err := <-exited:
			return out.String(), errOut.String() + "\n(exited before opening a browser: " + err.Error() + ")"
		case <-ctx.Done():
			t.Fatal("the probe opened no browser within a minute")
		case <-time.After(10 * time.Millisecond):
		}
	}
	<-exited
	return out.String(), errOut.String()
}

// browseCallback visits authURL and its redirects. It trusts any
// certificate, as a user who clicks through the warning about a
// self-signed callback certificate does; the answer is not checked,
// since the probe's output tells whether the sign-in succeeded.
func browseCallback(ctx context.Context, t *testing.T, authURL string) {
	client := &http.Client{Transport: &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", authURL, nil)
	if err != nil {
		t.Fatalf("the probe opened an invalid URL: %v", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Logf("browser: %v", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
