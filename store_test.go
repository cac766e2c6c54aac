package loopauth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	_ TokenStore  = (*MemoryStore)(nil)
	_ TokenStore  = (*FileStore)(nil)
	_ StoreLocker = (*FileStore)(nil)
)

// Distinctive fake tokens: no error string may contain them.
const (
	storeAccessA  = "STORE-ACCESS-A-7f3e9c"
	storeRefreshA = "STORE-REFRESH-A-2b8d4a"
	storeAccessB  = "STORE-ACCESS-B-5c1f0e"
	storeRefreshB = "STORE-REFRESH-B-9a6b3d"
)

// storeTestIDToken is an unsigned compact ID token; stores never verify it.
var storeTestIDToken = "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(
	[]byte(`{"sub":"user_42","iss":"https://as.example","aud":"cli","exp":9999999999,"iat":1000000000}`)) + ".c2ln"

// Two token sets in the storage format: A has every field, B differs in
// each.
var (
	storeDocA = `{"access_token":"` + storeAccessA + `","refresh_token":"` + storeRefreshA +
		`","expires_at":2000000000,"token_type":"Bearer","oidc":{"raw":"` + storeTestIDToken +
		`","claims":{}},"scopes":["openid","email","offline_access","read:user"]}`
	storeDocB = `{"access_token":"` + storeAccessB + `","refresh_token":"` + storeRefreshB +
		`","expires_at":2100000000,"token_type":"Bearer","oidc":null,"scopes":["email"]}`
)

func storeSet(t testing.TB, doc string) *TokenSet {
	t.Helper()
	var ts TokenSet
	if err := json.Unmarshal([]byte(doc), &ts); err != nil {
		t.Fatal(err)
	}
	return &ts
}

// storeBytes is what a store writes for ts.
func storeBytes(t testing.TB, ts *TokenSet) []byte {
	t.Helper()
	data, err := json.Marshal(ts)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func assertNoStoreSecret(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{storeAccessA, storeRefreshA, storeAccessB, storeRefreshB, storeTestIDToken} {
		if strings.Contains(s, secret) {
			t.Errorf("%q leaks a token", s)
		}
	}
}

// storeKinds runs a test against both stores.
var storeKinds = []struct {
	name string
	new  func(t *testing.T) TokenStore
}{
	{"memory", func(t *testing.T) TokenStore { return NewMemoryStore() }},
	{"file", func(t *testing.T) TokenStore {
		return NewFileStore(filepath.Join(t.TempDir(), "cfg", "app", "tokens.json"))
	}},
}

// TestStoreRoundTrip: empty is ErrNoToken; every field survives Save and
// Load; Clear empties the store and is idempotent. No call leaves a
// goroutine behind.
func TestStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := kind.new(t)
			check := noLeaks(t) // after each call
			if ts, err := s.Load(ctx); ts != nil || err != ErrNoToken {
				t.Fatalf("empty store: %v, %v", ts, err)
			}
			check()
			a := storeSet(t, storeDocA)
			if err := s.Save(ctx, a); err != nil {
				t.Fatal(err)
			}
			check()
			got, err := s.Load(ctx)
			check()
			if err != nil {
				t.Fatal(err)
			}
			if got == a || got.AccessToken() != storeAccessA || got.RefreshToken() != storeRefreshA ||
				got.TokenType() != "Bearer" || !got.ExpiresAt().Equal(time.Unix(2000000000, 0)) ||
				got.IDTokenRaw() != storeTestIDToken || got.IDToken().Claims().Subject != "user_42" ||
				joinScopes(got.Scopes()) != "openid email offline_access read:user" {
				t.Errorf("round trip = %v", got)
			}
			b := storeSet(t, storeDocB)
			if err := s.Save(ctx, b); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Load(ctx); err != nil || !bytes.Equal(storeBytes(t, got), storeBytes(t, b)) {
				t.Errorf("after second Save: %v, %v", got, err)
			}
			for i := 0; i < 2; i++ {
				if err := s.Clear(ctx); err != nil {
					t.Fatalf("Clear %d: %v", i+1, err)
				}
				check()
				if _, err := s.Load(ctx); err != ErrNoToken {
					t.Fatalf("after Clear %d: %v", i+1, err)
				}
			}
		})
	}
}

