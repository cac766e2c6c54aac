package loopauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
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
// processes from spending the same refresh token (a provider that detects
// reuse revokes the whole grant).
//
// An implementation must never take the lock from a holder that is alive,
// however long it holds it: Token holds it through a whole browser
// sign-in. Locks of the operating system, which end with their process,
// keep that promise without guessing from PIDs or ages.
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

	// Waiting for a lock polls from lockPollMin, doubling up to
	// lockPollMax: a short refresh is picked up quickly, and a process
	// waiting for someone else's browser sign-in costs five wake-ups a
	// second.
	lockPollMin = 10 * time.Millisecond
	lockPollMax = 200 * time.Millisecond

	// staleTempAge: a temporary file this old was left by a Save that
	// crashed before its rename; younger ones may belong to a Save in
	// flight in another process.
	staleTempAge = 10 * time.Minute
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
	return m.set(ctx, data)
}

// Clear forgets the saved token set.
func (m *MemoryStore) Clear(ctx context.Context) error { return m.set(ctx, nil) }

// set stores data (nil: nothing) unless ctx is done.
func (m *MemoryStore) set(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	m.data = data
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
// created with mode 0700 when missing. Rename is atomic on local
// filesystems; network filesystems may not keep that promise.
//
// FileStore never follows a symbolic link at the file's path: Load and Save
// refuse one, and anything else that is not a regular file, with a
// *FileModeError; Clear removes the link, not its target.
//
// On Unix, whoever can write to the directory can put their own token file
// in its place, and the program would then act as their account. So Load,
// Save, Lock and Clear refuse, with a *FileModeError that says how to fix
// it, a directory that its group or other users may write to (the sticky
// bit of /tmp does not help: another user can create the file first), or
// that belongs to a user other than the current one or root. Load also refuses a token
// file that belongs to another user, or that its group or other users may
// read or write, because the tokens may have leaked or been planted and
// only the user can tell: the error says to run chmod 600, or to sign in
// again. Save replaces such a file with a fresh 0600 one of its own. Only
// the directory that holds the file is checked, not its parents.
//
// On Windows, access is governed by the ACL the file and the directory
// inherit, such as the user's profile's; FileStore checks no owner or
// permission there.
//
// Load and Save are safe for concurrent use, also by several processes.
// FileStore implements StoreLocker with a lock file next to the token file
// (see Lock); Clear takes that lock, so that a refresh running in another
// process cannot save tokens back after a sign-out.
type FileStore struct {
	path string
}

// NewFileStore returns a store for the token file at path, for example
// filepath.Join(dir, "myapp", "tokens.json") with dir from
// os.UserConfigDir. Nothing is created until the first Save or Lock.
func NewFileStore(path string) *FileStore {
	return &FileStore{path: path}
}

// FileModeError means the path of a token file or its lock file holds
// something FileStore will not use: a symbolic link (never followed), a
// directory or another non-regular file, or, on Unix, a token file that
// another user owns or that its group or other users may read or write.
// On Unix it also means that the directory holding the token file, then
// Path, belongs to another user or may be written to by others. Error
// says what to do.
type FileModeError struct {
	Path string
	Mode fs.FileMode // type and permission bits found

	problem fileProblem
	uid     int // the owner, for ownerProblem
}

// fileProblem says what is wrong when Mode alone does not.
type fileProblem uint8

const (
	modeProblem  fileProblem = iota // Mode says it
	ownerProblem                    // a token file or directory of another user
	dirWritable                     // the user's own directory, writable by others
	dirShared                       // sticky (as /tmp) or root's, writable by others: chmod is not the fix
)

// Error describes the problem and the fix.
func (e *FileModeError) Error() string {
	isDir := e.Mode.IsDir()
	switch {
	case e.problem == ownerProblem && isDir:
		return fmt.Sprintf("loopauth: the token file's directory %q belongs to another user (uid %d), who could replace the token file: keep the token file in a directory of your own", e.Path, e.uid)
	case e.problem == ownerProblem:
		return fmt.Sprintf("loopauth: token file %q belongs to another user (uid %d), who may have planted it: remove it (clearing the store does) and sign in again", e.Path, e.uid)
	case e.problem == dirWritable:
		return fmt.Sprintf("loopauth: other users may write to the token file's directory %q (mode %v) and could replace the token file: run chmod 700 %q", e.Path, e.Mode, e.Path)
	case e.problem == dirShared:
		return fmt.Sprintf("loopauth: other users may write to the token file's directory %q (mode %v) and could put their own token file there first: keep the token file in a directory of your own, with mode 700", e.Path, e.Mode)
	case e.Mode&fs.ModeSymlink != 0:
		return fmt.Sprintf("loopauth: %q is a symbolic link, which the token store never follows: remove it, or give the store the path of the real file", e.Path)
	case !e.Mode.IsRegular():
		return fmt.Sprintf("loopauth: %q is not a regular file (mode %v): remove it or give the token store another path", e.Path, e.Mode)
	}
	return fmt.Sprintf("loopauth: token file %q may be read or written by other users (mode %v): run chmod 600 %q if no one else could have read it; otherwise clear the store and sign in again", e.Path, e.Mode, e.Path)
}

// checkTokenFile refuses anything but a regular file that belongs to this
// user and that only they may access (where owners and permission bits
// mean that).
func checkTokenFile(path string, fi fs.FileInfo) error {
	m := fi.Mode()
	if !m.IsRegular() {
		return &FileModeError{Path: path, Mode: m}
	}
	if !modeBitsApply {
		return nil
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Geteuid() {
		return &FileModeError{Path: path, Mode: m, problem: ownerProblem, uid: uid}
	}
	if m.Perm()&0o077 != 0 {
		return &FileModeError{Path: path, Mode: m}
	}
	return nil
}

// checkStoreDir refuses a directory that another user owns (root excepted) or
// that its group or others may write to: they could rename the token file
// away and put their own in its place, or create it before this user
// does.
func checkStoreDir(dir string, fi fs.FileInfo) error {
	if !modeBitsApply {
		return nil
	}
	m := fi.Mode()
	uid, ok := fileOwner(fi)
	mine := ok && uid == os.Geteuid()
	switch {
	case ok && !mine && uid != 0:
		return &FileModeError{Path: dir, Mode: m, problem: ownerProblem, uid: uid}
	case m.Perm()&0o022 != 0 && mine && m&fs.ModeSticky == 0:
		return &FileModeError{Path: dir, Mode: m, problem: dirWritable}
	case m.Perm()&0o022 != 0: // sticky, as /tmp, or root's: chmod is not the fix
		return &FileModeError{Path: dir, Mode: m, problem: dirShared}
	}
	return nil
}

// ensureDir creates the token file's directory if needed (mode 0700: the
// umask can only remove bits) and checks it.
func (s *FileStore) ensureDir() error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errorf("loopauth: creating the token store's directory: %w", err)
	}
	return s.checkDir()
}

