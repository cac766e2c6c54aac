// Demo signs in to a local test provider and refreshes the tokens once:
// the whole loopauth flow on one machine, with no account to register.
//
//	go run ./examples/demo        # approve the sign-in in your browser
//	go run ./examples/demo -auto  # unattended, for CI
//
// It starts the in-process provider of package loopauthtest on
// 127.0.0.1, opens your browser at its consent page, receives the redirect
// on a loopback port, exchanges the code, and prints what it got. It never
// prints a token: only facts about it (scopes, expiry, lengths).
//
// Flags (all optional):
//
//	-auto         complete the sign-in without a browser: the test provider's
//	              own user agent clicks Approve (default false)
//	-timeout d    how long to wait for the browser to come back (default 5m)
//
// Environment variables: none.
//
// Without a browser on the machine, the URL to open is printed to standard
// error and the demo keeps waiting. Ctrl+C cancels.
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
	"time"

	"github.com/loopauth/loopauth"
	"github.com/loopauth/loopauth/loopauthtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
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

	p, err := loopauthtest.StartProvider(loopauthtest.WithConsentPage())
	if err != nil {
		return fail(stderr, err)
	}
	defer p.Close()
	fmt.Fprintf(stdout, "Starting a local test provider at %s\n", p.Issuer())

	b := loopauth.NewBuilder().
		ClientID("loopauth-demo").
		AuthURL(p.AuthURL()).
		TokenURL(p.TokenURL()).
		AddScopes(loopauth.ScopeEmail, loopauth.ScopeOfflineAccess).
		Stderr(stderr).
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
	fmt.Fprintln(stdout, "\nSigned in.")
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
	return 0
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
