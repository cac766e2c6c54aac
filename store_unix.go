//go:build unix

package loopauth

import (
	"errors"
	"math"
	"os"
	"syscall"
)

// openNoFollow: O_NOFOLLOW makes the open fail if a symbolic link was
// swapped in after Lstat, and O_NONBLOCK keeps a FIFO swapped in from
// blocking it. Neither changes how a regular file is read.
const openNoFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// modeBitsApply: Unix permission bits decide who may read the token file.
const modeBitsApply = true

// processGone reports whether no process has this PID. Signal 0 checks
// without sending anything; EPERM means the process exists but belongs to
// another user, so only ESRCH counts as gone.
func processGone(pid int) bool {
	if pid <= 0 || pid > math.MaxInt32 {
		return false // 0 and -1 would address process groups
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// renameReplace is os.Rename: rename(2) replaces the target atomically.
func renameReplace(from, to string) error { return os.Rename(from, to) }

// syncDir makes a rename or removal in dir durable. Filesystems that
// cannot sync a directory say so with EINVAL or ENOTSUP; the rename has
// happened, so that is not a failure.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}
