package loopauth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// openerWaitDelay bounds how long the opener waits for the launcher's
// output pipes after it exits or is killed (a launched browser can inherit
// them).
const openerWaitDelay = 2 * time.Second

// systemBrowserOpener returns the default BrowserOpener, which reports the
// $BROWSER entries it skips, and why, to logger at Debug level (nil: no
// logging).
//
// It first checks that the URL is one this package would build
// (checkOpenableURL: CVE-2025-6514 and its family, where a URL reaching a
// shell, or a launcher that also opens files and other schemes, runs code);
// nothing is started otherwise. Then it tries, in order, the commands of
// $BROWSER (see browserVarCommands: a list separated by ':', or ';' on
// Windows, each split into words like a POSIX shell would but with nothing
// expanded, the URL as one whole argument, never run through a shell),
// then the platform's launcher: rundll32 url.dll,FileProtocolHandler on
// Windows, open on macOS, xdg-open elsewhere, and under WSL the Windows
// browser (rundll32.exe through WSL interop, else xdg-open).
// The first command that starts is the one used: its exit status is the
// result, and no other command is tried, so a URL is never opened twice.
// A command that cannot be started (not installed) passes to the next.
//
// Every command is started directly with the URL as one argument; its
// standard input, output and error are the null device, so nothing the
// launcher or the browser prints reaches the program's output; and it is
// waited for (bounded by ctx, then openerWaitDelay for inherited pipes).
func systemBrowserOpener(logger *slog.Logger) BrowserOpener {
	return func(ctx context.Context, authURL string) error {
		return openBrowser(ctx, authURL, runtime.GOOS, os.Getenv("BROWSER"), hostEnvironment().wsl, logger)
	}
}

// openBrowser is the default opener for a given platform, $BROWSER value
// and WSL or not (see systemBrowserOpener).
func openBrowser(ctx context.Context, authURL, goos, browserVar string, wsl bool, logger *slog.Logger) error {
	if err := checkOpenableURL(authURL); err != nil {
		return err
	}
	cmds := browserVarCommands(goos, browserVar, authURL, func(entry int, why string) {
		if logger != nil {
			logger.Debug("loopauth: skipping an entry of $BROWSER", "entry", entry, "reason", why)
		}
	})
	cmds = append(cmds, platformLaunchers(goos, wsl, authURL)...)
	return runLaunchers(ctx, goos, cmds, logger)
}

// runLaunchers starts each command of cmds in turn (program and arguments,
// the URL already in place) until one starts, then waits for it and returns
// its result. It never uses a shell.
func runLaunchers(ctx context.Context, goos string, cmds [][]string, logger *slog.Logger) error {
	var failed []string
	for _, argv := range cmds {
		if err := ctx.Err(); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		// Launchers and the browsers they start chatter on stdout and
		// stderr; none of it belongs in the program's output. Nil means
		// the null device.
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
		cmd.WaitDelay = openerWaitDelay
		if goos == "windows" && cmd.Err == nil && isBatchFile(cmd.Path) {
			// CreateProcess runs a .bat or .cmd through cmd.exe, which would
			// parse the URL's & | ^ (the "BatBadBut" family).
			failed = append(failed, argv[0]+": a batch file would run through cmd.exe")
			continue
		}
		if err := cmd.Start(); err != nil {
			if logger != nil {
				logger.Debug("loopauth: could not start a browser launcher", "command", argv[0], "error", err)
			}
			failed = append(failed, err.Error())
			continue
		}
		if err := cmd.Wait(); err != nil {
			return errorf("running %s: %w", argv[0], err)
		}
		return nil
	}
	return errorf("no browser launcher could be started (%s)", strings.Join(failed, "; "))
}

// isBatchFile reports whether a Windows program path is a batch file.
func isBatchFile(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".bat" || ext == ".cmd"
}

