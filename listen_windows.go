package loopauth

import "syscall"

// soExclusiveAddrUse is Winsock's SO_EXCLUSIVEADDRUSE (~SO_REUSEADDR).
const soExclusiveAddrUse = ^4

// controlListener sets SO_EXCLUSIVEADDRUSE (RFC 8252 Appendix B.3): without
// it another process can bind the same port with SO_REUSEADDR and receive
// the authorization code.
func controlListener(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, soExclusiveAddrUse, 1)
	}); err != nil {
		return err
	}
	return serr
}
