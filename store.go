package loopauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Token storage: a CLI keeps its token set between runs in a TokenStore.
// The shape is autocert's Cache (three methods taking ctx, a sentinel for
// "nothing stored", an idempotent delete); FileStore's write is renameio's
// temp file, fsync, rename, fsync of the directory.

// TokenStore keeps one token set between runs of a program.
// Implementations must be safe for concurrent use.
type TokenStore interface {
	// Load returns the stored token set, or ErrNoToken when there is none.
	Load(ctx context.Context) (*TokenSet, error)
	// Save replaces the stored token set.
	Save(ctx context.Context, ts *TokenSet) error
	// Clear removes the stored token set. Clearing an empty store is not
	// an error.
	Clear(ctx context.Context) error
}

// StoreLocker is implemented by stores that several processes share, such
// as FileStore. Whoever refreshes or signs in holds the lock, so that ten
// commands started together open one browser tab and the other nine load
// what the first one saved; with refresh-token rotation it also keeps two
// processes from spending the same refresh token.
type StoreLocker interface {
	// Lock blocks until this process holds the store's lock or ctx is
	// done, and returns a function that releases it. The lock is not
	// reentrant: a second Lock, even from the same goroutine, waits for
	// the first unlock.
	Lock(ctx context.Context) (unlock func(), err error)
}

const (
	// maxTokenFileBytes caps what Load reads and Save writes. A real token
	// set is a few kilobytes; the ID token is its largest part.
	maxTokenFileBytes = 1 << 20

	// staleLockAge is the age at which a lock is taken over even though
	// its holder seems alive (a PID reused after a crash, or a PID that
	// cannot be checked). A holder may wait for a whole browser sign-in,
	// DefaultTimeout (5 minutes) or more, so this is three times that.
	staleLockAge = 15 * time.Minute

	// Waiting for a lock polls from lockPollMin, doubling up to
	// lockPollMax: a short refresh is picked up quickly, and a process
	// waiting for someone else's browser sign-in costs five wake-ups a
	// second.
	lockPollMin = 10 * time.Millisecond
	lockPollMax = 200 * time.Millisecond

	// staleBreakAge: a break marker (see breakLock) is held for the
	// microseconds of one removal; an older one was left by a crash.
	staleBreakAge = 10 * time.Second

	// staleTempAge: a temporary file this old was left by a Save that
	// crashed before its rename; younger ones may belong to a Save in
	// flight in another process.
	staleTempAge = 10 * time.Minute

	// maxLockFileBytes caps what is read of a lock file; ours are about
	// 100 bytes.
	maxLockFileBytes = 4 << 10
)

// MemoryStore keeps the token set in memory, for tests and for programs
// that sign in on every run. It holds the set's JSON encoding, so every
// Load returns a fresh copy and the storage format is exercised as with
// FileStore. The zero value is an empty store. A MemoryStore is safe for
// concurrent use.
type MemoryStore struct {
	mu   sync.Mutex
	data []byte // never modified once stored: Save swaps in a new slice
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// Load returns a copy of the saved token set, or ErrNoToken.
func (m *MemoryStore) Load(ctx context.Context) (*TokenSet, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	data := m.data
	m.mu.Unlock()
	if data == nil {
		return nil, ErrNoToken
	}
	var ts TokenSet
	if err := ts.UnmarshalJSON(data); err != nil {
		return nil, err // not reached: Save stores only what decodes
	}
	return &ts, nil
}

// Save stores a copy of ts. It refuses a set that Load could not return.
func (m *MemoryStore) Save(ctx context.Context, ts *TokenSet) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := encodeTokenSet(ts)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.data = data
	m.mu.Unlock()
	return nil
}

// Clear forgets the saved token set.
func (m *MemoryStore) Clear(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	m.data = nil
	m.mu.Unlock()
	return nil
}