// platformLaunchers returns the platform's URL launchers for goos, in the
// order to try them. On Windows rundll32's FileProtocolHandler takes the
// URL as one argument; "cmd /c start" would reparse & | ^ < > and truncate
// or inject. Under WSL the Windows browser can reach the WSL loopback
// (localhost forwarding), so it is preferred: rundll32.exe through WSL
// interop, found on PATH or at the default mount point, which passes the
// URL as one argument with no cmd.exe in between. wslview is not used: it
// pastes the URL into a PowerShell -Command string (its default engine) or
// a cmd.exe /c line, which is the shell reparsing this opener exists to
// avoid. xdg-open comes last (WSLg, or no interop).
func platformLaunchers(goos string, wsl bool, authURL string) [][]string {
	switch {
	case goos == "windows":
		return [][]string{{"rundll32", "url.dll,FileProtocolHandler", authURL}}
	case goos == "darwin" || goos == "ios":
		return [][]string{{"open", authURL}}
	case wsl:
		return [][]string{
			{"rundll32.exe", "url.dll,FileProtocolHandler", authURL},
			{"/mnt/c/Windows/System32/rundll32.exe", "url.dll,FileProtocolHandler", authURL},
			{"xdg-open", authURL},
		}
	default:
		return [][]string{{"xdg-open", authURL}}
	}
}

// browserVarCommands turns the value of $BROWSER into commands, following
// the convention gh, git and Python's webbrowser share:
//
//   - entries are separated by ':' (';' on Windows, like PATH, so that
//     C:\ paths work); they are tried in order;
//   - each entry is split into words as a POSIX shell splits them (blanks
//     separate words; single quotes, double quotes and backslash escapes
//     work as in sh), but nothing is expanded or interpreted: $VAR, `cmd`,
//     ~, *, ;, | and & are plain characters, and no shell ever runs;
//   - a word that is exactly %s becomes the URL, as one argument, and so
//     does %s as the whole value of an option word (--app=%s). When no word
//     has %s, the URL is appended as the last argument. %% is a literal %.
//
// Unlike git and Python, %s is not replaced in the middle of other text: in
// sh -c 'firefox %s' the URL would become shell code, and a URL this
// package opens may legally contain ; & ( ) (an authorization endpoint's
// path and query come from the provider). Such an entry is skipped; write
// sh -c 'firefox "$1"' sh %s instead. An entry is also skipped when it is
// empty or blank, has unbalanced quotes, a trailing backslash or an empty
// word (empty quotes), or when its command word contains %s. skip is told the
// 1-based entry number and why, never the URL.
func browserVarCommands(goos, value, authURL string, skip func(entry int, why string)) [][]string {
	if value == "" {
		return nil
	}
	sep := ":"
	if goos == "windows" {
		sep = ";"
	}
	var cmds [][]string
	for i, entry := range strings.Split(value, sep) {
		words, err := splitShellWords(entry)
		if err == nil {
			words, err = placeURL(words, authURL)
		}
		if err != nil {
			skip(i+1, err.Error())
			continue
		}
		cmds = append(cmds, words)
	}
	return cmds
}

// splitShellWords splits s into words as a POSIX shell does, with quote
// removal but no expansion of any kind.
func splitShellWords(s string) ([]string, error) {
	var (
		words  []string
		word   strings.Builder
		inWord bool // a word has started, possibly with empty quotes
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t', '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
			continue
		case '\\':
			i++
			if i == len(s) {
				return nil, errors.New("it ends with a backslash")
			}
			if s[i] != '\n' { // backslash-newline is a line continuation
				word.WriteByte(s[i])
				inWord = true
			}
			continue
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("a single quote is not closed")
			}
			word.WriteString(s[i+1 : i+1+end])
			i += 1 + end
		case '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				// Inside double quotes a backslash escapes only $ ` " \ and
				// newline; elsewhere it is itself.
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				word.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errors.New("a double quote is not closed")
			}
		default:
			word.WriteByte(c)
		}
		inWord = true
	}
	if inWord {
		words = append(words, word.String())
	}
	if len(words) == 0 {
		return nil, errors.New("it is empty")
	}
	for _, w := range words {
		if w == "" {
			return nil, errors.New("it has an empty word")
		}
	}
	return words, nil
}

// placeURL puts authURL into words as browserVarCommands describes.
func placeURL(words []string, authURL string) ([]string, error) {
	out := make([]string, 0, len(words)+1)
	placed := false
	for i, w := range words {
		var b strings.Builder
		urls, at := 0, 0
		for j := 0; j < len(w); j++ {
			if w[j] == '%' && j+1 < len(w) && (w[j+1] == 's' || w[j+1] == '%') {
				j++
				if w[j] == '%' {
					b.WriteByte('%')
					continue
				}
				urls++
				at = b.Len()
				b.WriteString(authURL)
				continue
			}
			b.WriteByte(w[j])
		}
		if urls > 0 {
			prefix := b.String()[:at]
			option := strings.HasPrefix(prefix, "-") && strings.HasSuffix(prefix, "=")
			switch {
			case i == 0:
				return nil, errors.New("its command contains %s")
			case urls > 1 || b.Len() != at+len(authURL) || prefix != "" && !option:
				return nil, errors.New("%s is inside other text; it must be a whole word or an option's value (--name=%s)")
			}
			placed = true
		}
		out = append(out, b.String())
	}
	if !placed {
		out = append(out, authURL)
	}
	return out, nil
}

