// Demo signs in to a local OpenID Connect test provider and refreshes the
// tokens once: the whole loopauth flow on one machine, with no account to
// register.
//
//	go run ./examples/demo        # approve the sign-in in your browser
//	go run ./examples/demo -auto  # unattended, for CI
//
// It starts the in-process provider of package loopauthtest on 127.0.0.1
// (with a consent page, a named user and RFC 9207 iss parameters), reads
// its discovery document with FetchOpenIDConfiguration, and builds the
// client with FromOpenIDConfiguration and
// WithOpenIDConfigurationJWKSValidator. It then opens your browser at the
// consent page, receives the redirect on a loopback port, exchanges the
// code, verifies the ID token (its signature against the provider's JWKS,
// then its issuer, audience, expiry, nonce and access-token hash) and
// prints who signed in, refreshes once, and logs out (revoking the tokens
// at the provider). It never prints a token: only facts about it.
//
// Flags (all optional):
//
//	-auto         complete the sign-in without a browser: the test provider's
//	              own user agent clicks Approve (default false)
//	-timeout d    how long to wait for the browser to come back (default 5m)
//
// Environment variables: none of its own. Where a browser opened here
// would not reach you (an SSH session, a container, no display; see the
// README), the demo opens none: it prints a short address to open in a
// browser elsewhere and the ssh -L command that forwards its port. Without
// a tunnel, sign in anyway and paste the address the browser ends on into
// the demo's standard input (a terminal or not: "echo URL | demo" works).
// A countdown shows how long it keeps waiting; Ctrl+C cancels.
//
// Exit status: 0 on success, 1 on failure, 2 on bad flags, 130 when
// cancelled.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/loopauth/loopauth"
	"github.com/loopauth/loopauth/loopauthtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	auto := fs.Bool("auto", false, "sign in unattended (the test provider clicks Approve)")
	timeout := fs.Duration("timeout", loopauth.DefaultTimeout, "how long to wait for the browser")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "demo: -timeout must be positive")
		return 2
	}

	p, err := loopauthtest.StartProvider(
		loopauthtest.WithConsentPage(),
		loopauthtest.WithIssParameter(),
		loopauthtest.WithUser(loopauthtest.User{Subject: "ada-1815", Email: "ada@example.com", Name: "Ada Lovelace"}))
	if err != nil {
		return fail(stderr, err)
	}
	defer p.Close()
	fmt.Fprintf(stdout, "Starting a local test provider at %s\n", p.Issuer())

	// Discovery gives the endpoints, the issuer to expect and the JWKS URL.
	cfg, err := loopauth.FetchOpenIDConfiguration(ctx, p.Issuer())
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "Discovered its configuration; signing keys at %s\n", cfg.JWKSURI)

	b := loopauth.FromOpenIDConfiguration(cfg).
		ClientID("loopauth-demo").
		WithOpenIDConfigurationJWKSValidator(cfg).
		AddScopes(loopauth.ScopeEmail, loopauth.ScopeOfflineAccess).
		Stderr(stderr).
		PasteFrom(stdin).
		OnProgress(newStatus(stderr).show).
		Timeout(*timeout)
	if *auto {
		b.BrowserOpener(p.Browser())
		fmt.Fprintln(stdout, "Signing in unattended (-auto)...")
	} else {
		fmt.Fprintln(stdout, "Opening your browser to sign in... (click Approve; Ctrl+C to cancel)")
	}
	client, err := b.Build()
	if err != nil {
		return fail(stderr, err)
	}

	ts, err := client.RunAuthorizationFlow(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	// The flow returns only a verified ID token: these claims can be trusted.
	c := ts.IDToken().Claims()
	fmt.Fprintln(stdout, "\nSigned in.")
	fmt.Fprintf(stdout, "  subject:       %s\n", clean(c.Subject))
	fmt.Fprintf(stdout, "  email:         %s (verified: %s)\n", clean(c.Email), yesNo(c.EmailVerified))
	fmt.Fprintf(stdout, "  name:          %s\n", clean(c.Name))
	fmt.Fprintf(stdout, "  issuer:        %s\n", clean(c.Issuer))
	fmt.Fprintln(stdout, "  ID token:      signature verified against the provider's JWKS")
	printFacts(stdout, ts)

	fmt.Fprintln(stdout, "\nRefreshing once...")
	next, err := client.Refresh(ctx, ts.RefreshToken())
	if err != nil {
		return fail(stderr, err)
	}
	printFacts(stdout, next)
	if next.RefreshToken() != ts.RefreshToken() {
		fmt.Fprintln(stdout, "  rotated:       yes (a new refresh token replaced the old one)")
	} else {
		fmt.Fprintln(stdout, "  rotated:       no (the same refresh token stays valid)")
	}
	// A refreshed ID token is verified like the first one; it must name the
	// same user (OpenID Connect Core §12.2).
	if id := next.IDToken(); id != nil {
		fmt.Fprintf(stdout, "  new ID token:  yes, verified; same subject: %s\n", yesNo(id.Claims().Subject == c.Subject))
	} else {
		fmt.Fprintln(stdout, "  new ID token:  no (the provider sent none)")
	}

	// Logout revokes the refresh token at the provider (RFC 7009; the
	// endpoint came with discovery) and clears the store.
	fmt.Fprintln(stdout, "\nLogging out...")
	store := loopauth.NewMemoryStore()
	if err := store.Save(ctx, next); err != nil {
		return fail(stderr, err)
	}
	if err := client.Logout(ctx, store); err != nil {
		return fail(stderr, err)
	}
	_, live := p.CheckAccessToken(next.AccessToken())
	fmt.Fprintf(stdout, "  revoked at the provider; access token still accepted: %s\n", yesNo(live))
	return 0
}

