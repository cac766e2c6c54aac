//go:build !unix && !windows

package loopauth

import "os"

// On other systems (js, wasip1, plan9) the store works without the Unix
// protections: no O_NOFOLLOW (readSame's os.SameFile check remains), no
// permission check, no PID check (the lock's age decides), no directory
// sync.
const (
	openNoFollow  = 0
	modeBitsApply = false
)

func processGone(int) bool { return false }

func renameReplace(from, to string) error { return os.Rename(from, to) }

func syncDir(string) error { return nil }
