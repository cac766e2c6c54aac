// Mycli is a CLI that signs in with loopauth, written as its users would
// write one: login, whoami and logout, with the tokens kept in a file
// between runs. cli_process_test.go, at the repository root, runs its
// three commands as separate processes against the loopauthtest command.
//
//	mycli login  [flags]   sign in through the browser (if not signed in)
//	mycli whoami [flags]   print who is signed in; never opens a browser
//	mycli logout [flags]   revoke the tokens at the provider, forget them
//
// Flags, each with an environment variable as its default:
//
//	-issuer URL        $MYCLI_ISSUER: the OpenID provider
//	-client-id ID      $MYCLI_CLIENT_ID, else "mycli"
//	-token-file PATH   $MYCLI_TOKEN_FILE, else mycli/token.json in the
//	                   user's configuration directory
//
// The browser is the system's: $BROWSER when set, else xdg-open, open or
// rundll32. Exit status: 0 on success, 1 on failure, 2 on bad usage, 3
// when whoami finds nobody signed in. No token is ever printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"unicode"

	"github.com/loopauth/loopauth"
)

// exitLoginRequired is whoami's status when nobody is signed in, so that
// a script can tell it from a failure.
const exitLoginRequired = 3

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] != "login" && args[0] != "whoami" && args[0] != "logout" {
		fmt.Fprintln(os.Stderr, "usage: mycli login|whoami|logout [-issuer URL] [-client-id ID] [-token-file PATH]")
		return 2
	}
	command := args[0]
	fs := flag.NewFlagSet("mycli "+command, flag.ContinueOnError)
	issuer := fs.String("issuer", os.Getenv("MYCLI_ISSUER"), "the OpenID provider's issuer `URL`")
	clientID := fs.String("client-id", envOr("MYCLI_CLIENT_ID", "mycli"), "the OAuth client `ID`")
	tokenFile := fs.String("token-file", os.Getenv("MYCLI_TOKEN_FILE"), "where the tokens are kept (`PATH`)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *issuer == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "mycli: give -issuer (or $MYCLI_ISSUER), and no arguments after the flags")
		return 2
	}
	if *tokenFile == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return fail(err)
		}
		*tokenFile = filepath.Join(dir, "mycli", "token.json")
	}
	store := loopauth.NewFileStore(*tokenFile)
	// Only login may open a browser: a script running whoami or logout
	// must never wait for one.
	client, err := newClient(*issuer, *clientID, command != "login")
	if err != nil {
		return fail(err)
	}

	switch command {
	case "login":
		// Token signs in only when the stored tokens cannot be used.
		ts, err := client.Token(ctx, store)
		if err != nil {
			return fail(err)
		}
		fmt.Println("Signed in as " + user(ts))
	case "whoami":
		// NonInteractive: Token refreshes if it must and can, and
		// otherwise fails with ErrLoginRequired.
		ts, err := client.Token(ctx, store)
		if errors.Is(err, loopauth.ErrLoginRequired) {
			fmt.Fprintf(os.Stderr, "mycli: %v\nRun \"mycli login\" to sign in.\n", err)
			return exitLoginRequired
		}
		if err != nil {
			return fail(err)
		}
		fmt.Println(user(ts))
	case "logout":
		// Logout revokes the refresh token at the provider, then deletes
		// the file, even when revocation fails.
		if err := client.Logout(ctx, store); err != nil {
			return fail(err)
		}
		fmt.Println("Signed out.")
	}
	return 0
}

// newClient builds a client that verifies ID tokens with the provider's
// keys and asks for a refresh token (offline_access), so that later runs
// need no browser. FromIssuer reads the provider's discovery document
// only when a command needs the provider: whoami with fresh tokens makes
// no request at all.
func newClient(issuer, clientID string, nonInteractive bool) (*loopauth.CLITokenClient, error) {
	b := loopauth.FromIssuer(issuer).
		ClientID(clientID).
		AddScopes(loopauth.ScopeEmail, loopauth.ScopeOfflineAccess)
	if nonInteractive {
		b.NonInteractive()
	}
	return b.Build()
}

// user describes the signed-in user from the ID token, which loopauth
// verified when it was issued.
func user(ts *loopauth.TokenSet) string {
	id := ts.IDToken()
	if id == nil {
		return "(unknown user)"
	}
	c := id.Claims()
	if c.Email == "" {
		return clean(c.Subject)
	}
	return clean(c.Subject) + " <" + clean(c.Email) + ">"
}

// clean keeps the provider's text from sending control sequences to the
// terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// fail reports err, which loopauth guarantees holds no token.
func fail(err error) int {
	fmt.Fprintf(os.Stderr, "mycli: %v\n", err)
	if errors.Is(err, context.Canceled) {
		return 130
	}
	return 1
}