// TestStoreConcurrent: Saves and Loads from many goroutines (run with
// -race) always see a whole set.
func TestStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	sets := []*TokenSet{storeSet(t, storeDocA), storeSet(t, storeDocB)}
	want := [][]byte{storeBytes(t, sets[0]), storeBytes(t, sets[1])}
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := kind.new(t)
			if err := s.Save(ctx, sets[0]); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 40; i++ {
						if (g+i)%3 == 0 {
							if err := s.Save(ctx, sets[(g+i)%2]); err != nil {
								t.Error(err)
								return
							}
							continue
						}
						ts, err := s.Load(ctx)
						if err != nil {
							t.Error(err)
							return
						}
						if got := storeBytes(t, ts); !bytes.Equal(got, want[0]) && !bytes.Equal(got, want[1]) {
							t.Errorf("torn read: %s", got)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// TestStoreRefusesInvalidSet: a store never holds a set Load would refuse.
func TestStoreRefusesInvalidSet(t *testing.T) {
	ctx := context.Background()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := kind.new(t)
			for _, ts := range []*TokenSet{nil, {}, {accessToken: newSecret("a\nb"), tokenType: "Bearer"}} {
				if err := s.Save(ctx, ts); !errors.Is(err, ErrInvalidTokenSet) {
					t.Errorf("Save(%v) = %v, want ErrInvalidTokenSet", ts, err)
				}
			}
			if _, err := s.Load(ctx); err != ErrNoToken {
				t.Errorf("Load after refused Saves: %v", err)
			}
		})
	}
}

// TestStoreContextDone: every method returns ctx.Err() at once, and a
// cancelled Save changes nothing.
func TestStoreContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := kind.new(t)
			if err := s.Save(context.Background(), storeSet(t, storeDocA)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Load(ctx); err != context.Canceled {
				t.Errorf("Load: %v", err)
			}
			if err := s.Save(ctx, storeSet(t, storeDocB)); err != context.Canceled {
				t.Errorf("Save: %v", err)
			}
			if err := s.Clear(ctx); err != context.Canceled {
				t.Errorf("Clear: %v", err)
			}
			if l, ok := s.(StoreLocker); ok {
				if _, err := l.Lock(ctx); !errors.Is(err, context.Canceled) {
					t.Errorf("Lock: %v", err)
				}
			}
			if ts, err := s.Load(context.Background()); err != nil || ts.AccessToken() != storeAccessA {
				t.Errorf("after cancelled calls: %v, %v", ts, err)
			}
		})
	}
}

func TestFileStoreNoPath(t *testing.T) {
	ctx := context.Background()
	for _, s := range []*FileStore{nil, {}, NewFileStore("")} {
		_, lerr := s.Load(ctx)
		serr := s.Save(ctx, storeSet(t, storeDocA))
		cerr := s.Clear(ctx)
		_, kerr := s.Lock(ctx)
		for _, err := range []error{lerr, serr, cerr, kerr} {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("err = %v, want ErrInvalidConfig", err)
			}
		}
	}
}

// storeTemps lists the temporary files Save left next to path.
func storeTemps(t *testing.T, path string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var temps []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix(path)) {
			temps = append(temps, filepath.Join(filepath.Dir(path), e.Name()))
		}
	}
	return temps
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

// TestFileStoreModes covers L-06: a 0600 file in 0700 directories created
// by the first Save, and no temporary file left behind.
func TestFileStoreModes(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "cfg", "app", "tokens.json")
	s := NewFileStore(path)
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("NewFileStore created something")
	}
	if err := s.Save(context.Background(), storeSet(t, storeDocA)); err != nil {
		t.Fatal(err)
	}
	if temps := storeTemps(t, path); len(temps) != 0 {
		t.Errorf("temporary files left: %v", temps)
	}
	if !modeBitsApply {
		t.Skip("permission bits are Unix")
	}
	assertMode(t, path, 0o600)
	assertMode(t, filepath.Join(root, "cfg"), 0o700)
	assertMode(t, filepath.Join(root, "cfg", "app"), 0o700)
}

// TestFileStoreUmask: the modes hold whatever the umask. The umask is set
// by a shell around a child process, so this process's stays untouched.
func TestFileStoreUmask(t *testing.T) {
	if !modeBitsApply {
		t.Skip("permission bits are Unix")
	}
	for _, mask := range []string{"000", "022", "077"} {
		t.Run(mask, func(t *testing.T) {
			root := t.TempDir()
			path := filepath.Join(root, "cfg", "tokens.json")
			cmd := exec.Command("/bin/sh", "-c", "umask "+mask+` && exec "$@"`, "sh", os.Args[0], "-test.run=^TestFileStoreUmaskChild$")
			cmd.Env = append(os.Environ(), storeHelperEnv+"=umask", storePathEnv+"="+path, storeRaceEnv)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			assertMode(t, filepath.Join(root, "cfg"), 0o700)
			assertMode(t, path, 0o600)
			assertMode(t, path+".lock", 0o600)
		})
	}
}