// encodeTokenSet returns the storage form of ts, refusing what Load would
// refuse, so that a store never holds a set it cannot give back.
func encodeTokenSet(ts *TokenSet) ([]byte, error) {
	refuse := func(err error) error { return errorf("loopauth: not saving the token set: %w", err) }
	if ts == nil {
		return nil, refuse(errorf("%w: nil *TokenSet", ErrInvalidTokenSet))
	}
	data, err := json.Marshal(ts)
	if err != nil {
		return nil, refuse(errorf("%w: %v", ErrInvalidTokenSet, err))
	}
	if len(data) > maxTokenFileBytes {
		return nil, refuse(errorf("%w: larger than %d bytes", ErrInvalidTokenSet, maxTokenFileBytes))
	}
	var check TokenSet
	if err := check.UnmarshalJSON(data); err != nil {
		return nil, refuse(err)
	}
	return data, nil
}

// FileStore keeps the token set in a JSON file, in the storage format of
// [TokenSet.MarshalJSON].
//
// Save writes a temporary file (mode 0600) in the same directory, syncs it,
// renames it over the token file and syncs the directory, so that a crash
// at any moment leaves the old or the new token set, never a mix. It skips
// the write when the file already holds the same bytes. The directory is
// created with mode 0700 when missing; an existing one is left as it is.
// Rename is atomic on local filesystems; network filesystems may not keep
// that promise.
//
// FileStore never follows a symbolic link at the file's path: Load and Save
// refuse one, and anything else that is not a regular file, with a
// *FileModeError; Clear removes the link, not its target. On Unix, Load also
// refuses a file that its group or other users may read or write, because
// the tokens may have leaked and only the user can tell: the error says to
// run chmod 600, or to sign in again. Save repairs such a file, since it
// always writes a fresh 0600 file. On Windows, access is governed by the
// ACL the file inherits from its directory, such as the user's profile.
//
// Load and Save are safe for concurrent use, also by several processes.
// FileStore implements StoreLocker with a lock file next to the token file.
type FileStore struct {
	path     string
	staleAge time.Duration // staleLockAge; tests shorten it
}

// NewFileStore returns a store for the token file at path, for example
// filepath.Join(dir, "myapp", "tokens.json") with dir from
// os.UserConfigDir. Nothing is created until the first Save or Lock.
func NewFileStore(path string) *FileStore {
	return &FileStore{path: path, staleAge: staleLockAge}
}

// FileModeError means the path of a token file or its lock file holds
// something FileStore will not use: a symbolic link (never followed), a
// directory or another non-regular file, or, on Unix, a token file that
// its group or other users may read or write. Error says what to do.
type FileModeError struct {
	Path string
	Mode fs.FileMode // type and permission bits found
}

// Error describes the problem and the fix.
func (e *FileModeError) Error() string {
	switch {
	case e.Mode&fs.ModeSymlink != 0:
		return fmt.Sprintf("loopauth: %q is a symbolic link, which the token store never follows: remove it, or give the store the path of the real file", e.Path)
	case !e.Mode.IsRegular():
		return fmt.Sprintf("loopauth: %q is not a regular file (mode %v): remove it or give the token store another path", e.Path, e.Mode)
	}
	return fmt.Sprintf("loopauth: token file %q may be read or written by other users (mode %v): run chmod 600 %q if no one else could have read it; otherwise clear the store and sign in again", e.Path, e.Mode, e.Path)
}

// checkTokenFile refuses anything but a regular file that only its owner
// may access (where permission bits mean that).
func checkTokenFile(path string, fi fs.FileInfo) error {
	if m := fi.Mode(); !m.IsRegular() || modeBitsApply && m.Perm()&0o077 != 0 {
		return &FileModeError{Path: path, Mode: m}
	}
	return nil
}

func (s *FileStore) check() error {
	if s == nil || s.path == "" {
		return errorf("%w: FileStore has no path: create it with NewFileStore", ErrInvalidConfig)
	}
	return nil
}

