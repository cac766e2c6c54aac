//go:build unix

package loopauth

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// killGroupAtDeadline starts mkcert as the leader of a new process group
// and makes the deadline kill the whole group, so that a hung mkcert
// leaves no child behind (a wrapper script's, or anything it started). A
// child that moved itself to another group or session escapes; mkcert
// never does that. The group is not the terminal's foreground group, so
// Ctrl-C reaches only this process; mkcert runs for a second at most when
// it works, and its stdin is /dev/null, so it never reads the terminal.
func killGroupAtDeadline(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killProcessGroup(cmd) }
}

// killProcessGroup sends SIGKILL to the process group that cmd leads.
// It is called while cmd's process is not yet reaped, or after Wait gave
// up on pipes that a child still holds; either way the group still has a
// member, so its ID cannot have been reused.
func killProcessGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil || cmd.Process.Pid <= 0 {
		return os.ErrProcessDone // the process group ID must be positive: -0 and 1 are not groups
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	return nil
}
