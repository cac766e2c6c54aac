//go:build unix && !aix && !(solaris && !illumos)

package loopauth

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// tryLockFile takes flock(2)'s exclusive lock on f without waiting, and
// reports whether it got it. The lock belongs to the open file: another
// open of the same file, even in this process, is refused until f is
// unlocked or closed, and the kernel releases it when the process ends.
func tryLockFile(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		return false, nil
	}
	// ENOLCK, EOPNOTSUPP: a filesystem without locks; waiting cannot help.
	return false, fmt.Errorf("the filesystem does not support file locks (keep the token file on a local filesystem): %w", err)
}

// unlockFile releases f's lock; closing f would too.
func unlockFile(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
