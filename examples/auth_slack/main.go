// Auth_slack signs a user in to Slack with OAuth v2 and prints the user
// token's scopes and how long it lasts, never the tokens themselves. It is
// the Go port of the Rust crate's auth_slack example, and shows a custom
// TokenResponseParser: Slack nests a user's tokens under "authed_user"
// instead of answering as RFC 6749 §5.1 says.
//
//	LOOPAUTH_CLIENT_ID=... LOOPAUTH_CLIENT_SECRET=... \
//	LOOPAUTH_TLS_DIR=~/.config/myapp/tls go run ./examples/auth_slack
//
// Environment variables (there are no flags):
//
//	LOOPAUTH_CLIENT_ID      required  the app's Client ID (Basic Information page)
//	LOOPAUTH_CLIENT_SECRET  required  the app's Client Secret
//	LOOPAUTH_TLS_DIR        required  a directory for the callback's certificate:
//	                                  made with mkcert on the first run, reused afterwards
//	LOOPAUTH_SCOPES         optional  comma-separated user scopes (default
//	                                  "channels:history,channels:read,groups:history,groups:read")
//	LOOPAUTH_PORT           optional  the callback port (default 8443), pinned:
//	                                  the flow fails when it is busy
//
// The scopes are Slack user scopes: they are sent, comma-separated as Slack
// wants them, as the user_scope parameter, and no scope (bot scopes)
// parameter is sent. The token printed about is the user token.
//
// Slack accepts only https redirect URLs. On the app's "OAuth & Permissions"
// page, add the redirect URL https://127.0.0.1:8443/callback (with your
// LOOPAUTH_PORT, if you set one). The certificate for it comes from mkcert,
// which must be on the PATH with its local CA installed once
// ("mkcert -install"); without mkcert the program prints what to do.
// LOOPAUTH_TLS_DIR is created with mode 0700; an existing directory that
// other users may access is refused.
//
// Slack user tokens expire, and come with a refresh token, only when token
// rotation is turned on for the app; otherwise the expiry is shown as
// unknown.
//
// Without a browser on the machine, the URL to open is printed to standard
// error and the program keeps waiting (up to 5 minutes). Ctrl+C cancels.
//
// Exit status: 0 on success, 1 on failure (mkcert missing or failing
// included), 2 on missing or invalid settings (an unsafe LOOPAUTH_TLS_DIR
// included), 130 when cancelled.
package main