// TestFileStoreUmaskChild saves and takes the lock (left held), for
// TestFileStoreUmask.
func TestFileStoreUmaskChild(t *testing.T) {
	if os.Getenv(storeHelperEnv) != "umask" {
		t.Skip("helper process for TestFileStoreUmask")
	}
	s := NewFileStore(os.Getenv(storePathEnv))
	if err := s.Save(context.Background(), storeSet(t, storeDocA)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestFileStoreSymlink covers L-06: a symbolic link at the token file's
// path is refused by Load and Save and never followed; Clear removes the
// link, not its target.
func TestFileStoreSymlink(t *testing.T) {
	ctx := context.Background()
	targetData := storeBytes(t, storeSet(t, storeDocA))
	cases := []struct {
		name   string
		target func(t *testing.T, dir string) string
	}{
		{"to a token file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "real.json")
			if err := os.WriteFile(p, targetData, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"dangling", func(t *testing.T, dir string) string { return filepath.Join(dir, "missing.json") }},
		{"to a directory", func(t *testing.T, dir string) string { return dir }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			target := tc.target(t, t.TempDir())
			path := filepath.Join(dir, "tokens.json")
			if err := os.Symlink(target, path); err != nil {
				t.Skipf("cannot create a symbolic link: %v", err)
			}
			s := NewFileStore(path)
			var modeErr *FileModeError
			_, err := s.Load(ctx)
			if !errors.As(err, &modeErr) || modeErr.Mode&fs.ModeSymlink == 0 || modeErr.Path != path {
				t.Fatalf("Load = %v, want *FileModeError for a symlink", err)
			}
			if !strings.Contains(err.Error(), "symbolic link") {
				t.Errorf("message %q does not say why", err)
			}
			assertNoStoreSecret(t, err.Error())
			if err := s.Save(ctx, storeSet(t, storeDocB)); !errors.As(err, &modeErr) {
				t.Errorf("Save = %v, want *FileModeError", err)
			}
			if data, err := os.ReadFile(target); err == nil && !bytes.Equal(data, targetData) {
				t.Error("the link's target was written")
			}
			if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Error("Save replaced the link")
			}
			if err := s.Clear(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Error("Clear left the link")
			}
			if _, err := os.Stat(target); tc.name != "dangling" && err != nil {
				t.Errorf("Clear removed the target: %v", err)
			}
		})
	}
}

// TestFileStoreInsecureMode covers L-06: a token file that others may read
// or write is refused by Load with an error that says what to do, and
// repaired by Save, even when the content is unchanged.
func TestFileStoreInsecureMode(t *testing.T) {
	if !modeBitsApply {
		t.Skip("permission bits are Unix")
	}
	ctx := context.Background()
	a := storeSet(t, storeDocA)
	for _, mode := range []fs.FileMode{0o644, 0o640, 0o604, 0o660, 0o602, 0o666} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			if err := os.WriteFile(path, storeBytes(t, a), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			s := NewFileStore(path)
			_, err := s.Load(ctx)
			var modeErr *FileModeError
			if !errors.As(err, &modeErr) || modeErr.Mode.Perm() != mode || modeErr.Path != path {
				t.Fatalf("Load = %v, want *FileModeError", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "chmod 600") || !strings.Contains(msg, path) || !strings.Contains(msg, "sign in again") {
				t.Errorf("message %q does not say what to do", msg)
			}
			assertNoStoreSecret(t, err.Error())
			if err := s.Save(ctx, a); err != nil {
				t.Fatal(err)
			}
			assertMode(t, path, 0o600)
			if ts, err := s.Load(ctx); err != nil || ts.AccessToken() != storeAccessA {
				t.Errorf("after Save: %v, %v", ts, err)
			}
		})
	}
}

// TestFileStoreUnsafeDir covers L-06: a directory that other users may
// write to, or that belongs to another user, is refused by Load, Save,
// Lock and Clear with an error that says what to do, and nothing in it is
// read, written or removed. Whoever can write to it could replace the
// token file with their own, and the program would act as their account.
func TestFileStoreUnsafeDir(t *testing.T) {
	if !modeBitsApply {
		t.Skip("owners and permission bits are Unix")
	}
	cases := []struct {
		name  string
		mode  fs.FileMode
		owner int // -1: this user
		fix   string
	}{
		{"group-writable", 0o770, -1, "chmod 700"},
		{"world-writable", 0o757, -1, "chmod 700"},
		{"world-writable sticky, as /tmp", 0o777 | fs.ModeSticky, -1, "a directory of your own"},
		{"another user's", 0o700, 4242, "belongs to another user (uid 4242)"},
	}
	a, b := storeSet(t, storeDocA), storeSet(t, storeDocB)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.owner >= 0 && os.Getuid() != 0 {
				t.Skip("needs root, to give a directory to another user (chown)")
			}
			dir := filepath.Join(t.TempDir(), "shared")
			path := filepath.Join(dir, "tokens.json")
			if err := NewFileStore(path).Save(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			if tc.owner >= 0 {
				if err := os.Chown(dir, tc.owner, -1); err != nil {
					t.Fatal(err)
				}
			}
			calls := []struct {
				name string
				call func(ctx context.Context, s *FileStore) error
			}{
				{"Load", func(ctx context.Context, s *FileStore) error { _, err := s.Load(ctx); return err }},
				{"Save", func(ctx context.Context, s *FileStore) error { return s.Save(ctx, b) }},
				{"Lock", func(ctx context.Context, s *FileStore) error {
					unlock, err := s.Lock(ctx)
					if err == nil {
						unlock()
					}
					return err
				}},
				{"Clear", func(ctx context.Context, s *FileStore) error { return s.Clear(ctx) }},
			}
			for _, c := range calls {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				check := noLeaks(t)
				err := c.call(ctx, NewFileStore(path))
				check()
				cancel()
				var modeErr *FileModeError
				if !errors.As(err, &modeErr) || modeErr.Path != dir || modeErr.Mode.Perm() != tc.mode.Perm() {
					t.Errorf("%s = %v, want a *FileModeError for the directory", c.name, err)
					continue
				}
				if msg := err.Error(); !strings.Contains(msg, tc.fix) || !strings.Contains(msg, dir) {
					t.Errorf("%s: message %q does not say %q", c.name, msg, tc.fix)
				}
				assertNoStoreSecret(t, err.Error())
			}
			if data, err := os.ReadFile(path); err != nil || !bytes.Equal(data, storeBytes(t, a)) {
				t.Errorf("the token file was changed or removed: %v", err)
			}
			if _, err := os.Lstat(path + ".lock"); !errors.Is(err, fs.ErrNotExist) {
				t.Error("a lock file was created")
			}
		})
	}
}

