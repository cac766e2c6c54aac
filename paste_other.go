//go:build !linux

package loopauth

import "os"

// openPasteTerminal reads no terminal by default outside Linux: there a
// pending read of the terminal cannot be ended (macOS's kqueue does not
// poll /dev/tty), so paste-back there takes the reader given to PasteFrom.
func openPasteTerminal() *os.File { return nil }
