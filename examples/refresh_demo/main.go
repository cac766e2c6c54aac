// Refresh_demo shows what a CLI does before each command: Token, which
// uses the stored tokens, refreshes them when they expire soon, or signs
// in, and saves the result. It is the Go port of the Rust crate's
// refresh_demo example and runs offline.
//
//	go run ./examples/refresh_demo
//
// It starts the in-process provider of package loopauthtest with a short
// access-token lifetime and a file token store in a temporary directory
// (or -store), then calls Token once per interval, as successive commands
// would. Each line says what happened: a sign-in (the provider's own user
// agent plays the browser), the stored set used as is, or a refresh whose
// rotated refresh token was saved. It never prints a token.
//
// Flags (all optional):
//
//	-iterations n   how many commands to simulate (default 15)
//	-interval d     time between them (default 1s)
//	-lifetime d     access-token lifetime the provider announces, in whole
//	                seconds (default 10s)
//	-threshold d    refresh when the token expires within this (default 3s)
//	-store path     the token file (default: a file in a new temporary
//	                directory, removed at the end)
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
	"path/filepath"
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
	storePath := fs.String("store", "", "token file (default: in a temporary directory)")
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
		return demo(ctx, *iterations, *interval, *lifetime, *threshold, *storePath, stdout, stderr)
	}
	return 2
}

func demo(ctx context.Context, iterations int, interval, lifetime, threshold time.Duration, storePath string, stdout, stderr io.Writer) int {
	lifetime = lifetime.Truncate(time.Second) // expires_in is in seconds
	p, err := loopauthtest.StartProvider(loopauthtest.WithTokenLifetime(lifetime))
	if err != nil {
		return fail(stderr, err)
	}
	defer p.Close()
	if storePath == "" {
		dir, err := os.MkdirTemp("", "loopauth-refresh-demo-")
		if err != nil {
			return fail(stderr, err)
		}
		defer os.RemoveAll(dir)
		storePath = filepath.Join(dir, "tokens.json")
	}
	store := loopauth.NewFileStore(storePath)
	fmt.Fprintf(stdout, "Local test provider at %s, access tokens live %v; tokens stored in %s.\n", p.Issuer(), lifetime, storePath)

	// The hook counts new token sets: the first is the sign-in, later ones
	// are refreshes. Token itself just returns a usable set.
	changes := 0
	client, err := loopauth.NewBuilder().
		ClientID("loopauth-refresh-demo").
		AuthURL(p.AuthURL()).
		TokenURL(p.TokenURL()).
		AddScopes(loopauth.ScopeEmail, loopauth.ScopeOfflineAccess).
		BrowserOpener(p.Browser()).
		RefreshWithin(threshold).
		OnTokenSetChange(func(*loopauth.TokenSet) { changes++ }).
		Build()
	if err != nil {
		return fail(stderr, err)
	}

	refreshes := 0
	var last *loopauth.TokenSet
	for i := 1; i <= iterations; i++ {
		if i > 1 {
			select {
			case <-ctx.Done():
				return fail(stderr, ctx.Err())
			case <-time.After(interval):
			}
		}
		before := "none"
		if last != nil {
			before = ttl(last)
		}
		changesBefore := changes
		ts, err := client.Token(ctx, store)
		if err != nil {
			return fail(stderr, err)
		}
		what := "stored tokens used as they are"
		switch {
		case changes == changesBefore:
		case changes == 1:
			what = "signed in (browser)"
		default:
			what = "refreshed, rotated refresh token saved"
			refreshes++
		}
		last = ts
		fmt.Fprintf(stdout, "[%2d/%d] previous token expires in %-7s %s; now expires in %s\n", i, iterations, before, what, ttl(ts))
	}
	fmt.Fprintf(stdout, "Done: %d refresh(es) in %d commands.\n", refreshes, iterations)
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