// TestFileStoreForeignFile covers L-06: a token file that belongs to
// another user, who may have planted it, is refused by Load with an
// error that says what to do; Save replaces it with one of this user's,
// and Clear removes it.
func TestFileStoreForeignFile(t *testing.T) {
	if !modeBitsApply {
		t.Skip("owners are Unix")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root, to give a file to another user (chown)")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tokens.json")
	s := NewFileStore(path)
	plant := func() {
		t.Helper()
		if err := os.WriteFile(path, storeBytes(t, storeSet(t, storeDocA)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, 4242, 4242); err != nil {
			t.Fatal(err)
		}
	}
	plant()
	check := noLeaks(t)
	ts, err := s.Load(ctx)
	check()
	var modeErr *FileModeError
	if ts != nil || !errors.As(err, &modeErr) || modeErr.Path != path {
		t.Fatalf("Load = %v, %v; want a *FileModeError", ts, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "belongs to another user (uid 4242)") || !strings.Contains(msg, path) || !strings.Contains(msg, "sign in again") {
		t.Errorf("message %q does not say what to do", msg)
	}
	assertNoStoreSecret(t, err.Error())

	// The same content: Save must still replace the file, not skip it.
	check = noLeaks(t)
	err = s.Save(ctx, storeSet(t, storeDocA))
	check()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	} else if uid, _ := fileOwner(fi); uid != os.Getuid() {
		t.Errorf("Save left the other user's file (uid %d)", uid)
	}
	if ts, err := s.Load(ctx); err != nil || ts.AccessToken() != storeAccessA {
		t.Errorf("after Save: %v, %v", ts, err)
	}

	plant()
	check = noLeaks(t)
	err = s.Clear(ctx)
	check()
	if _, lerr := os.Lstat(path); err != nil || !errors.Is(lerr, fs.ErrNotExist) {
		t.Errorf("Clear = %v; file: %v", err, lerr)
	}
}

// TestFileStoreClearTakesLock: Clear waits for the store's lock,
// so that a refresh in progress, here or in another process, cannot save
// its tokens back after a sign-out; a Clear whose ctx ends first removes
// nothing.
func TestFileStoreClearTakesLock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tokens.json")
	s := NewFileStore(path)
	if err := s.Save(ctx, storeSet(t, storeDocA)); err != nil {
		t.Fatal(err)
	}
	unlock, err := s.Lock(ctx) // a refresh in progress
	if err != nil {
		t.Fatal(err)
	}
	var saved atomic.Bool
	go func() {
		time.Sleep(200 * time.Millisecond)
		// The refresh ends: it saves its new set, then unlocks.
		if err := NewFileStore(path).Save(ctx, storeSet(t, storeDocB)); err != nil {
			t.Error(err)
		}
		saved.Store(true)
		unlock()
	}()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	check := noLeaks(t)
	err = NewFileStore(path).Clear(cctx)
	check()
	if err != nil {
		t.Fatal(err)
	}
	if !saved.Load() {
		t.Error("Clear did not wait for the lock")
	}
	if ts, err := s.Load(ctx); err != ErrNoToken {
		t.Errorf("after Clear: %v, %v; the refresh's tokens survived the sign-out", ts, err)
	}

	if err := s.Save(ctx, storeSet(t, storeDocA)); err != nil {
		t.Fatal(err)
	}
	unlockAgain, err := s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlockAgain()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	check = noLeaks(t)
	err = s.Clear(short)
	check()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Clear = %v while the lock is held, want to wait until the deadline", err)
	}
	if _, err := s.Load(ctx); err != nil {
		t.Errorf("a Clear that did not get the lock removed the file: %v", err)
	}
}