import (
	"bytes"
	"context"
	"encoding/json"
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

const (
	slackAuthURL  = "https://slack.com/oauth/v2/authorize"
	slackTokenURL = "https://slack.com/api/oauth.v2.access"
	defaultScopes = "channels:history,channels:read,groups:history,groups:read"
	defaultPort   = 8443
)

const usage = "usage: LOOPAUTH_CLIENT_ID=... LOOPAUTH_CLIENT_SECRET=... LOOPAUTH_TLS_DIR=DIR go run ./examples/auth_slack\n" +
	"       (optional: LOOPAUTH_SCOPES=" + defaultScopes + ", LOOPAUTH_PORT=8443)"

// config is what a test replaces: Slack's endpoints and where the
// callback's certificate comes from.
type config struct {
	authURL, tokenURL string
	certificate       func(dir string) (*loopauth.TLSCertificate, error)
}

var slack = config{
	authURL:     slackAuthURL,
	tokenURL:    slackTokenURL,
	certificate: loopauth.EnsureLocalhost,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Getenv, nil, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run signs in to Slack with the settings read through env. A nil opener
// uses the system browser.
func run(ctx context.Context, args []string, env func(string) string, opener loopauth.BrowserOpener, stdout, stderr io.Writer) int {
	return slack.run(ctx, args, env, opener, stdout, stderr)
}

func (cfg config) run(ctx context.Context, args []string, env func(string) string, opener loopauth.BrowserOpener, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "auth_slack takes no arguments; it is configured by environment variables.")
		fmt.Fprintln(stderr, usage)
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			return 0
		}
		return 2
	}

	var missing []string
	for _, name := range []string{"LOOPAUTH_CLIENT_ID", "LOOPAUTH_CLIENT_SECRET", "LOOPAUTH_TLS_DIR"} {
		if env(name) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "auth_slack: missing required environment variable(s): %s\n%s\n", strings.Join(missing, ", "), usage)
		return 2
	}

	userScope, err := userScopes(env("LOOPAUTH_SCOPES"))
	if err != nil {
		fmt.Fprintf(stderr, "auth_slack: LOOPAUTH_SCOPES: %v\n", err)
		return 2
	}
	port := defaultPort
	if p := env("LOOPAUTH_PORT"); p != "" {
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			fmt.Fprintf(stderr, "auth_slack: LOOPAUTH_PORT must be a port number from 1 to 65535, got %q\n", p)
			return 2
		}
	}

	b := loopauth.NewBuilder().
		ClientID(env("LOOPAUTH_CLIENT_ID")).
		ClientSecret(env("LOOPAUTH_CLIENT_SECRET")).
		AuthURL(cfg.authURL).
		TokenURL(cfg.tokenURL).
		// Slack's redirect URL names the port: pin it.
		RequirePort(port).
		OnAuthURL(func(p *loopauth.ExtraAuthParams) {
			p.Append("user_scope", userScope)
		}).
		TokenResponseParser(parseSlackToken).
		Stderr(stderr).
		OnURL(func(u *url.URL) {
			// The query carries the state and PKCE challenge: show only
			// where the user is sent.
			fmt.Fprintf(stderr, "Opening your browser at %s://%s%s to sign in to Slack... (Ctrl+C to cancel)\n", u.Scheme, u.Host, u.Path)
		})
	if opener != nil {
		b.BrowserOpener(opener)
	}
	// Check the settings before making a certificate: mkcert may ask for
	// a password. Build takes a snapshot, so the builder is still ours.
	if _, err := b.Build(); err != nil {
		fmt.Fprintf(stderr, "auth_slack: %v\n", err) // never the secret
		return 2
	}

	cert, err := cfg.certificate(env("LOOPAUTH_TLS_DIR"))
	if err != nil {
		var mkErr *loopauth.MkcertError
		switch {
		case errors.Is(err, loopauth.ErrMkcertNotFound):
			fmt.Fprintln(stderr, "auth_slack: mkcert was not found on the PATH; it makes the certificate in LOOPAUTH_TLS_DIR.")
			fmt.Fprint(stderr, loopauth.SetupGuideManaged)
		case errors.As(err, &mkErr):
			// mkcert failed, or its CA is not installed ("mkcert -install").
			fmt.Fprintf(stderr, "auth_slack: %v\n", mkErr)
			fmt.Fprint(stderr, loopauth.SetupGuideManaged)
		case errors.Is(err, loopauth.ErrUnsafeCertificatePath):
			// A setting to fix: the error names the path and the fix.
			fmt.Fprintf(stderr, "auth_slack: LOOPAUTH_TLS_DIR: %v\n", err)
			return 2
		default:
			fmt.Fprintf(stderr, "auth_slack: LOOPAUTH_TLS_DIR: %v\n", err)
		}
		return 1
	}
	client, err := b.UseHTTPSWith(cert).Build()
	if err != nil {
		fmt.Fprintf(stderr, "auth_slack: %v\n", err)
		return 2
	}

	ts, err := client.RunAuthorizationFlow(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "auth_slack: cancelled")
			return 130
		}
		fmt.Fprintf(stderr, "auth_slack: %v\n", err)
		// The library keeps a parser's error out of its message (it could
		// quote tokens); this parser's refusals quote only Slack's code.
		var se *slackError
		if errors.As(err, &se) {
			fmt.Fprintf(stderr, "auth_slack: %v\n", se)
		}
		return 1
	}

	scopes := make([]string, len(ts.Scopes()))
	for i, s := range ts.Scopes() {
		scopes[i] = string(s)
	}
	if len(scopes) == 0 {
		scopes = []string{"(none)"}
	}
	expiry := "unknown (Slack did not say; without token rotation the token does not expire)"
	if exp := ts.ExpiresAt(); !exp.IsZero() {
		expiry = fmt.Sprintf("in %d seconds", int(time.Until(exp).Round(time.Second).Seconds()))
	}
	fmt.Fprintln(stdout, "Signed in to Slack.")
	fmt.Fprintf(stdout, "  user scopes:   %s\n", strings.Join(scopes, " "))
	fmt.Fprintf(stdout, "  expires:       %s\n", expiry)
	fmt.Fprintf(stdout, "  refresh token: %s\n", yesNo(ts.RefreshToken() != ""))
	fmt.Fprintf(stdout, "  access token:  %d characters (not shown)\n", len(ts.AccessToken()))
	return 0
}