// Load reads the token file. It returns ErrNoToken when there is none, a
// *FileModeError for a path it refuses (see FileStore), and an error
// wrapping ErrInvalidTokenSet, naming the path but never quoting the file,
// when the content is empty, corrupt or over 1 MiB.
func (s *FileStore) Load(ctx context.Context) (*TokenSet, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	data, err := s.read()
	if err != nil {
		return nil, err
	}
	var ts TokenSet
	if err := ts.UnmarshalJSON(data); err != nil {
		return nil, errorf("loopauth: token file %q: %w (sign in again to replace it)", s.path, err)
	}
	return &ts, nil
}

// errFileReplaced is returned when the token file kept changing between
// Lstat and open; each change is a concurrent Save, so it is rare.
var errFileReplaced = errors.New("loopauth: the token file was replaced while being read; try again")

// read returns the token file's bytes. It checks the path with Lstat, so
// that a symbolic link or a FIFO is refused before open, and the opened
// file again, so that nothing swapped in between is read.
func (s *FileStore) read() ([]byte, error) {
	for attempt := 1; ; attempt++ {
		fi, err := os.Lstat(s.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNoToken
		}
		if err != nil {
			return nil, errorf("loopauth: reading the token file: %w", err)
		}
		if err := checkTokenFile(s.path, fi); err != nil {
			return nil, err
		}
		if fi.Size() > maxTokenFileBytes {
			return nil, s.tooLarge()
		}
		data, err := s.readSame(fi)
		if err != errFileReplaced || attempt == 3 {
			return data, err
		}
	}
}

// readSame opens the token file and reads it if it is still the file that
// Lstat described.
func (s *FileStore) readSame(want fs.FileInfo) ([]byte, error) {
	f, err := os.OpenFile(s.path, os.O_RDONLY|openNoFollow, 0)
	if err != nil {
		if now, lerr := os.Lstat(s.path); lerr != nil || !os.SameFile(want, now) {
			return nil, errFileReplaced
		}
		return nil, errorf("loopauth: reading the token file: %w", err)
	}
	defer f.Close()
	got, err := f.Stat()
	if err != nil {
		return nil, errorf("loopauth: reading the token file: %w", err)
	}
	if !os.SameFile(want, got) {
		return nil, errFileReplaced
	}
	if err := checkTokenFile(s.path, got); err != nil {
		return nil, err // chmod since Lstat
	}
	data, err := readCapped(f, maxTokenFileBytes)
	switch {
	case errors.Is(err, ErrResponseTooLarge):
		return nil, s.tooLarge()
	case err != nil:
		return nil, errorf("loopauth: reading the token file: %w", err)
	}
	return data, nil
}

func (s *FileStore) tooLarge() error {
	return errorf("loopauth: token file %q: %w: larger than %d bytes (sign in again to replace it)", s.path, ErrInvalidTokenSet, maxTokenFileBytes)
}

// Save writes ts to the token file atomically (see FileStore), unless the
// file already holds the same bytes. It replaces a missing, different,
// corrupt or group-readable file, and refuses a symbolic link or another
// non-regular file with a *FileModeError. A Save whose ctx is done before
// the rename leaves the old file.
func (s *FileStore) Save(ctx context.Context, ts *TokenSet) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.check(); err != nil {
		return err
	}
	data, err := encodeTokenSet(ts)
	if err != nil {
		return err
	}
	current, err := s.read()
	var modeErr *FileModeError
	switch {
	case err == nil && bytes.Equal(current, data):
		return nil // unchanged: a Token call that refreshed nothing leaves the disk alone
	case errors.As(err, &modeErr) && !modeErr.Mode.IsRegular():
		return err
	}
	return s.write(ctx, data)
}

