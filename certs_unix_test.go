//go:build unix

package loopauth

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

// childGone reports whether process pid has ended: no such process, or
// a zombie that nobody has reaped yet (a container's PID 1 may never reap
// orphans), which runs no more.
func childGone(pid int) bool {
	if p, err := os.FindProcess(pid); err != nil {
		return true
	} else if err := p.Signal(syscall.Signal(0)); err != nil && !errors.Is(err, syscall.EPERM) {
		return true // no such process (EPERM: it exists, as another user's)
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}
