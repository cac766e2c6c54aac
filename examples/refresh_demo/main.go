// Refresh_demo shows RefreshIfExpiring keeping an access token fresh. It is
// the Go port of the Rust crate's refresh_demo example and runs offline.
//
//	go run ./examples/refresh_demo
//
// It starts the in-process provider of package loopauthtest with a short
// access-token lifetime, signs in unattended (the provider's own user agent
// plays the browser), then checks the token once per interval, refreshing
// it when it expires within the threshold. It prints the remaining lifetime
// at each check, never a token.
//
// Flags (all optional):
//
//	-iterations n   how many checks to make (default 15)
//	-interval d     time between checks (default 1s)
//	-lifetime d     access-token lifetime the provider announces, in whole
//	                seconds (default 10s)
//	-threshold d    refresh when the token expires within this (default 3s)
//
// Environment variables: none.
//
// Exit status: 0 on success, 1 on failure, 2 on bad flags, 130 when
// cancelled with Ctrl+C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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
	fs := flag.NewFlagSet("refresh_demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	iterations := fs.Int("iterations", 15, "how many checks to make")
	interval := fs.Duration("interval", time.Second, "time between checks")
	lifetime := fs.Duration("lifetime", 10*time.Second, "access-token lifetime (whole seconds)")
	threshold := fs.Duration("threshold", 3*time.Second, "refresh when the token expires within this")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "refresh_demo: unexpected argument %q\n", fs.Arg(0))
	case *iterations < 1:
		fmt.Fprintln(stderr, "refresh_demo: -iterations must be at least 1")
	case *interval <= 0:
		fmt.Fprintln(stderr, "refresh_demo: -interval must be positive")
	case *lifetime < time.Second:
		fmt.Fprintln(stderr, "refresh_demo: -lifetime must be at least 1s (the provider announces whole seconds)")
	case *threshold < 0:
		fmt.Fprintln(stderr, "refresh_demo: -threshold must not be negative")
	default:
		return demo(ctx, *iterations, *interval, *lifetime, *threshold, stdout, stderr)
	}
	return 2
}

func demo(ctx context.Context, iterations int, interval, lifetime, threshold time.Duration, stdout, stderr io.Writer) int {
	lifetime = lifetime.Truncate(time.Second) // expires_in is in seconds
	p, err := loopauthtest.StartProvider(loopauthtest.WithTokenLifetime(lifetime))
	if err != nil {
		return fail(stderr, err)
	}
	defer p.Close()
	fmt.Fprintf(stdout, "Local test provider at %s, access tokens live %v.\n", p.Issuer(), lifetime)

	client, err := loopauth.NewBuilder().
		ClientID("loopauth-refresh-demo").
		AuthURL(p.AuthURL()).
		TokenURL(p.TokenURL()).
		AddScopes(loopauth.ScopeEmail, loopauth.ScopeOfflineAccess).
		BrowserOpener(p.Browser()).
		Build()
	if err != nil {
		return fail(stderr, err)
	}
	ts, err := client.RunAuthorizationFlow(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "Signed in; token expires in %s. Checking every %v, refreshing within %v of expiry.\n",
		ttl(ts), interval, threshold)

	refreshes := 0
	for i := 1; i <= iterations; i++ {
		select {
		case <-ctx.Done():
			return fail(stderr, ctx.Err())
		case <-time.After(interval):
		}
		before := ttl(ts)
		out, err := client.RefreshIfExpiring(ctx, ts, threshold)
		if err != nil {
			return fail(stderr, err)
		}
		if out.Refreshed() {
			refreshes++
			// The provider rotates refresh tokens: keep the new set, the
			// old refresh token is now spent.
			ts = out.TokenSet()
			fmt.Fprintf(stdout, "[%2d/%d] expires in %-6s refreshed, now expires in %s\n", i, iterations, before, ttl(ts))
		} else {
			fmt.Fprintf(stdout, "[%2d/%d] expires in %-6s not needed\n", i, iterations, before)
		}
	}
	fmt.Fprintf(stdout, "Done: %d refresh(es) in %d checks.\n", refreshes, iterations)
	return 0
}

// ttl is the token's remaining lifetime, to a tenth of a second.
func ttl(ts *loopauth.TokenSet) string {
	if ts.ExpiresAt().IsZero() {
		return "unknown"
	}
	return time.Until(ts.ExpiresAt()).Round(100 * time.Millisecond).String()
}

// fail reports err and returns the exit status: 130 when the user
// cancelled, 1 otherwise. loopauth errors never contain a secret.
func fail(stderr io.Writer, err error) int {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "refresh_demo: cancelled")
		return 130
	}
	fmt.Fprintf(stderr, "refresh_demo: %v\n", err)
	return 1
}
