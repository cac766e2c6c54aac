// Auth_discovery signs in to an OpenID Connect provider found by discovery,
// verifies the ID token, and prints who signed in and what was granted,
// never the tokens themselves. It is the Go port of the Rust crate's
// auth_discovery example.
//
//	LOOPAUTH_CLIENT_ID=... LOOPAUTH_ISSUER_URL=... go run ./examples/auth_discovery
//
// Environment variables (there are no flags):
//
//	LOOPAUTH_CLIENT_ID      required  the client ID registered with the provider
//	LOOPAUTH_ISSUER_URL     required  the issuer, exactly as the provider states it
//	LOOPAUTH_CLIENT_SECRET  optional  the client secret, for providers that want one
//	LOOPAUTH_SCOPES         optional  comma-separated scopes (default "email,profile");
//	                                  "openid" is always requested and need not be listed
//	LOOPAUTH_PORT           optional  preferred callback port; a random free
//	                                  port is used when it is busy
//
// Register the redirect URI http://127.0.0.1/callback with the provider
// (RFC 8252 providers accept any port for it).
//
// Quick starts (the issuer must match the document's issuer byte for byte):
//
//   - Google, an OAuth client of type "Desktop app" (Google wants its client
//     secret too): LOOPAUTH_ISSUER_URL=https://accounts.google.com
//   - Keycloak, a public client of realm NAME with the standard flow:
//     LOOPAUTH_ISSUER_URL=https://host/realms/NAME
//     (LOOPAUTH_SCOPES=email,profile,offline_access adds a refresh token)
//   - Microsoft Entra ID, a "Mobile and desktop applications" registration:
//     LOOPAUTH_ISSUER_URL=https://login.microsoftonline.com/TENANT/v2.0 with
//     the tenant ID (a GUID); "common" and "organizations" never match.
//
// Without a browser on the machine, the URL to open is printed to standard
// error and the program keeps waiting (up to 5 minutes). Ctrl+C cancels.
//
// Exit status: 0 on success, 1 on failure (discovery included), 2 on
// missing or invalid settings, 130 when cancelled.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/loopauth/loopauth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Getenv, nil, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run signs in with the settings read through env. A nil opener uses the
// system browser.
func run(ctx context.Context, env func(string) string, opener loopauth.BrowserOpener, stdout, stderr io.Writer) int {
	var missing []string
	for _, name := range []string{"LOOPAUTH_CLIENT_ID", "LOOPAUTH_ISSUER_URL"} {
		if env(name) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "auth_discovery: missing required environment variable(s): %s\n", strings.Join(missing, ", "))
		fmt.Fprintln(stderr, "usage: LOOPAUTH_CLIENT_ID=... LOOPAUTH_ISSUER_URL=https://... go run ./examples/auth_discovery")
		return 2
	}
	port := 0
	if p := env("LOOPAUTH_PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			fmt.Fprintf(stderr, "auth_discovery: LOOPAUTH_PORT must be a port number from 1 to 65535, got %q\n", p)
			return 2
		}
		port = n
	}
	scopes, hadOpenID := parseScopes(env("LOOPAUTH_SCOPES"))
	if hadOpenID {
		fmt.Fprintln(stderr, `auth_discovery: note: "openid" is always requested; it need not be in LOOPAUTH_SCOPES`)
	}

	issuer := env("LOOPAUTH_ISSUER_URL")
	fmt.Fprintf(stderr, "Reading the OpenID configuration of %s...\n", issuer)
	cfg, err := loopauth.FetchOpenIDConfiguration(ctx, issuer)
	if err != nil {
		return fail(stderr, fmt.Errorf("LOOPAUTH_ISSUER_URL: %w", err))
	}

	b := loopauth.FromOpenIDConfiguration(cfg).
		ClientID(env("LOOPAUTH_CLIENT_ID")).
		WithOpenIDConfigurationJWKSValidator(cfg).
		AddScopes(scopes...).
		BrowserOpener(opener). // nil: the system browser
		Stderr(stderr)
	if secret := env("LOOPAUTH_CLIENT_SECRET"); secret != "" {
		b.ClientSecret(secret)
	}
	if port > 0 {
		b.PortHint(port)
	}
	client, err := b.Build()
	if err != nil {
		// Every problem, each naming what to fix; never the secret.
		fmt.Fprintf(stderr, "auth_discovery: %v\n", err)
		return 2
	}

	fmt.Fprintf(stderr, "Opening your browser at %s to sign in... (Ctrl+C to cancel)\n", clean(cfg.AuthorizationEndpoint))
	ts, err := client.RunAuthorizationFlow(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	// Only a verified ID token gets this far: its claims can be trusted.
	c := ts.IDToken().Claims()
	fmt.Fprintln(stdout, "Signed in; the ID token's signature was verified against the provider's JWKS.")
	fmt.Fprintf(stdout, "  subject:       %s\n", clean(c.Subject))
	if c.Email != "" {
		fmt.Fprintf(stdout, "  email:         %s (verified: %s)\n", clean(c.Email), yesNo(c.EmailVerified))
	}
	if c.Name != "" {
		fmt.Fprintf(stdout, "  name:          %s\n", clean(c.Name))
	}
	fmt.Fprintf(stdout, "  issuer:        %s\n", clean(c.Issuer))
	printFacts(stdout, ts)
	return 0
}

// parseScopes splits a comma-separated list (default "email,profile"),
// trimming spaces and dropping empty entries and "openid", which
// FromOpenIDConfiguration always requests and AddScopes refuses.
func parseScopes(list string) (scopes []loopauth.Scope, hadOpenID bool) {
	if list == "" {
		list = "email,profile"
	}
	for _, s := range strings.Split(list, ",") {
		switch s = strings.TrimSpace(s); loopauth.Scope(s) {
		case "":
		case loopauth.ScopeOpenID:
			hadOpenID = true
		default:
			scopes = append(scopes, loopauth.Scope(s))
		}
	}
	return scopes, hadOpenID
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
		fmt.Fprintln(stderr, "auth_discovery: cancelled")
		return 130
	}
	fmt.Fprintf(stderr, "auth_discovery: %v\n", err)
	return 1
}
