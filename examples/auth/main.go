// Auth signs in to any OAuth 2.0 provider whose endpoints you give it, and
// prints what it got, never the tokens themselves. It is the Go port of the
// Rust crate's auth example.
//
//	LOOPAUTH_CLIENT_ID=... LOOPAUTH_AUTH_URL=... LOOPAUTH_TOKEN_URL=... go run ./examples/auth
//
// Environment variables:
//
//	LOOPAUTH_CLIENT_ID      required  the client ID registered with the provider
//	LOOPAUTH_AUTH_URL       required  the authorization endpoint
//	LOOPAUTH_TOKEN_URL      required  the token endpoint
//	LOOPAUTH_CLIENT_SECRET  optional  the client secret, for providers that want one
//	LOOPAUTH_SCOPES         optional  comma-separated scopes (default "email,profile")
//	LOOPAUTH_PORT           optional  preferred callback port; a random free
//	                                  port is used when it is busy
//
// The scope "openid" cannot be requested here: it switches on OpenID
// Connect mode, whose ID-token verification is set up from the provider's
// discovery document: use ./examples/auth_discovery for that. Asking for
// it here is an error.
//
// Register http://127.0.0.1/callback as the redirect URI; the port is
// chosen at run time, and providers that follow RFC 8252 accept any port
// for a loopback redirect.
//
// GitHub (an OAuth app; GitHub also wants the client secret):
//
//	LOOPAUTH_CLIENT_ID=<client id> LOOPAUTH_CLIENT_SECRET=<client secret> \
//	LOOPAUTH_AUTH_URL=https://github.com/login/oauth/authorize \
//	LOOPAUTH_TOKEN_URL=https://github.com/login/oauth/access_token \
//	LOOPAUTH_SCOPES=read:user go run ./examples/auth
//
// Google (an OAuth client of type "Desktop app", whose loopback redirect
// http://127.0.0.1 on any port is allowed; Google wants its client secret
// even though a secret shipped in a CLI is not confidential):
//
//	LOOPAUTH_CLIENT_ID=<client id> LOOPAUTH_CLIENT_SECRET=<client secret> \
//	LOOPAUTH_AUTH_URL=https://accounts.google.com/o/oauth2/v2/auth \
//	LOOPAUTH_TOKEN_URL=https://oauth2.googleapis.com/token \
//	go run ./examples/auth
//
// (Google issues a refresh token only when asked with access_type=offline,
// which a program adds with the builder's OnAuthURL; this example does not.)
//
// Without a browser on the machine, the URL to open is printed to standard
// error and the program keeps waiting (up to 5 minutes). Ctrl+C cancels.
//
// Exit status: 0 on success, 1 on failure, 2 on missing or invalid
// settings, 130 when cancelled.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/loopauth/loopauth"
)

const usage = "usage: LOOPAUTH_CLIENT_ID=... LOOPAUTH_AUTH_URL=... LOOPAUTH_TOKEN_URL=... go run ./examples/auth\n" +
	"       (optional: LOOPAUTH_CLIENT_SECRET, LOOPAUTH_SCOPES=email,profile, LOOPAUTH_PORT)"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Getenv, nil, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run signs in with the settings read through env. A nil opener uses the
// system browser.
func run(ctx context.Context, args []string, env func(string) string, opener loopauth.BrowserOpener, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "auth takes no arguments; it is configured by environment variables.")
		fmt.Fprintln(stderr, usage)
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			return 0
		}
		return 2
	}

	var missing []string
	for _, name := range []string{"LOOPAUTH_CLIENT_ID", "LOOPAUTH_AUTH_URL", "LOOPAUTH_TOKEN_URL"} {
		if env(name) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "auth: missing required environment variable(s): %s\n%s\n", strings.Join(missing, ", "), usage)
		return 2
	}

	scopes := parseScopes(env("LOOPAUTH_SCOPES"), "email,profile")
	for _, s := range scopes {
		if s == loopauth.ScopeOpenID {
			fmt.Fprintln(stderr, `auth: LOOPAUTH_SCOPES must not contain "openid": OpenID Connect, with ID-token verification, is in ./examples/auth_discovery; remove it to use plain OAuth 2.0 here`)
			return 2
		}
	}

	b := loopauth.NewBuilder().
		ClientID(env("LOOPAUTH_CLIENT_ID")).
		AuthURL(env("LOOPAUTH_AUTH_URL")).
		TokenURL(env("LOOPAUTH_TOKEN_URL")).
		AddScopes(scopes...).
		Stderr(stderr).
		OnURL(func(u *url.URL) {
			// The URL's query carries the state and PKCE challenge: show
			// only where the user is sent. The library prints the full URL
			// itself when it cannot open a browser.
			fmt.Fprintf(stderr, "Opening your browser at %s://%s%s to sign in... (Ctrl+C to cancel)\n", u.Scheme, u.Host, u.Path)
		})
	if secret := env("LOOPAUTH_CLIENT_SECRET"); secret != "" {
		b.ClientSecret(secret)
	}
	if p := env("LOOPAUTH_PORT"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			fmt.Fprintf(stderr, "auth: LOOPAUTH_PORT must be a port number from 1 to 65535, got %q\n", p)
			return 2
		}
		b.PortHint(port)
	}
	if opener != nil {
		b.BrowserOpener(opener)
	}
	client, err := b.Build()
	if err != nil {
		// Every problem, each naming what to fix; never the secret.
		fmt.Fprintf(stderr, "auth: %v\n", err)
		return 2
	}

	ts, err := client.RunAuthorizationFlow(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "auth: cancelled")
			return 130
		}
		fmt.Fprintf(stderr, "auth: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "Signed in.")
	printFacts(stdout, ts)
	return 0
}

// parseScopes splits a comma-separated list, trimming spaces and dropping
// empty entries; an unset variable gives def.
func parseScopes(list, def string) []loopauth.Scope {
	if list == "" {
		list = def
	}
	var scopes []loopauth.Scope
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			scopes = append(scopes, loopauth.Scope(s))
		}
	}
	return scopes
}

// printFacts describes a token set without printing any token.
func printFacts(w io.Writer, ts *loopauth.TokenSet) {
	scopes := make([]string, len(ts.Scopes()))
	for i, s := range ts.Scopes() {
		scopes[i] = string(s)
	}
	expiry := "unknown (the provider did not say)"
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
