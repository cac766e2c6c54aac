//go:build windows

package loopauth

import (
	"io/fs"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// openNoFollow: Windows has no O_NOFOLLOW; readSame's os.SameFile check
// refuses a file swapped in after Lstat instead.
const openNoFollow = 0

// modeBitsApply: Windows reports synthetic permission bits; the file's ACL,
// inherited from its directory, decides who may read it.
const modeBitsApply = false

// fileOwner: owners are not checked on Windows (see modeBitsApply).
func fileOwner(fs.FileInfo) (int, bool) { return 0, false }

// removeLockWhileHeld: the lock file stays. Go opens files without
// FILE_SHARE_DELETE, so it could only be removed once no one has it open,
// and a removal racing a waiter's open is not worth the risk.
const removeLockWhileHeld = false

// LockFileEx and UnlockFileEx, which syscall does not wrap. kernel32 is
// loaded in every process; NewLazyDLL only records the names.
var (
	procLockFileEx   = syscall.NewLazyDLL("kernel32.dll").NewProc("LockFileEx")
	procUnlockFileEx = syscall.NewLazyDLL("kernel32.dll").NewProc("UnlockFileEx")
)

const (
	lockfileFailImmediately = 0x1
	lockfileExclusiveLock   = 0x2
	// errLockViolation is ERROR_LOCK_VIOLATION: another handle holds it.
	errLockViolation syscall.Errno = 33
)

// tryLockFile takes an exclusive lock on f's first byte without waiting,
// and reports whether it got it. The lock belongs to the handle: another
// handle, even in this process, is refused, and Windows releases it when
// the process ends.
func tryLockFile(f *os.File) (bool, error) {
	var ol syscall.Overlapped // offset 0
	r, _, err := procLockFileEx.Call(f.Fd(), lockfileExclusiveLock|lockfileFailImmediately, 0, 1, 0, uintptr(unsafe.Pointer(&ol)))
	switch {
	case r != 0:
		return true, nil
	case err == errLockViolation:
		return false, nil
	}
	return false, err
}

// unlockFile releases f's lock. Closing f would too, but Windows may take
// a while to release the locks of a closed handle.
func unlockFile(f *os.File) {
	var ol syscall.Overlapped
	procUnlockFileEx.Call(f.Fd(), 0, 1, 0, uintptr(unsafe.Pointer(&ol)))
}

// errSharingViolation is ERROR_SHARING_VIOLATION, which syscall does not
// export.
const errSharingViolation syscall.Errno = 32

// renameReplace is os.Rename (MoveFileEx with MOVEFILE_REPLACE_EXISTING),
// retried for up to a second while another process has the target open,
// for example a concurrent Load: Go opens files without FILE_SHARE_DELETE,
// so the replace fails until that reader closes it. cmd/go's robustio
// retries the same errors.
func renameReplace(from, to string) error {
	deadline := time.Now().Add(time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := os.Rename(from, to)
		errno, ok := errorAs[syscall.Errno](err)
		if err == nil || !ok ||
			(errno != syscall.ERROR_ACCESS_DENIED && errno != errSharingViolation) ||
			time.Now().After(deadline) {
			return err
		}
		time.Sleep(delay)
	}
}

// syncDir does nothing: os cannot flush a directory on Windows
// (FlushFileBuffers needs a directory handle opened for writing). A crash
// still leaves the old or the new file; only the durability of the last
// rename is not guaranteed.
func syncDir(string) error { return nil }
