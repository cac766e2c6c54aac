package loopauth

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// openerWaitDelay bounds how long the opener waits for the launcher's
// output pipes after it exits or is killed (a launched browser can inherit
// them).
const openerWaitDelay = 2 * time.Second

// openSystemBrowser is the default BrowserOpener: it starts the platform's
// URL launcher directly, never through a shell, with the URL as a single
// argument, after checking that the URL is one this package would build
// (CVE-2025-6514 and its family: a URL that reaches a shell or a launcher
// that accepts files or other schemes runs code). $BROWSER is ignored: it
// is a shell-interpreted template on some systems.
func openSystemBrowser(ctx context.Context, authURL string) error {
	if err := checkOpenableURL(authURL); err != nil {
		return err
	}
	name, args := browserCommand(runtime.GOOS, authURL)
	cmd := exec.CommandContext(ctx, name, args...)
	// Launchers and the browsers they start chatter on stdout and stderr;
	// none of it belongs in the program's output. Nil means /dev/null.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	cmd.WaitDelay = openerWaitDelay
	if err := cmd.Run(); err != nil {
		return errorf("running %s: %w", name, err)
	}
	return nil
}

// browserCommand returns the launcher for goos. On Windows rundll32's
// FileProtocolHandler takes the URL as one argument; "cmd /c start" would
// reparse & | ^ < > and truncate or inject.
func browserCommand(goos, authURL string) (string, []string) {
	switch goos {
	case "windows":
		return "rundll32", []string{"url.dll,FileProtocolHandler", authURL}
	case "darwin", "ios":
		return "open", []string{authURL}
	default:
		return "xdg-open", []string{authURL}
	}
}

// checkOpenableURL accepts only absolute https URLs, or http to a loopback
// IP, with no user information and nothing outside printable ASCII: the
// only URLs this package builds. Launchers also open files and arbitrary
// schemes, and an argument starting with "-" is an option to them.
func checkOpenableURL(raw string) error {
	if len(raw) > maxAuthURLBytes {
		return errorf("%w: longer than %d bytes", ErrUnsafeURL, maxAuthURLBytes)
	}
	if !isVSCHAR(raw) || strings.ContainsAny(raw, " \"'`\\<>^{}|") {
		return errorf("%w: it contains spaces, quotes, control or non-ASCII characters", ErrUnsafeURL)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return errorf("%w: not an absolute URL with a host", ErrUnsafeURL)
	}
	if u.User != nil {
		return errorf("%w: it carries user information", ErrUnsafeURL)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
			return nil
		}
		return errorf("%w: http is only opened for loopback addresses", ErrUnsafeURL)
	}
	return errorf("%w: scheme %q is not http or https", ErrUnsafeURL, u.Scheme)
}

// printAuthURL tells the user to open the URL themselves. The URL was
// serialized by net/url, but it is sanitized again because it goes to a
// terminal.
func printAuthURL(w io.Writer, authURL string, reason error) {
	if reason != nil {
		fmt.Fprintf(w, "Could not open a browser (%s).\n", sanitizeText(reason.Error(), 200))
	}
	fmt.Fprintf(w, "Open this URL in your browser to sign in:\n\n    %s\n\nWaiting for the browser to return...\n", sanitizeText(authURL, maxAuthURLBytes*2))
}