// write replaces the token file with data: temp file, fsync, rename, fsync
// of the directory (renameio's order; without the first fsync, ext4 and
// others may persist the rename before the data and leave an empty file).
func (s *FileStore) write(ctx context.Context, data []byte) (err error) {
	fail := func(err error) error {
		return errorf("loopauth: saving the token set to %q: %w", s.path, err)
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	// CreateTemp opens with O_EXCL and mode 0600: it never reuses or
	// follows an existing name, so its predictable suffix is harmless.
	f, err := os.CreateTemp(dir, tempPrefix(s.path)+"*")
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if modeBitsApply {
		// 0600 exactly, whatever the umask removed.
		if err := f.Chmod(0o600); err != nil {
			return fail(err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := renameReplace(f.Name(), s.path); err != nil {
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	s.removeTemps(staleTempAge)
	return nil
}

// tempPrefix names Save's temporary files: hidden, and recognisable so
// that removeTemps can find those a crash left behind.
func tempPrefix(path string) string {
	return "." + filepath.Base(path) + ".tmp-"
}

// removeTemps removes this store's temporary files that are at least
// minAge old. They hold tokens too, so Clear removes them all. Errors are
// ignored: this is cleanup, and the next Save or Clear tries again.
func (s *FileStore) removeTemps(minAge time.Duration) {
	dir, prefix := filepath.Dir(s.path), tempPrefix(s.path)
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	defer d.Close()
	for {
		// Batches keep memory bounded in a large directory such as $HOME.
		entries, err := d.ReadDir(256)
		for _, e := range entries {
			suffix, ok := strings.CutPrefix(e.Name(), prefix)
			if !ok || !isDigits(suffix) || !e.Type().IsRegular() {
				continue
			}
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) >= minAge {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
		if err != nil {
			return
		}
	}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Clear removes the token file, and temporary files that a crashed Save
// left next to it. A missing file is not an error. A symbolic link is
// removed, not its target; a directory is refused with a *FileModeError.
func (s *FileStore) Clear(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.check(); err != nil {
		return err
	}
	fi, err := os.Lstat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return errorf("loopauth: clearing the token store: %w", err)
	case fi.Mode()&fs.ModeSymlink == 0 && fi.IsDir():
		// os.Remove would delete an empty directory: not the store's.
		return &FileModeError{Path: s.path, Mode: fi.Mode()}
	default:
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errorf("loopauth: clearing the token store: %w", err)
		}
		// Signing out must survive a crash too.
		if err := syncDir(filepath.Dir(s.path)); err != nil {
			return errorf("loopauth: clearing the token store: %w", err)
		}
	}
	s.removeTemps(0)
	return nil
}

// Lock takes the store's cross-process lock: a file at the token file's
// path plus ".lock", created with O_EXCL and holding this process's PID,
// host name, the time and a random ID. A lock is taken over when it is older than
// 15 minutes, or when its holder ran on this host and its PID is no longer
// a running process (Unix only; elsewhere age alone decides). Lock polls
// every 10 to 200 ms until it holds the lock or ctx is done; it then
// returns an error wrapping ctx.Err(). The returned function releases the
// lock; it removes the lock file only if the file is still this lock, and
// further calls do nothing.
//
// A holder that keeps the lock longer than 15 minutes, for example in a
// browser sign-in with a longer Timeout, may lose it to a waiter.
func (s *FileStore) Lock(ctx context.Context) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	lockPath := s.path + ".lock"
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o700); err != nil {
		return nil, errorf("loopauth: taking the token store lock: %w", err)
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, errorf("loopauth: taking the token store lock: %w", err)
	}
	host, _ := os.Hostname()
	// The ID makes each lock's content unique, so unlock and breakLock can
	// tell this lock from a later one of the same process.
	mine := fmt.Appendf(nil, "pid=%d\nhost=%s\ntime=%s\nid=%x\n",
		os.Getpid(), host, time.Now().UTC().Format(time.RFC3339Nano), id)
	delay := lockPollMin
	retried := false
	for {
		err := createLock(lockPath, mine)
		if err == nil {
			return unlocker(lockPath, mine), nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, errorf("loopauth: taking the token store lock: %w", err)
		}
		retry, err := s.breakLock(lockPath, host)
		if err != nil {
			return nil, err
		}
		// Retry at once after a release or a takeover, but only once
		// between sleeps, so that no filesystem oddity can make this spin.
		if retry && !retried {
			retried = true
			continue
		}
		retried = false
		// Jitter keeps waiters that started together from polling in step.
		t := time.NewTimer(delay/2 + mathrand.N(delay/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errorf("loopauth: waiting for the token store lock %q: %w", lockPath, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, lockPollMax)
	}
}

// createLock creates the lock file with O_EXCL: exactly one creator wins.
func createLock(path string, content []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(content)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(path) // ours: O_EXCL created it
		return errors.Join(werr, cerr)
	}
	return nil
}

func unlocker(lockPath string, mine []byte) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			// If this lock was taken over as stale, the file now belongs
			// to another process: leave it.
			if _, data, err := readLockFile(lockPath); err == nil && bytes.Equal(data, mine) {
				os.Remove(lockPath)
			}
		})
	}
}

