//go:build !unix

package loopauth

// childGone is not needed where the fake-mkcert tests skip (they need a
// POSIX sh); it reports every process gone.
func childGone(int) bool { return true }