// TestFileStoreBadContent: each unusable file gives a typed error that
// names the path and quotes none of the file.
func TestFileStoreBadContent(t *testing.T) {
	ctx := context.Background()
	valid := string(storeBytes(t, storeSet(t, storeDocA)))
	huge := valid[:len(valid)-1] + `,"x":"` + strings.Repeat("A", maxTokenFileBytes) + `"}`
	cases := []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"whitespace", " \n"},
		{"corrupt", "\x00\x01garbage" + storeAccessA},
		{"truncated", valid[:len(valid)/2]},
		{"truncated by one byte", valid[:len(valid)-1]},
		{"huge", huge},
		{"array", "[" + valid + "]"},
		{"refused by UnmarshalJSON", strings.Replace(valid, `"Bearer"`, `"mac"`, 1)},
		{"duplicate member", valid[:len(valid)-1] + `,"access_token":"` + storeAccessB + `"}`},
		{"invalid UTF-8", strings.Replace(valid, storeAccessA, storeAccessA+"\xff", 1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			ts, err := NewFileStore(path).Load(ctx)
			if ts != nil || !errors.Is(err, ErrInvalidTokenSet) {
				t.Fatalf("Load = %v, %v; want ErrInvalidTokenSet", ts, err)
			}
			if !strings.Contains(err.Error(), path) || strings.Count(err.Error(), "loopauth: ") != 1 {
				t.Errorf("message %q", err)
			}
			assertNoStoreSecret(t, err.Error())
			// Save replaces an unusable file.
			if err := NewFileStore(path).Save(ctx, storeSet(t, storeDocB)); err != nil {
				t.Fatal(err)
			}
			if ts, err := NewFileStore(path).Load(ctx); err != nil || ts.AccessToken() != storeAccessB {
				t.Errorf("after Save: %v, %v", ts, err)
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tokens.json")
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		s := NewFileStore(path)
		var modeErr *FileModeError
		_, lerr := s.Load(ctx)
		serr := s.Save(ctx, storeSet(t, storeDocA))
		cerr := s.Clear(ctx)
		for _, err := range []error{lerr, serr, cerr} {
			if !errors.As(err, &modeErr) || !modeErr.Mode.IsDir() || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("err = %v, want *FileModeError for a directory", err)
			}
		}
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
			t.Error("the directory was removed")
		}
	})
}

// TestFileStoreNoRewrite: saving the set the file already holds writes
// nothing (same inode, same mtime); saving another one replaces the file.
func TestFileStoreNoRewrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tokens.json")
	s := NewFileStore(path)
	if err := s.Save(ctx, storeSet(t, storeDocA)); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh but equal set, as a Load would return.
	again, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // so that a rewrite would show in the mtime
	if err := s.Save(ctx, again); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) {
		t.Error("an unchanged set was written again")
	}
	if err := s.Save(ctx, storeSet(t, storeDocB)); err != nil {
		t.Fatal(err)
	}
	if changed, err := os.Stat(path); err != nil || os.SameFile(before, changed) {
		t.Errorf("a changed set was not written atomically: %v", err)
	}
}

// TestFileStoreTempCleanup: temporary files left by a crashed Save are
// removed by a later Save once they are old, and by Clear at once (they
// hold tokens). Files that only look similar are kept.
func TestFileStoreTempCleanup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	s := NewFileStore(path)
	write := func(name string, age time.Duration) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-age)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := write(tempPrefix(path)+"123", staleTempAge+time.Minute)
	young := write(tempPrefix(path)+"456", 0)
	other := write(tempPrefix(path)+"notdigits", staleTempAge+time.Minute)
	if err := s.Save(ctx, storeSet(t, storeDocA)); err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	if exists(old) || !exists(young) || !exists(other) {
		t.Errorf("after Save: old %v (want false), young %v, other %v", exists(old), exists(young), exists(other))
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if exists(young) || !exists(other) {
		t.Errorf("after Clear: young %v (want false), other %v", exists(young), exists(other))
	}
}

// Child processes of the tests below are this test binary, re-executed
// with storeHelperEnv naming their role.
const (
	storeHelperEnv = "LOOPAUTH_STORE_HELPER"
	storePathEnv   = "LOOPAUTH_STORE_PATH"
	storeLogEnv    = "LOOPAUTH_STORE_LOG"
)

func storeHelper(role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^"+role+"$")
	cmd.Env = append(os.Environ(), append(env, storeRaceEnv)...)
	return cmd
}

// storeRaceEnv: the race detector otherwise sleeps a second at exit.
const storeRaceEnv = "GORACE=atexit_sleep_ms=0"