// userScopes checks a comma-separated list of Slack user scopes (an unset
// variable gives the default) and returns it comma-separated, as Slack's
// user_scope parameter wants it.
func userScopes(list string) (string, error) {
	if list == "" {
		list = defaultScopes
	}
	var scopes []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		for _, r := range s {
			// RFC 6749 §3.3 scope-token characters (the comma separates).
			if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
				return "", fmt.Errorf("scope %q has a space, quote, backslash, control or non-ASCII character (separate scopes with commas)", s)
			}
		}
		scopes = append(scopes, s)
	}
	if len(scopes) == 0 {
		return "", errors.New("names no scope")
	}
	return strings.Join(scopes, ","), nil
}

// slackError is Slack's refusal: {"ok":false,"error":"invalid_code"}.
type slackError struct{ code string }

func (e *slackError) Error() string {
	return fmt.Sprintf("Slack answered ok=false with error %q", e.code)
}

// parseSlackToken reads the answer of Slack's oauth.v2.access to a code
// exchange: {"ok":true,"authed_user":{"access_token":...,"scope":"a,b",...}}.
// Slack answers HTTP 200 even to refuse, with {"ok":false,"error":...}.
// No error it returns quotes the body, which may hold tokens.
func parseSlackToken(body []byte) (loopauth.TokenResponseFields, error) {
	var resp struct {
		OK         *bool  `json:"ok"`
		Error      string `json:"error"`
		AuthedUser *struct {
			AccessToken  string      `json:"access_token"`
			RefreshToken string      `json:"refresh_token"`
			ExpiresIn    json.Number `json:"expires_in"`
			Scope        string      `json:"scope"`
		} `json:"authed_user"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&resp); err != nil {
		// Say only what went wrong: the decoder's message may quote
		// a piece of the body.
		return loopauth.TokenResponseFields{}, errors.New("the answer is not the JSON object of Slack's oauth.v2.access")
	}
	if _, err := dec.Token(); err != io.EOF {
		return loopauth.TokenResponseFields{}, errors.New("data follows the JSON object of Slack's answer")
	}
	if resp.OK == nil {
		return loopauth.TokenResponseFields{}, errors.New(`no "ok" member in Slack's answer`)
	}
	if !*resp.OK {
		return loopauth.TokenResponseFields{}, &slackError{code: errorCode(resp.Error)}
	}
	u := resp.AuthedUser
	if u == nil || u.AccessToken == "" {
		return loopauth.TokenResponseFields{}, errors.New("no authed_user.access_token in Slack's answer (were user scopes granted?)")
	}
	var expiresIn *int64 // nil: Slack did not say (no token rotation)
	if u.ExpiresIn != "" {
		n, err := strconv.ParseInt(u.ExpiresIn.String(), 10, 64)
		if err != nil || n < 0 {
			return loopauth.TokenResponseFields{}, errors.New("authed_user.expires_in in Slack's answer is not a number of seconds")
		}
		expiresIn = &n // the library caps it (10 years); 0 means expired
	}
	return loopauth.TokenResponseFields{
		AccessToken:  u.AccessToken,
		TokenType:    "Bearer", // Slack says "user"; it is sent as a Bearer token
		RefreshToken: u.RefreshToken,
		ExpiresIn:    expiresIn,
		Scope:        strings.ReplaceAll(u.Scope, ",", " "),
	}, nil
}

// errorCode keeps Slack's error code printable: codes are short
// snake_case words, so anything else is cut or replaced.
func errorCode(s string) string {
	if s == "" {
		return "(none given)"
	}
	const maxLen = 64
	var b strings.Builder
	for i, r := range s {
		if i >= maxLen {
			b.WriteString("...")
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteRune('?')
		}
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
