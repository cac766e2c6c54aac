package loopauth

import (
	"os"
	"syscall"
	"unsafe"
)

// openPasteTerminal opens the controlling terminal for paste-back when
// standard input is that terminal and this process is in its foreground,
// or returns nil. A read from the terminal by a background job would stop
// the process (SIGTTIN). A new open of /dev/tty is a file of its own,
// non-blocking and in Go's poller, so closing it ends a pending Read,
// without changing the flags of the standard input the shell shares.
func openPasteTerminal() *os.File {
	var pgrp int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgrp)))
	if errno != 0 || int(pgrp) != syscall.Getpgrp() {
		return nil
	}
	f, err := os.OpenFile("/dev/tty", os.O_RDONLY, 0)
	if err != nil {
		return nil
	}
	return f
}