// status shows the sign-in's progress on stderr: the library's own lines
// (ProgressPrinter: the address to open, or the text for a headless
// machine), then a countdown while the demo waits, rewritten in place on
// a terminal and printed once otherwise, then each step.
type status struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	stop     chan struct{} // closed to end the countdown
	stopped  chan struct{} // closed when it has ended
}

func newStatus(w io.Writer) *status {
	f, ok := w.(*os.File)
	var fi os.FileInfo
	if ok {
		fi, _ = f.Stat()
	}
	return &status{w: w, terminal: fi != nil && fi.Mode()&os.ModeCharDevice != 0}
}

func (s *status) show(e loopauth.ProgressEvent) {
	s.endCountdown()
	s.mu.Lock()
	defer s.mu.Unlock()
	loopauth.ProgressPrinter(s.w)(e)
	switch e.Kind {
	case loopauth.ProgressBrowserOpened, loopauth.ProgressBrowserFailed, loopauth.ProgressHeadless:
		s.countdown(e.Deadline)
	case loopauth.ProgressCallbackReceived:
		fmt.Fprintln(s.w, "The browser is back. Exchanging the code for tokens...")
	case loopauth.ProgressPasteReceived:
		fmt.Fprintln(s.w, "Got the pasted address. Exchanging the code for tokens...")
	case loopauth.ProgressVerifying:
		fmt.Fprintln(s.w, "Verifying the ID token...")
	}
}

// countdown prints "waiting… (times out in 4m59s)": once when w is not a
// terminal, else every second on the same line until endCountdown.
func (s *status) countdown(deadline time.Time) {
	line := func() string {
		return fmt.Sprintf("waiting… (times out in %v)", time.Until(deadline).Round(time.Second))
	}
	if !s.terminal {
		fmt.Fprintln(s.w, line())
		return
	}
	s.stop, s.stopped = make(chan struct{}), make(chan struct{})
	go func(stop, stopped chan struct{}) {
		defer close(stopped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			s.mu.Lock()
			fmt.Fprint(s.w, "\r\x1b[K"+line())
			s.mu.Unlock()
			select {
			case <-stop:
				fmt.Fprint(s.w, "\r\x1b[K") // the next line starts clean
				return
			case <-tick.C:
			}
		}
	}(s.stop, s.stopped)
}

// endCountdown stops the countdown, if one runs, and waits for it.
func (s *status) endCountdown() {
	s.mu.Lock()
	stop, stopped := s.stop, s.stopped
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-stopped
	}
}

// printFacts describes a token set without printing any token.
func printFacts(w io.Writer, ts *loopauth.TokenSet) {
	scopes := make([]string, len(ts.Scopes()))
	for i, s := range ts.Scopes() {
		scopes[i] = string(s)
	}
	expiry := "unknown"
	if exp := ts.ExpiresAt(); !exp.IsZero() {
		expiry = fmt.Sprintf("%s (in %ds)", exp.Format("2006-01-02 15:04:05 MST"), int(time.Until(exp).Round(time.Second).Seconds()))
	}
	if len(scopes) == 0 {
		scopes = []string{"(none)"}
	}
	fmt.Fprintf(w, "  scopes:        %s\n", strings.Join(scopes, " "))
	fmt.Fprintf(w, "  expires:       %s\n", expiry)
	fmt.Fprintf(w, "  refresh token: %s\n", yesNo(ts.RefreshToken() != ""))
	fmt.Fprintf(w, "  token type:    %s\n", ts.TokenType())
	fmt.Fprintf(w, "  access token:  %d characters (not shown)\n", len(ts.AccessToken()))
}

// clean makes provider text safe to print on a terminal: claims are
// verified, but their text is whatever the provider put there.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// fail reports err and returns the exit status: 130 when the user
// cancelled, 1 otherwise. loopauth errors never contain a secret.
func fail(stderr io.Writer, err error) int {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "demo: cancelled")
		return 130
	}
	fmt.Fprintf(stderr, "demo: %v\n", err)
	return 1
}
