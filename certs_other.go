//go:build !unix

package loopauth

import "os/exec"

// killGroupAtDeadline leaves exec.CommandContext's default in place: the
// deadline kills mkcert itself (TerminateProcess on Windows), not the
// processes it started. Killing those too needs a job object, which the
// standard library does not offer; mkcert starts none when generating a
// certificate, and WaitDelay keeps a leftover that holds the output pipes
// from blocking the return.
func killGroupAtDeadline(*exec.Cmd) {}

// killProcessGroup has nothing to kill beyond the process itself, which
// Wait has already reaped.
func killProcessGroup(*exec.Cmd) error { return nil }
