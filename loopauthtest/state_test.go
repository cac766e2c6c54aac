package loopauthtest

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestWithAddr(t *testing.T) {
	port := freePort(t)
	p := NewProvider(t, WithAddr("127.0.0.1:"+strconv.Itoa(port)))
	if want := "http://127.0.0.1:" + strconv.Itoa(port); p.Issuer() != want {
		t.Fatalf("Issuer() = %s, want %s", p.Issuer(), want)
	}
	var d map[string]any
	getJSON(t, p.DiscoveryURL(), &d)
	if _, err := StartProvider(WithAddr("127.0.0.1:" + strconv.Itoa(port))); err == nil {
		t.Error("a second provider on a busy port started")
	}
}

func TestStateFileCarriesOn(t *testing.T) {
	for _, alg := range []string{AlgES256, AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			p1, err := StartProvider(WithStateFile(path), WithSigningAlg(alg))
			if err != nil {
				t.Fatal(err)
			}
			cb := newCallback(t)
			kept := login(t, p1, newFlow(t, cb.URL()), cb)
			revoked := login(t, p1, newFlow(t, cb.URL()), cb)
			rotated := login(t, p1, newFlow(t, cb.URL()), cb)
			next := refreshWith(t, p1, "cli", rotated.str("refresh_token"))
			wantTokens(t, next)
			// Last, so that only the revocation itself can have saved it.
			wantRevoked(t, postRevoke(t, p1, revokeForm("cli", revoked.str("refresh_token"), ""), nil))
			kid := p1.KeyID()
			p1.Close()

			if runtime.GOOS != "windows" {
				if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("state file: %v, mode %v; want 0600", err, fi.Mode().Perm())
				}
			}

			p2 := NewProvider(t, WithStateFile(path), WithSigningAlg(alg))
			if p2.KeyID() != kid {
				t.Errorf("KeyID() = %s after the restart, want %s", p2.KeyID(), kid)
			}
			verifyJWT(t, p2, kept.str("id_token")) // signed before the restart
			if info, live := p2.CheckAccessToken(kept.str("access_token")); !live || info.ClientID != "cli" || info.Subject != "user-1234" {
				t.Errorf("access token after the restart: %+v, live %v", info, live)
			}
			for name, at := range map[string]string{"revoked": revoked.str("access_token"), "rotated family's first": rotated.str("access_token")} {
				_, live := p2.CheckAccessToken(at)
				if want := name != "revoked"; live != want {
					t.Errorf("%s access token live = %v after the restart, want %v", name, live, want)
				}
			}
			wantTokenError(t, refreshWith(t, p2, "cli", revoked.str("refresh_token")), 400, "invalid_grant")
			r := refreshWith(t, p2, "cli", kept.str("refresh_token"))
			wantTokens(t, r)
			verifyJWT(t, p2, r.str("id_token"))
			// Reuse of a token rotation replaced is still detected.
			wantTokenError(t, refreshWith(t, p2, "cli", rotated.str("refresh_token")), 400, "invalid_grant")
			wantTokenError(t, refreshWith(t, p2, "cli", next.str("refresh_token")), 400, "invalid_grant")

			// A key rotated in is kept too.
			newKid := p2.RotateKey()
			p2.Close()
			p3 := NewProvider(t, WithStateFile(path), WithSigningAlg(alg))
			if p3.KeyID() != newKid || len(fetchJWKS(t, p3)) != 2 {
				t.Errorf("after RotateKey and a restart: kid %s (want %s), %d keys", p3.KeyID(), newKid, len(fetchJWKS(t, p3)))
			}
		})
	}
}

func TestStateFileRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	es := filepath.Join(dir, "es256.json")
	p, err := StartProvider(WithStateFile(es))
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	tests := []struct {
		name, path, want string
		opts             []Option
	}{
		{"not JSON", write("junk", "<html>"), "not a loopauthtest state file", nil},
		{"unknown member", write("unknown", `{"version":1,"keys":[],"extra":1}`), "not a loopauthtest state file", nil},
		{"trailing data", write("trailing", `{"version":1} {}`), "data after", nil},
		{"version", write("version", `{"version":2}`), "version 2", nil},
		{"no keys", write("nokeys", `{"version":1,"keys":[]}`), "no signing keys", nil},
		{"bad key", write("badkey", `{"version":1,"keys":["AAAA"]}`), "key 0", nil},
		{"other algorithm", es, "the current key is ES256", []Option{WithSigningAlg(AlgRS256)}},
		{"dangling grant", write("dangling", strings.Replace(readFile(t, es), `"access_tokens":null`, `"access_tokens":[{"token":"t","grant":3,"scope":"","expires":"2030-01-01T00:00:00Z"}]`, 1)), "without a token or grant", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := StartProvider(append([]Option{WithStateFile(tt.path)}, tt.opts...)...)
			if err == nil {
				p.Close()
				t.Fatal("StartProvider accepted the state file")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "loopauthtest: ") {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
		})
	}
	t.Run("empty file is a fresh start", func(t *testing.T) {
		p := NewProvider(t, WithStateFile(write("empty", "")))
		if p.KeyID() == "" {
			t.Fatal("no key")
		}
	})
	t.Run("unwritable", func(t *testing.T) {
		_, err := StartProvider(WithStateFile(filepath.Join(dir, "no-such-dir", "state.json")))
		if err == nil || !strings.Contains(err.Error(), "saving the state file") {
			t.Fatalf("StartProvider = %v, want a saving error", err)
		}
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStateFileWriteFailureIsAServerError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := NewProvider(t, WithStateFile(filepath.Join(dir, "state.json")))
	cb := newCallback(t)
	f := newFlow(t, cb.URL())
	code := authorize(t, p, f, cb)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	r := postToken(t, p, f.exchangeForm(code))
	wantTokenError(t, r, http.StatusInternalServerError, "server_error")
	if !strings.Contains(r.str("error_description"), "saving the state file") {
		t.Errorf("error_description %q", r.str("error_description"))
	}
}

func TestSeveralClients(t *testing.T) {
	p := NewProvider(t, WithClient("one", ""), WithClient("two", "pw"), WithClient("one", "now-secret"))
	cb := newCallback(t)
	for _, c := range []struct{ id, secret string }{{"one", "now-secret"}, {"two", "pw"}} {
		f := newFlow(t, cb.URL())
		f.clientID = c.id
		form := f.exchangeForm(authorize(t, p, f, cb))
		wantTokenError(t, postToken(t, p, form), 401, "invalid_client")
		form.Set("client_secret", c.secret)
		wantTokens(t, postToken(t, p, form))
	}
	resp, _ := get(t, p.AuthURL()+"?client_id=three&redirect_uri="+cb.URL())
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unregistered client at /authorize: %s, want 400", resp.Status)
	}
}