// environment says whether a browser started here can reach the user. See
// whereAmI.
type environment struct {
	// headless is true when a browser opened here would most likely not
	// reach the user: the sign-in should print the URL and the ways in
	// (tunnel, paste-back) instead of trusting that a window appeared.
	headless bool
	// wsl is true under the Windows Subsystem for Linux (outside a
	// container): the opener then starts the Windows browser.
	wsl bool
	// reason is a short phrase saying why, for messages and logs, such as
	// "SSH session (SSH_CONNECTION is set)" or "no display (DISPLAY and
	// WAYLAND_DISPLAY are unset)". It holds no secret.
	reason string
}

// hostEnvironment is whereAmI for this process.
func hostEnvironment() environment {
	return whereAmI(runtime.GOOS, os.Getenv, fileExists, readSmallFile)
}

// whereAmI decides whether opening a browser here can reach the user. It
// only reads what it is given, so tests can describe any machine: goos is
// runtime.GOOS, getenv is os.Getenv (an empty value counts as unset),
// exists reports whether a file exists and readFile reads one (only
// /proc/sys/kernel/osrelease). hostEnvironment calls it for this process.
// The first rule that matches decides:
//
//  1. $BROWSER names a graphical command (an entry that parses, whose
//     program is not a text browser such as lynx or w3m): not headless.
//     The user said how URLs reach them; VS Code Remote, Codespaces and
//     dev containers set it to a helper that opens the URL on the user's
//     own machine and forwards the loopback port.
//  2. SSH_CONNECTION, SSH_CLIENT or SSH_TTY is set: headless, even with
//     DISPLAY set (gh, gcloud and az do the same). Over ssh -X a browser
//     started here would show on the user's screen and reach this
//     loopback, but DISPLAY can as well be this machine's own screen, which
//     nobody is looking at (a tmux session started at the console), and
//     the two cannot be told apart. Guessing "opened" wrongly leaves the
//     user waiting for nothing until the timeout; the headless text works
//     in both cases. The builder's override is there for ssh -X users.
//  3. A container (/.dockerenv or /run/.containerenv exists) with neither
//     DISPLAY nor WAYLAND_DISPLAY: headless. A container with a display
//     (toolbox and distrobox share the host's display and network) is
//     treated as the desktop it is.
//  4. WSL (WSL_DISTRO_NAME or WSL_INTEROP set, or "microsoft" in the
//     kernel release): not headless, whatever DISPLAY says; the Windows
//     browser reaches WSL's loopback. Checked after the container rule: a
//     Docker Desktop container runs on WSL's kernel but has no interop.
//  5. Linux, the BSDs, Solaris, illumos and AIX with neither DISPLAY nor
//     WAYLAND_DISPLAY: headless. macOS, Windows, Android and the rest are
//     never headless for want of DISPLAY.
//  6. Otherwise: not headless ("desktop").
func whereAmI(goos string, getenv func(string) string, exists func(string) bool, readFile func(string) ([]byte, error)) environment {
	display := getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != ""
	container := goos == "linux" && (exists("/.dockerenv") || exists("/run/.containerenv"))
	env := environment{wsl: goos == "linux" && !container && isWSL(getenv, readFile)}
	ssh := ""
	for _, v := range []string{"SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"} {
		if getenv(v) != "" {
			ssh = v
			break
		}
	}
	switch {
	case graphicalBrowserVar(goos, getenv("BROWSER")):
		env.reason = "$BROWSER is set"
	case ssh != "":
		env.headless, env.reason = true, "SSH session ("+ssh+" is set)"
	case container && !display:
		env.headless, env.reason = true, "container without a display"
	case env.wsl:
		env.reason = "WSL: the Windows browser is used"
	case !display && usesX11(goos):
		env.headless, env.reason = true, "no display (DISPLAY and WAYLAND_DISPLAY are unset)"
	default:
		env.reason = "desktop"
	}
	return env
}

