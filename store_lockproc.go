//go:build !windows && !(unix && !aix && !(solaris && !illumos))

package loopauth

import (
	"os"
	"sync"
)

// Without flock (AIX, Solaris, and systems that are neither Unix nor
// Windows), the lock excludes only the callers in this process: a set of
// the lock files held, by path.
var (
	procLocksMu sync.Mutex
	procLocks   = map[string]bool{}
)

func tryLockFile(f *os.File) (bool, error) {
	procLocksMu.Lock()
	defer procLocksMu.Unlock()
	if procLocks[f.Name()] {
		return false, nil
	}
	procLocks[f.Name()] = true
	return true, nil
}

func unlockFile(f *os.File) {
	procLocksMu.Lock()
	delete(procLocks, f.Name())
	procLocksMu.Unlock()
}