// checkDir checks the token file's directory (following a symbolic link:
// what matters is who may write to the directory the files end up in).
// A missing directory is fs.ErrNotExist, unwrapped.
func (s *FileStore) checkDir() error {
	dir := filepath.Dir(s.path)
	fi, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fs.ErrNotExist
		}
		return errorf("loopauth: checking the token store's directory: %w", err)
	}
	return checkStoreDir(dir, fi)
}

// check refuses a done ctx (with its error, unwrapped) and a FileStore
// without a path.
func (s *FileStore) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s == nil || s.path == "" {
		return errorf("%w: FileStore has no path: create it with NewFileStore", ErrInvalidConfig)
	}
	return nil
}

// Load reads the token file. It returns ErrNoToken when there is none, a
// *FileModeError for a file or directory it refuses (see FileStore), and
// an error wrapping ErrInvalidTokenSet, naming the path but never quoting
// the file, when the content is empty, corrupt or over 1 MiB.
func (s *FileStore) Load(ctx context.Context) (*TokenSet, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := s.checkDir(); err != nil {
		if err == fs.ErrNotExist {
			return nil, ErrNoToken
		}
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
// corrupt or group-readable file, or one of another user, and refuses a
// symbolic link or another non-regular file, and on Unix a directory
// others may write to, with a *FileModeError. A Save whose ctx is done
// before the rename leaves the old file.
func (s *FileStore) Save(ctx context.Context, ts *TokenSet) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	data, err := encodeTokenSet(ts)
	if err != nil {
		return err
	}
	if err := s.ensureDir(); err != nil {
		return err
	}
	current, err := s.read()
	modeErr, isModeErr := errorAs[*FileModeError](err)
	switch {
	case err == nil && bytes.Equal(current, data):
		return nil // unchanged: a Token call that refreshed nothing leaves the disk alone
	case isModeErr && !modeErr.Mode.IsRegular():
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
			if !ok || suffix == "" || strings.Trim(suffix, "0123456789") != "" || !e.Type().IsRegular() {
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

// Clear removes the token file, and temporary files that a crashed Save
// left next to it. A missing file is not an error. A symbolic link is
// removed, not its target; a directory is refused with a *FileModeError,
// and so is, on Unix, a directory others may write to (see FileStore).
//
// Clear holds the store's lock (see Lock) while it removes the file,
// waiting for it until ctx is done: a refresh in another process would
// otherwise save its tokens back after the sign-out. So it must not be
// called while this process holds the lock, for example from an
// OnTokenSetChange hook, which runs under the lock during Token.
func (s *FileStore) Clear(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := s.checkDir(); err != nil {
		if err == fs.ErrNotExist {
			return nil // nothing stored, and no directory to create
		}
		return err
	}
	unlock, err := s.Lock(ctx)
	if err != nil {
		return errorf("loopauth: clearing the token store: %w", err)
	}
	defer unlock()
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

// Lock takes the store's cross-process lock: an exclusive lock of the
// operating system (flock on Unix, LockFileEx on Windows) on a file at the
// token file's path plus ".lock". The kernel releases it when its holder
// exits or crashes, so a held lock is never taken over, whatever PID
// namespace or container either process runs in, and a lock left by a
// crash costs nothing. Lock polls every 10 to 200 ms until it holds the
// lock or ctx is done; it then returns an error wrapping ctx.Err(). The
// returned function releases the lock (on Unix it also removes the lock
// file); further calls do nothing.
//
// On Unix, Lock refuses a directory that another user owns or may write
// to (see FileStore). On a network filesystem the lock is what the
// filesystem makes of flock (NFS maps it to its own locks); one without
// locks makes Lock fail. On AIX and Solaris, which have no flock, and on
// systems that are neither Unix nor Windows, the lock excludes only the
// other callers in this process.
func (s *FileStore) Lock(ctx context.Context) (unlock func(), err error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := s.ensureDir(); err != nil {
		return nil, err
	}
	lockPath := s.path + ".lock"
	delay := lockPollMin
	retried := false
	for {
		f, again, err := takeLock(lockPath)
		if err != nil {
			return nil, err
		}
		if f != nil {
			return unlocker(f, lockPath), nil
		}
		// The holder released it and removed its file just as this one
		// locked it: lock the new file at once, but only once between
		// sleeps, so that no filesystem oddity can make this spin.
		if again && !retried {
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

// takeLock makes one attempt at the lock. It returns the locked file, or
// nil when another holder has it; again reports that the file it locked
// was no longer the one at path.
func takeLock(path string) (f *os.File, again bool, err error) {
	fail := func(err error) (*os.File, bool, error) {
		return nil, false, errorf("loopauth: taking the token store lock: %w", err)
	}
	// Lstat first: a directory or a symbolic link is refused, not waited
	// for; O_NOFOLLOW catches a link swapped in since.
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, false, &FileModeError{Path: path, Mode: fi.Mode()}
	}
	// O_RDWR: NFS emulates flock with fcntl locks, whose exclusive lock
	// needs a file open for writing. Go opens files close-on-exec, so a
	// browser started while the lock is held does not inherit it.
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|openNoFollow, 0o600)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
			return nil, false, &FileModeError{Path: path, Mode: fi.Mode()}
		}
		return fail(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fail(err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, false, &FileModeError{Path: path, Mode: fi.Mode()}
	}
	locked, err := tryLockFile(f)
	if err != nil || !locked {
		f.Close()
		if err != nil {
			return fail(err)
		}
		return nil, false, nil
	}
	// A holder removes the file before it unlocks: a waiter that opened
	// it before the removal now holds a lock on a file no one else will
	// ever open, and must lock the one at path instead.
	if now, err := os.Lstat(path); err != nil || !os.SameFile(fi, now) {
		unlockFile(f)
		f.Close()
		return nil, true, nil
	}
	return f, false, nil
}

// unlocker returns the function that releases a lock taken by takeLock.
func unlocker(f *os.File, path string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			// Remove while still holding it (see takeLock), and only if
			// it is still this file.
			if removeLockWhileHeld {
				fi, err := f.Stat()
				if now, lerr := os.Lstat(path); err == nil && lerr == nil && os.SameFile(fi, now) {
					os.Remove(path)
				}
			}
			unlockFile(f)
			f.Close()
		})
	}
}