// isWSL reports the signs of the Windows Subsystem for Linux: its
// variables (lost through sudo), else the kernel release (WSL 1 says
// "Microsoft", WSL 2 "microsoft-standard-WSL2").
func isWSL(getenv func(string) string, readFile func(string) ([]byte, error)) bool {
	if getenv("WSL_DISTRO_NAME") != "" || getenv("WSL_INTEROP") != "" {
		return true
	}
	release, err := readFile("/proc/sys/kernel/osrelease")
	return err == nil && strings.Contains(strings.ToLower(string(release)), "microsoft")
}

// usesX11 reports whether goos shows windows through X11 or Wayland, so
// that a missing DISPLAY and WAYLAND_DISPLAY means no screen.
func usesX11(goos string) bool {
	switch goos {
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly", "solaris", "illumos", "aix":
		return true
	}
	return false
}

// graphicalBrowserVar reports whether $BROWSER has an entry that parses
// and does not start a text browser (gcloud's list, and a few more), which
// could not show anything with the null device as its terminal.
func graphicalBrowserVar(goos, value string) bool {
	for _, argv := range browserVarCommands(goos, value, "https://x.invalid/", func(int, string) {}) {
		name := strings.TrimSuffix(strings.ToLower(filepath.Base(argv[0])), ".exe")
		switch name {
		case "www-browser", "lynx", "links", "links2", "elinks", "w3m", "browsh":
		default:
			return true
		}
	}
	return false
}

// fileExists reports whether name exists.
func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// readSmallFile reads at most 4 KiB of name (a /proc file).
func readSmallFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCapped(f, 4<<10)
}

// checkOpenableURL accepts only absolute https URLs, or http to a loopback
// IP, with no user information and nothing outside printable ASCII: the
// only URLs this package builds. Launchers also open files and arbitrary
// schemes, and an argument starting with "-" is an option to them. A $ is
// refused too: some launchers hand the URL to a shell or PowerShell after
// all (wslview, which xdg-open may call under WSL; a user's $BROWSER
// script), where $(...) runs code, and net/url escapes it in every value
// this package adds (an endpoint can write it %24).
func checkOpenableURL(raw string) error {
	if len(raw) > maxAuthURLBytes {
		return errorf("%w: longer than %d bytes", ErrUnsafeURL, maxAuthURLBytes)
	}
	if !isVSCHAR(raw) || strings.ContainsAny(raw, " \"'`\\<>^{}|$") {
		return errorf("%w: it contains spaces, quotes, $, control or non-ASCII characters", ErrUnsafeURL)
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
		if isLoopbackIP(u.Hostname()) {
			return nil
		}
		return errorf("%w: http is only opened for loopback addresses", ErrUnsafeURL)
	}
	return errorf("%w: scheme %q is not http or https", ErrUnsafeURL, u.Scheme)
}

// ProgressKind says which step of a sign-in a ProgressEvent reports, in
// the order they happen.
type ProgressKind int

// The steps of a sign-in. Not every flow has each: a flow opens a browser
// or goes headless, and takes a callback or a paste.
const (
	// ProgressServerReady: the loopback server listens on Port, and the
	// flow waits until Deadline.
	ProgressServerReady ProgressKind = iota + 1
	// ProgressURLReady: URL and ShortURL are known.
	ProgressURLReady
	// ProgressBrowserOpened: the browser opener returned without error.
	ProgressBrowserOpened
	// ProgressBrowserFailed: the opener failed; Err says why. The user
	// must open ShortURL themselves, as when headless.
	ProgressBrowserFailed
	// ProgressHeadless: no browser is opened here; Reason says why.
	ProgressHeadless
	// ProgressCallbackReceived: the browser brought back the answer.
	ProgressCallbackReceived
	// ProgressPasteReceived: the user pasted the answer.
	ProgressPasteReceived
	// ProgressExchanging: the code is being exchanged for tokens.
	ProgressExchanging
	// ProgressVerifying: the ID token is being verified (OpenID mode).
	ProgressVerifying
	// ProgressDone: the flow has ended; Err is its error, nil on success.
	ProgressDone
)