// readLockFile reads a lock file without following a symbolic link. The
// FileInfo is the opened file's, not Lstat's: the lock may be replaced in
// between, and its age and content must describe the same file.
func readLockFile(path string) (fs.FileInfo, []byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, &FileModeError{Path: path, Mode: fi.Mode()}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openNoFollow, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, &FileModeError{Path: path, Mode: fi.Mode()}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxLockFileBytes))
	return fi, data, err
}

// breakLock removes the lock file if it is stale, and reports whether the
// caller should try to create it again at once. Two waiters that both find
// a lock stale must not both remove "it": the second removal could delete
// the lock that the first one has just created. So a waiter removes a lock
// only while holding a break marker (created with O_EXCL), and only if the
// lock file it reads again then is the same file with the same content.
func (s *FileStore) breakLock(lockPath, host string) (retry bool, err error) {
	fi, data, err := readLockFile(lockPath)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil // released meanwhile
	}
	if err != nil {
		var modeErr *FileModeError
		if errors.As(err, &modeErr) {
			return false, err
		}
		return false, errorf("loopauth: reading the token store lock: %w", err)
	}
	if !s.lockIsStale(fi, data, host) {
		return false, nil
	}
	marker := lockPath + ".break"
	m, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another waiter is breaking the lock, or crashed doing so.
		if mfi, err := os.Lstat(marker); err == nil && time.Since(mfi.ModTime()) > staleBreakAge {
			os.Remove(marker)
		}
		return false, nil
	}
	if err != nil {
		return false, errorf("loopauth: taking over a stale token store lock: %w", err)
	}
	m.Close()
	defer os.Remove(marker)
	again, dataAgain, err := readLockFile(lockPath)
	if err == nil && os.SameFile(fi, again) && bytes.Equal(data, dataAgain) {
		if err := os.Remove(lockPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, errorf("loopauth: taking over a stale token store lock: %w", err)
		}
	}
	return true, nil
}

// lockIsStale reports whether a lock may be taken over: it is older than
// the stale age (or dated as far in the future, a clock error), or its
// holder ran on this host and is gone.
func (s *FileStore) lockIsStale(fi fs.FileInfo, data []byte, host string) bool {
	staleAge := s.staleAge
	if staleAge <= 0 {
		staleAge = staleLockAge
	}
	if age := time.Since(fi.ModTime()); age > staleAge || age < -staleAge {
		return true
	}
	pid, lockHost, ok := lockHolder(data)
	// A PID means nothing on another host sharing the directory.
	return ok && lockHost == host && processGone(pid)
}

// lockHolder reads the pid and host lines of a lock file. ok is false for
// content this package did not write, or has not written yet (a crash
// between create and write): only age decides then.
func lockHolder(data []byte) (pid int, host string, ok bool) {
	var havePID, haveHost bool
	for _, line := range strings.Split(string(data), "\n") {
		key, val, _ := strings.Cut(line, "=")
		switch key {
		case "pid":
			n, err := strconv.Atoi(val)
			pid, havePID = n, err == nil && n > 0
		case "host":
			host, haveHost = val, true
		}
	}
	return pid, host, havePID && haveHost
}
