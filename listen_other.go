//go:build !windows

package loopauth

import "syscall"

// controlListener keeps Go's socket defaults. On Unix, Go sets
// SO_REUSEADDR, which RFC 8252 Appendix B.5 advises against; it is kept
// because without it a RequirePort flow could not start again until the
// previous flow's connections leave TIME_WAIT (a minute on Linux), while
// another process still cannot bind a port that is listening.
// SO_REUSEPORT, which would let it, is never set.
func controlListener(_, _ string, _ syscall.RawConn) error { return nil }