// ProgressEvent is one step of a sign-in, for OnProgress. Every event
// carries what is known by then; none carries a code or a token.
type ProgressEvent struct {
	Kind     ProgressKind
	Port     int       // the loopback server's port
	Deadline time.Time // when the flow stops waiting for the browser
	// URL is the authorization URL, and ShortURL the loopback server's
	// root, http://127.0.0.1:PORT/, which redirects to it: short enough
	// to type on another device.
	URL, ShortURL string
	Reason        string // ProgressHeadless: why no browser is opened here
	Paste         bool   // paste-back is reading (see PasteFrom)
	Err           error  // ProgressBrowserFailed and ProgressDone
}

// ProgressPrinter returns the OnProgress function a client uses when none
// is set, writing to w: after a browser was opened, one line with the
// short URL (a launcher can succeed and show nothing); when none was or
// could be, how to sign in from elsewhere: the short URL, the full URL,
// the SSH tunnel command with the real port, how to paste the address
// back, and how long the flow waits. Everything else it ignores.
func ProgressPrinter(w io.Writer) func(ProgressEvent) {
	return func(e ProgressEvent) { printProgress(w, e, time.Now()) }
}

// printProgress is ProgressPrinter's body, with the clock given for tests.
// URLs come from net/url but go to a terminal, so they are sanitized.
func printProgress(w io.Writer, e ProgressEvent, now time.Time) {
	short := sanitizeText(e.ShortURL, 64)
	switch e.Kind {
	case ProgressBrowserOpened:
		fmt.Fprintf(w, "Opened your browser. If nothing appeared, open: %s\n", short)
		return
	case ProgressBrowserFailed:
		fmt.Fprintf(w, "Could not open a browser (%s).\n", sanitizeText(e.Err.Error(), 200))
	case ProgressHeadless:
		fmt.Fprintf(w, "Not opening a browser here: %s.\n", sanitizeText(e.Reason, 200))
	default:
		return
	}
	fmt.Fprintf(w, "To sign in, open this address in a browser:\n\n    %s\n\nIt forwards to the sign-in page:\n    %s\n\n", short, sanitizeText(e.URL, maxAuthURLBytes*2))
	fmt.Fprintf(w, "If that browser runs on another machine, first forward port %d from there (HOST: this machine, as you reach it with ssh):\n    ssh -L %d:127.0.0.1:%d HOST\n", e.Port, e.Port, e.Port)
	if e.Paste {
		fmt.Fprintf(w, "Without a tunnel, sign in anyway: the browser then fails to load a 127.0.0.1 address. Paste that whole address here and press Enter.\n")
	}
	fmt.Fprintf(w, "\nWaiting for the sign-in (gives up in %v)...\n", e.Deadline.Sub(now).Round(time.Second))
}

// maxPasteBytes bounds one pasted line: the callback's query and the
// address in front of it.
const maxPasteBytes = maxCallbackQueryBytes + 1024

// readPastes reads lines from r and offers each to the server (see
// PasteFrom) until one is taken or r ends. Each refusal gets one line on
// w, which never quotes the input.
func readPastes(r io.Reader, w io.Writer, srv *callbackServer) {
	br := bufio.NewReaderSize(r, maxPasteBytes)
	for {
		line, err := br.ReadSlice('\n')
		tooLong := err == bufio.ErrBufferFull
		for err == bufio.ErrBufferFull {
			_, err = br.ReadSlice('\n')
		}
		if err != nil && (len(line) == 0 || tooLong) {
			return // the end of r (Ctrl-D) leaves the server waiting
		}
		why := "it is too long"
		if !tooLong {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			if why = srv.paste(string(line)); why == "" {
				return
			}
		}
		fmt.Fprintf(w, "That address cannot finish this sign-in: %s.\n", why)
	}
}

// startPastes runs readPastes in its own goroutine and returns what stops
// it (see PasteFrom): closing r when the flow owns it, else a read
// deadline in the past when r has one. The stop waits for the goroutine
// only when one of these will end its Read.
func startPastes(r io.Reader, owned bool, w io.Writer, srv *callbackServer) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		readPastes(r, w, srv)
	}()
	return func() {
		d, hasDeadline := r.(interface{ SetReadDeadline(time.Time) error })
		switch {
		case owned:
			r.(io.Closer).Close()
		case hasDeadline && d.SetReadDeadline(time.Unix(1, 0)) == nil:
			defer d.SetReadDeadline(time.Time{})
		default:
			return
		}
		<-done
	}
}