// TestFileStoreCrash: a process killed with SIGKILL at random moments
// while it saves two sets in turn always leaves a file that loads to one
// of them, with mode 0600, and at most one temporary file.
func TestFileStoreCrash(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL; Windows has no equivalent this test can rely on")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tokens.json")
	s := NewFileStore(path)
	want := [][]byte{storeBytes(t, storeSet(t, storeDocA)), storeBytes(t, storeSet(t, storeDocB))}
	const kills = 100
	start, leftovers := time.Now(), 0
	for i := 0; i < kills; i++ {
		cmd := storeHelper("TestFileStoreCrashChild", storeHelperEnv+"=crash", storePathEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill only once the child is in its save loop.
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "saving\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child did not start saving: %q, %v", line, err)
		}
		time.Sleep(mathrand.N(20 * time.Millisecond))
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()

		ts, err := s.Load(ctx)
		if err != nil {
			t.Fatalf("kill %d: Load: %v", i, err)
		}
		if got := storeBytes(t, ts); !bytes.Equal(got, want[0]) && !bytes.Equal(got, want[1]) {
			t.Fatalf("kill %d: the file holds neither saved set", i)
		}
		assertMode(t, path, 0o600)
		temps := storeTemps(t, path)
		if len(temps) > 1 {
			t.Fatalf("kill %d: %d temporary files, want at most 1", i, len(temps))
		}
		for _, tmp := range temps {
			os.Remove(tmp)
			leftovers++
		}
	}
	// Leftovers show that kills landed inside a write, not only between two.
	t.Logf("%d kills in %v, %d during a write", kills, time.Since(start).Round(time.Millisecond), leftovers)
}

// TestFileStoreCrashChild saves two sets in turn until it is killed.
func TestFileStoreCrashChild(t *testing.T) {
	if os.Getenv(storeHelperEnv) != "crash" {
		t.Skip("helper process for TestFileStoreCrash")
	}
	s := NewFileStore(os.Getenv(storePathEnv))
	sets := []*TokenSet{storeSet(t, storeDocA), storeSet(t, storeDocB)}
	deadline := time.Now().Add(time.Minute) // if the parent died
	for i := 0; time.Now().Before(deadline); i++ {
		if i == 1 {
			fmt.Println("saving")
		}
		if err := s.Save(context.Background(), sets[i%2]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFileStoreLockSerializes: goroutines of one process exclude each
// other, and a second Lock blocks until the first unlock.
func TestFileStoreLockSerializes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	s := NewFileStore(path)

	unlock, err := s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func())
	go func() {
		u, err := s.Lock(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("a second Lock passed while the first was held")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case u := <-got:
		u()
	case <-time.After(5 * time.Second):
		t.Fatal("the second Lock did not get the lock after unlock")
	}

	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				u, err := NewFileStore(path).Lock(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > maxInside.Load() {
					maxInside.Store(n)
				}
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				u()
			}
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 {
		t.Errorf("%d holders at once", maxInside.Load())
	}
	if _, err := os.Lstat(path + ".lock"); removeLockWhileHeld && !errors.Is(err, fs.ErrNotExist) {
		t.Error("lock file left after the last unlock")
	}
}

// writeLock plants a lock file as a holder would have left it.
func writeLock(t *testing.T, path string, content string, age time.Duration) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(-age)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

// foreignLock is a lock file as the PID-based lock of earlier versions
// wrote it, naming pid on this host.
func foreignLock(pid int) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("pid=%d\nhost=%s\ntime=2001-01-01T00:00:00Z\nid=00\n", pid, host)
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	cmd := storeHelper("")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.Pid()
}

// TestFileStoreLockLeftover: a lock file that no process holds, as a crash
// leaves it, is taken at once, whatever it says and however old it is;
// unlock removes it.
func TestFileStoreLockLeftover(t *testing.T) {
	host, _ := os.Hostname()
	cases := []struct {
		name    string
		content func(t *testing.T) string
		age     time.Duration
	}{
		{"names a live process", func(*testing.T) string { return foreignLock(os.Getpid()) }, 0},
		{"names a dead process", func(t *testing.T) string { return foreignLock(deadPID(t)) }, 0},
		{"names another host", func(*testing.T) string { return "pid=1\nhost=" + host + "-elsewhere\n" }, 0},
		{"empty", func(*testing.T) string { return "" }, 0},
		{"a day old", func(*testing.T) string { return foreignLock(os.Getpid()) }, 24 * time.Hour},
		{"dated in the future", func(*testing.T) string { return foreignLock(os.Getpid()) }, -24 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			writeLock(t, path+".lock", tc.content(t), tc.age)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			check := noLeaks(t)
			unlock, err := NewFileStore(path).Lock(ctx)
			check()
			if err != nil {
				t.Fatalf("a lock file no one holds was not taken: %v", err)
			}
			unlock()
			if _, err := os.Lstat(path + ".lock"); removeLockWhileHeld && !errors.Is(err, fs.ErrNotExist) {
				t.Error("unlock left the lock file")
			}
		})
	}
}

