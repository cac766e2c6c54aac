// Auth_https signs in to any OAuth 2.0 provider whose endpoints you give it,
// receiving the browser's redirect over HTTPS on 127.0.0.1, and prints what
// it got, never the tokens themselves. It is the Go port of the Rust crate's
// auth_https example.
//
//	LOOPAUTH_CLIENT_ID=... LOOPAUTH_AUTH_URL=... LOOPAUTH_TOKEN_URL=... \
//	LOOPAUTH_TLS_DIR=~/.config/myapp/tls LOOPAUTH_PORT=8443 go run ./examples/auth_https
//
// Flags:
//
//	-setup-guide   print the one-time certificate setup guide (mkcert) and exit
//	               (--setup-guide works too)
//
// Environment variables:
//
//	LOOPAUTH_CLIENT_ID      required  the client ID registered with the provider
//	LOOPAUTH_AUTH_URL       required  the authorization endpoint
//	LOOPAUTH_TOKEN_URL      required  the token endpoint
//	LOOPAUTH_TLS_DIR        a directory for a managed certificate: made with
//	                        mkcert on the first run, reused afterwards
//	LOOPAUTH_CERT_FILE      or a certificate you made yourself: its PEM file
//	LOOPAUTH_KEY_FILE       and the PEM file of its private key
//	LOOPAUTH_CLIENT_SECRET  optional  the client secret, for providers that want one
//	LOOPAUTH_SCOPES         optional  comma-separated scopes (default "email,profile")
//	LOOPAUTH_PORT           optional  the callback port, pinned: the flow fails
//	                                  when it is busy instead of moving elsewhere
//
// Give either LOOPAUTH_TLS_DIR or both LOOPAUTH_CERT_FILE and
// LOOPAUTH_KEY_FILE, not both. A managed certificate needs mkcert on the
// PATH and its local CA installed once ("mkcert -install"); without mkcert
// the program prints what to do. LOOPAUTH_TLS_DIR is created with mode 0700;
// an existing directory that other users may access is refused. A certificate of your own must be trusted
// by the browser and valid for 127.0.0.1.
//
// The scope "openid" cannot be requested here, as in ./examples/auth: it
// switches on OpenID Connect mode, whose ID-token verification is set up
// from the provider's discovery document (./examples/auth_discovery).
//
// Register https://127.0.0.1:PORT/callback as the redirect URI, with the
// port you put in LOOPAUTH_PORT. Providers that accept any port for a
// loopback redirect (RFC 8252 §7.3) usually do so only for http, and compare
// an https redirect URI exactly: pin the port. Without LOOPAUTH_PORT the port
// is random, which suits only providers that ignore it.
//
// Without a browser on the machine, the URL to open is printed to standard
// error and the program keeps waiting (up to 5 minutes). Ctrl+C cancels.
//
// Exit status: 0 on success (and after -setup-guide), 1 on failure
// (mkcert missing or failing included), 2 on missing or invalid settings
// (unusable certificate files or an unsafe LOOPAUTH_TLS_DIR included), 130
// when cancelled.
package main

