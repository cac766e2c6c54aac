//go:build !unix && !windows

package loopauth

import (
	"io/fs"
	"os"
)

// On other systems (js, wasip1, plan9) the store works without the Unix
// protections: no O_NOFOLLOW (readSame's os.SameFile check remains), no
// owner or permission check, no directory sync, and a lock that excludes
// only the callers in this process (store_lockproc.go).
const (
	openNoFollow        = 0
	modeBitsApply       = false
	removeLockWhileHeld = true
)

func fileOwner(fs.FileInfo) (int, bool) { return 0, false }

func renameReplace(from, to string) error { return os.Rename(from, to) }

func syncDir(string) error { return nil }