// storeLockContentEnv is what TestFileStoreLockHolderChild writes into its
// lock file.
const storeLockContentEnv = "LOOPAUTH_STORE_LOCK_CONTENT"

// TestFileStoreLockHolder: a lock that another process holds is
// never taken from it, even when its lock file names a PID that does not
// exist here, as happens when the holder runs in another PID namespace (a
// container sharing the host's files, Flatpak, unshare -p): Lock waits
// until the holder releases it, or dies and the kernel releases it. The
// "pid namespace" cases run the holder in a real one when unshare works.
func TestFileStoreLockHolder(t *testing.T) {
	for _, ns := range []bool{false, true} {
		for _, end := range []string{"released", "killed"} {
			name := end
			if ns {
				name = "pid namespace " + end
			}
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "tokens.json")
				env := []string{storeHelperEnv + "=hold", storePathEnv + "=" + path}
				if !ns {
					env = append(env, storeLockContentEnv+"="+foreignLock(deadPID(t)))
				}
				cmd := storeHelper("TestFileStoreLockHolderChild", env...)
				if ns {
					// The holder is PID 1 of a new namespace; --kill-child
					// passes a kill of unshare on to it.
					cmd.Args = append([]string{"unshare", "--pid", "--fork", "--kill-child"}, cmd.Args...)
					cmd.Path = requireUnshare(t)
				}
				release, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				defer func() {
					cmd.Process.Kill()
					cmd.Wait()
				}()
				if line, err := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
					t.Fatalf("the holder did not take the lock: %q, %v", line, err)
				}

				s := NewFileStore(path)
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				check := noLeaks(t)
				_, err = s.Lock(ctx)
				check()
				cancel()
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Lock = %v while another process holds the lock; want it to wait", err)
				}

				var letGo atomic.Bool
				go func() {
					time.Sleep(100 * time.Millisecond)
					letGo.Store(true)
					if end == "released" {
						release.Close()
					} else {
						cmd.Process.Kill()
					}
				}()
				ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				check = noLeaks(t)
				unlock, err := s.Lock(ctx)
				check()
				if err != nil {
					t.Fatalf("Lock after the holder %s: %v", end, err)
				}
				if !letGo.Load() {
					t.Error("Lock took the lock before its holder let go")
				}
				unlock()
			})
		}
	}
}

// requireUnshare returns the path of unshare(1), or skips the test when
// it cannot make a PID namespace here.
func requireUnshare(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("PID namespaces are Linux's")
	}
	path, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare(1) to run the holder in another PID namespace")
	}
	if out, err := exec.Command(path, "--pid", "--fork", "true").CombinedOutput(); err != nil {
		t.Skipf("needs unshare --pid, which needs root or unprivileged user namespaces: %v %s", err, out)
	}
	return path
}

// TestFileStoreLockHolderChild takes the lock, writes its lock file as the
// parent asked, and holds the lock until its standard input is closed.
func TestFileStoreLockHolderChild(t *testing.T) {
	if os.Getenv(storeHelperEnv) != "hold" {
		t.Skip("helper process for TestFileStoreLockHolder")
	}
	path := os.Getenv(storePathEnv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unlock, err := NewFileStore(path).Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	content := os.Getenv(storeLockContentEnv)
	if content == "" {
		content = foreignLock(os.Getpid()) // in a PID namespace: 1
	}
	// Same file, new content: the lock stays held.
	if err := os.WriteFile(path+".lock", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	unlock()
}

// TestFileStoreLockLeftoverRace: many waiters finding the same lock file
// left by a crash take the lock one at a time.
func TestFileStoreLockLeftoverRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for round := 0; round < 20; round++ {
		path := filepath.Join(t.TempDir(), "tokens.json")
		writeLock(t, path+".lock", foreignLock(os.Getpid()), 0)
		var inside, maxInside atomic.Int32
		var wg sync.WaitGroup
		startGate := make(chan struct{})
		for g := 0; g < 10; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-startGate
				u, err := NewFileStore(path).Lock(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > maxInside.Load() {
					maxInside.Store(n)
				}
				time.Sleep(2 * time.Millisecond)
				inside.Add(-1)
				u()
			}()
		}
		close(startGate)
		wg.Wait()
		if maxInside.Load() != 1 {
			t.Fatalf("round %d: %d holders at once", round, maxInside.Load())
		}
	}
}

// TestFileStoreLockCancel: a waiting Lock returns promptly when its ctx is
// done, with an error wrapping ctx.Err().
func TestFileStoreLockCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	unlock, err := NewFileStore(path).Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err = NewFileStore(path).Lock(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting for the token store lock") {
		t.Errorf("Lock = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond+lockPollMax {
		t.Errorf("Lock returned %v after the start, %v after cancel", d, d-50*time.Millisecond)
	}
}