import (
	"context"
	"errors"
	"flag"
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

const usage = "usage: LOOPAUTH_CLIENT_ID=... LOOPAUTH_AUTH_URL=... LOOPAUTH_TOKEN_URL=... \\\n" +
	"         LOOPAUTH_TLS_DIR=DIR (or LOOPAUTH_CERT_FILE=... LOOPAUTH_KEY_FILE=...) go run ./examples/auth_https\n" +
	"       go run ./examples/auth_https -setup-guide\n" +
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
	flags := flag.NewFlagSet("auth_https", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprintln(stderr, usage) }
	setupGuide := flags.Bool("setup-guide", false, "print the certificate setup guide and exit")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // flag has printed the problem and the usage
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "auth_https: unexpected argument %q; it is configured by environment variables.\n%s\n", flags.Arg(0), usage)
		return 2
	}
	if *setupGuide {
		fmt.Fprint(stdout, loopauth.SetupGuide)
		return 0
	}

	var missing []string
	for _, name := range []string{"LOOPAUTH_CLIENT_ID", "LOOPAUTH_AUTH_URL", "LOOPAUTH_TOKEN_URL"} {
		if env(name) == "" {
			missing = append(missing, name)
		}
	}
	tlsDir, certFile, keyFile := env("LOOPAUTH_TLS_DIR"), env("LOOPAUTH_CERT_FILE"), env("LOOPAUTH_KEY_FILE")
	switch {
	case tlsDir != "" && (certFile != "" || keyFile != ""):
		fmt.Fprintln(stderr, "auth_https: set LOOPAUTH_TLS_DIR or LOOPAUTH_CERT_FILE and LOOPAUTH_KEY_FILE, not both")
		return 2
	case tlsDir != "":
	case certFile == "" && keyFile == "":
		missing = append(missing, "LOOPAUTH_TLS_DIR (or LOOPAUTH_CERT_FILE and LOOPAUTH_KEY_FILE)")
	case certFile == "":
		missing = append(missing, "LOOPAUTH_CERT_FILE")
	case keyFile == "":
		missing = append(missing, "LOOPAUTH_KEY_FILE")
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "auth_https: missing required environment variable(s): %s\n%s\n", strings.Join(missing, ", "), usage)
		return 2
	}

	scopes := parseScopes(env("LOOPAUTH_SCOPES"), "email,profile")
	for _, s := range scopes {
		if s == loopauth.ScopeOpenID {
			fmt.Fprintln(stderr, `auth_https: LOOPAUTH_SCOPES must not contain "openid": OpenID Connect, with ID-token verification, is in ./examples/auth_discovery; remove it to use plain OAuth 2.0 here`)
			return 2
		}
	}

	b := loopauth.NewBuilder().
		ClientID(env("LOOPAUTH_CLIENT_ID")).
		AuthURL(env("LOOPAUTH_AUTH_URL")).
		TokenURL(env("LOOPAUTH_TOKEN_URL")).
		AddScopes(scopes...).
		Stderr(stderr).
		OnServerReady(func(port int) {
			fmt.Fprintf(stderr, "Waiting for the provider's redirect to https://127.0.0.1:%d/callback\n", port)
		}).
		OnURL(func(u *url.URL) {
			// The query carries the state and PKCE challenge: show only
			// where the user is sent.
			fmt.Fprintf(stderr, "Opening your browser at %s://%s%s to sign in... (Ctrl+C to cancel)\n", u.Scheme, u.Host, u.Path)
		})
	if secret := env("LOOPAUTH_CLIENT_SECRET"); secret != "" {
		b.ClientSecret(secret)
	}
	if p := env("LOOPAUTH_PORT"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			fmt.Fprintf(stderr, "auth_https: LOOPAUTH_PORT must be a port number from 1 to 65535, got %q\n", p)
			return 2
		}
		b.RequirePort(port)
	}
	if opener != nil {
		b.BrowserOpener(opener)
	}
	// Check the settings before making a certificate: mkcert may ask for
	// a password, which is wasted on a mistyped URL. Build takes a
	// snapshot, so the builder is still ours to finish.
	if _, err := b.Build(); err != nil {
		// Every problem, each naming what to fix; never the secret.
		fmt.Fprintf(stderr, "auth_https: %v\n", err)
		return 2
	}

	cert, code := loadCertificate(tlsDir, certFile, keyFile, stderr)
	if cert == nil {
		return code
	}
	client, err := b.UseHTTPSWith(cert).Build()
	if err != nil {
		fmt.Fprintf(stderr, "auth_https: %v\n", err)
		return 2
	}

	ts, err := client.RunAuthorizationFlow(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "auth_https: cancelled")
			return 130
		}
		fmt.Fprintf(stderr, "auth_https: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "Signed in over an HTTPS callback.")
	printFacts(stdout, ts)
	return 0
}

// loadCertificate returns the managed certificate in tlsDir, made by
// mkcert when needed, or the one in certFile and keyFile. On failure it
// reports the problem and returns nil and the exit status.
func loadCertificate(tlsDir, certFile, keyFile string, stderr io.Writer) (*loopauth.TLSCertificate, int) {
	if tlsDir == "" {
		cert, err := loopauth.TLSCertificateFromPEMFiles(certFile, keyFile)
		if err != nil {
			fmt.Fprintf(stderr, "auth_https: LOOPAUTH_CERT_FILE, LOOPAUTH_KEY_FILE: %v\n", err)
			return nil, 2
		}
		return cert, 0
	}
	cert, err := loopauth.EnsureLocalhost(tlsDir)
	var mkErr *loopauth.MkcertError
	switch {
	case err == nil:
		return cert, 0
	case errors.Is(err, loopauth.ErrMkcertNotFound):
		fmt.Fprintln(stderr, "auth_https: mkcert was not found on the PATH; it makes the certificate in LOOPAUTH_TLS_DIR.")
		fmt.Fprint(stderr, loopauth.SetupGuideManaged)
	case errors.As(err, &mkErr):
		// mkcert failed, or its CA is not installed ("mkcert -install").
		fmt.Fprintf(stderr, "auth_https: %v\n", mkErr)
		fmt.Fprint(stderr, loopauth.SetupGuideManaged)
	case errors.Is(err, loopauth.ErrUnsafeCertificatePath):
		// A setting to fix: the error names the path and the fix.
		fmt.Fprintf(stderr, "auth_https: LOOPAUTH_TLS_DIR: %v\n", err)
		return nil, 2
	default:
		fmt.Fprintf(stderr, "auth_https: LOOPAUTH_TLS_DIR: %v\n", err)
	}
	return nil, 1
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
	if len(scopes) == 0 {
		scopes = []string{"(none)"}
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

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
