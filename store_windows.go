//go:build windows

package loopauth

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// openNoFollow: Windows has no O_NOFOLLOW; readSame's os.SameFile check
// refuses a file swapped in after Lstat instead.
const openNoFollow = 0

// modeBitsApply: Windows reports synthetic permission bits; the file's ACL,
// inherited from its directory, decides who may read it.
const modeBitsApply = false

// processGone cannot tell here: the lock's age alone decides.
func processGone(int) bool { return false }

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
		var errno syscall.Errno
		if err == nil || !errors.As(err, &errno) ||
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