// TestFileStoreUnlock: unlock releases its own lock only once, and leaves
// a lock file that is not its own.
func TestFileStoreUnlock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tokens.json")
	s := NewFileStore(path)
	unlock, err := s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if removeLockWhileHeld {
		// Someone removed the lock file and another holder made its own:
		// that one must survive this unlock.
		os.Remove(path + ".lock")
		writeLock(t, path+".lock", "other", 0)
	}
	unlock()
	if data, err := os.ReadFile(path + ".lock"); removeLockWhileHeld && (err != nil || string(data) != "other") {
		t.Fatalf("unlock removed or changed another holder's lock file: %v", err)
	}
	os.Remove(path + ".lock")

	unlock, err = s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	second, err := s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unlock() // a second call of the first unlock must not release the second lock
	if _, err := os.Lstat(path + ".lock"); err != nil {
		t.Fatal("a repeated unlock removed a later lock")
	}
	second()
	if _, err := os.Lstat(path + ".lock"); removeLockWhileHeld && !errors.Is(err, fs.ErrNotExist) {
		t.Error("unlock left the lock file")
	}
}

// TestFileStoreLockPathRefused: a directory or a symbolic link at the lock
// path is an error, not a wait.
func TestFileStoreLockPathRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	if err := os.Mkdir(path+".lock", 0o700); err != nil {
		t.Fatal(err)
	}
	var modeErr *FileModeError
	if _, err := NewFileStore(path).Lock(ctx); !errors.As(err, &modeErr) || modeErr.Path != path+".lock" {
		t.Errorf("directory: Lock = %v, want *FileModeError", err)
	}
	other := filepath.Join(dir, "other.json")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), other+".lock"); err != nil {
		t.Skipf("cannot create a symbolic link: %v", err)
	}
	if _, err := NewFileStore(other).Lock(ctx); !errors.As(err, &modeErr) || modeErr.Mode&fs.ModeSymlink == 0 {
		t.Errorf("symlink: Lock = %v, want *FileModeError", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("Lock created the symlink's target")
	}
}

// TestFileStoreLockProcesses: five processes taking the lock together
// never overlap in their critical sections.
func TestFileStoreLockProcesses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	logPath := filepath.Join(dir, "log")
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i := 0; i < 5; i++ {
		cmd := storeHelper("TestFileStoreLockChild", storeHelperEnv+"=lock", storePathEnv+"="+path, storeLogEnv+"="+logPath)
		out := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v\n%s", err, outs[i])
		}
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(strings.ReplaceAll(string(data), "\n", " "))
	if len(lines) != 20 {
		t.Fatalf("log has %d words, want 20:\n%s", len(lines), data)
	}
	seen := map[string]bool{}
	for i := 0; i < len(lines); i += 4 {
		if lines[i] != "start" || lines[i+2] != "end" || lines[i+1] != lines[i+3] || seen[lines[i+1]] {
			t.Fatalf("critical sections overlap:\n%s", data)
		}
		seen[lines[i+1]] = true
	}
	if _, err := os.Lstat(path + ".lock"); removeLockWhileHeld && !errors.Is(err, fs.ErrNotExist) {
		t.Error("lock file left")
	}
}

// TestFileStoreLockChild is one process of TestFileStoreLockProcesses.
func TestFileStoreLockChild(t *testing.T) {
	if os.Getenv(storeHelperEnv) != "lock" {
		t.Skip("helper process for TestFileStoreLockProcesses")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	unlock, err := NewFileStore(os.Getenv(storePathEnv)).Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	log, err := os.OpenFile(os.Getenv(storeLogEnv), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	pid := strconv.Itoa(os.Getpid())
	fmt.Fprintf(log, "start %s\n", pid)
	time.Sleep(30 * time.Millisecond)
	fmt.Fprintf(log, "end %s\n", pid)
}

// FuzzFileStoreLoad: whatever the file holds, Load does not panic, fails
// only with ErrInvalidTokenSet naming the path, and Save would accept a set
// it accepts. (The format's own round trip is FuzzTokenSetJSON's; Save's
// fsyncs would slow the fuzzer down a hundredfold.)
func FuzzFileStoreLoad(f *testing.F) {
	seedFromTestdata(f, "store")
	path := filepath.Join(f.TempDir(), "tokens.json")
	s := NewFileStore(path)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ts, err := s.Load(ctx)
		if err != nil {
			if !errors.Is(err, ErrInvalidTokenSet) || !strings.Contains(err.Error(), path) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if _, err := encodeTokenSet(ts); err != nil {
			t.Fatalf("Save would refuse a set Load accepted: %v", err)
		}
	})
}
