//go:build unix

package loopauth

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// openNoFollow: O_NOFOLLOW makes the open fail if a symbolic link was
// swapped in after Lstat, and O_NONBLOCK keeps a FIFO swapped in from
// blocking it. Neither changes how a regular file is read.
const openNoFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// modeBitsApply: Unix permission bits decide who may read the token file.
const modeBitsApply = true

// fileOwner returns the user ID that owns the file. Checks compare it
// with os.Geteuid: the effective user owns everything this process creates.
func fileOwner(fi fs.FileInfo) (uid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// removeLockWhileHeld: unlink works on an open file, so the lock file is
// removed before it is unlocked (see takeLock).
const removeLockWhileHeld = true

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
