// Auth_jira signs in to Atlassian with OAuth 2.0 (3LO), then lists the
// Jira sites the token can reach, never printing the tokens themselves.
// It is the Go port of the Rust crate's auth_jira example, and shows the
// OnAuthURL hook (Atlassian's audience and prompt parameters) and an
// authorizing *http.Client fed from a token store.
//
//	LOOPAUTH_CLIENT_ID=... LOOPAUTH_CLIENT_SECRET=... LOOPAUTH_PORT=8080 go run ./examples/auth_jira
//
// Environment variables (there are no flags):
//
//	LOOPAUTH_CLIENT_ID      required  the app's Client ID (developer console, Settings)
//	LOOPAUTH_CLIENT_SECRET  optional  the app's Secret; Atlassian's token endpoint
//	                                  asks for it
//	LOOPAUTH_SCOPES         optional  comma-separated scopes (default
//	                                  "read:jira-work,read:jira-user,offline_access":
//	                                  read issues and users, and get a refresh token)
//	LOOPAUTH_PORT           optional  the callback port, pinned: the flow fails
//	                                  when it is busy instead of moving elsewhere
//
// Atlassian compares the callback URL exactly, port included. In the
// developer console (https://developer.atlassian.com/console/myapps/), under
// Authorization, OAuth 2.0 (3LO), set the callback URL to
// http://127.0.0.1:PORT/callback, add the scopes under Permissions, and run
// with LOOPAUTH_PORT=PORT. Without LOOPAUTH_PORT the port is random and
// Atlassian refuses the redirect; the program says so before it starts.
//
// The authorization URL carries audience=api.atlassian.com and
// prompt=consent, as Atlassian asks. After sign-in the program calls
// https://api.atlassian.com/oauth/token/accessible-resources with the new
// token and prints each site's name, URL and REST API base.
//
// Without a browser on the machine, the URL to open is printed to standard
// error and the program keeps waiting (up to 5 minutes). Ctrl+C cancels.
//
// Exit status: 0 on success, 1 on failure (the site list included), 2 on
// missing or invalid settings, 130 when cancelled.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/loopauth/loopauth"
)

const (
	atlassianAuthURL      = "https://auth.atlassian.com/authorize"
	atlassianTokenURL     = "https://auth.atlassian.com/oauth/token"
	atlassianResourcesURL = "https://api.atlassian.com/oauth/token/accessible-resources"
	defaultScopes         = "read:jira-work,read:jira-user,offline_access"
	maxResourcesBytes     = 1 << 20
)

const usage = "usage: LOOPAUTH_CLIENT_ID=... LOOPAUTH_PORT=PORT go run ./examples/auth_jira\n" +
	"       (optional: LOOPAUTH_CLIENT_SECRET, LOOPAUTH_SCOPES=" + defaultScopes + ")"

// config is what a test replaces: Atlassian's endpoints.
type config struct {
	authURL, tokenURL, resourcesURL string
}

var atlassian = config{
	authURL:      atlassianAuthURL,
	tokenURL:     atlassianTokenURL,
	resourcesURL: atlassianResourcesURL,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Getenv, nil, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run signs in to Atlassian with the settings read through env and lists
// the sites. A nil opener uses the system browser.
func run(ctx context.Context, args []string, env func(string) string, opener loopauth.BrowserOpener, stdout, stderr io.Writer) int {
	return atlassian.run(ctx, args, env, opener, stdout, stderr)
}

func (cfg config) run(ctx context.Context, args []string, env func(string) string, opener loopauth.BrowserOpener, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "auth_jira takes no arguments; it is configured by environment variables.")
		fmt.Fprintln(stderr, usage)
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			return 0
		}
		return 2
	}
	if env("LOOPAUTH_CLIENT_ID") == "" {
		fmt.Fprintf(stderr, "auth_jira: missing required environment variable(s): LOOPAUTH_CLIENT_ID\n%s\n", usage)
		return 2
	}

	scopes := parseScopes(env("LOOPAUTH_SCOPES"), defaultScopes)
	for _, s := range scopes {
		if s == loopauth.ScopeOpenID {
			fmt.Fprintln(stderr, `auth_jira: LOOPAUTH_SCOPES must not contain "openid": Atlassian's 3LO is plain OAuth 2.0`)
			return 2
		}
	}

	b := loopauth.NewBuilder().
		ClientID(env("LOOPAUTH_CLIENT_ID")).
		AuthURL(cfg.authURL).
		TokenURL(cfg.tokenURL).
		AddScopes(scopes...).
		OnAuthURL(func(p *loopauth.ExtraAuthParams) {
			p.Append("audience", "api.atlassian.com").Append("prompt", "consent")
		}).
		Stderr(stderr).
		OnURL(func(u *url.URL) {
			// The query carries the state and PKCE challenge: show only
			// where the user is sent.
			fmt.Fprintf(stderr, "Opening your browser at %s://%s%s to sign in to Atlassian... (Ctrl+C to cancel)\n", u.Scheme, u.Host, u.Path)
		})
	if secret := env("LOOPAUTH_CLIENT_SECRET"); secret != "" {
		b.ClientSecret(secret)
	}
	if p := env("LOOPAUTH_PORT"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			fmt.Fprintf(stderr, "auth_jira: LOOPAUTH_PORT must be a port number from 1 to 65535, got %q\n", p)
			return 2
		}
		// Atlassian's callback URL names the port: pin it.
		b.RequirePort(port)
	} else {
		fmt.Fprintln(stderr, "auth_jira: note: LOOPAUTH_PORT is not set, so the callback port is random; Atlassian accepts only the callback URL registered for the app.")
	}
	if opener != nil {
		b.BrowserOpener(opener)
	}
	client, err := b.Build()
	if err != nil {
		fmt.Fprintf(stderr, "auth_jira: %v\n", err) // never the secret
		return 2
	}

	// Token signs in (the store is empty) and saves the result in the
	// store, where the authorizing client below finds it. A FileStore
	// would keep it between runs, with its refresh token.
	store := loopauth.NewMemoryStore()
	ts, err := client.Token(ctx, store)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, "Signed in to Atlassian.")
	printFacts(stdout, ts)

	sites, err := accessibleResources(ctx, client.AuthorizedHTTPClient(store), cfg.resourcesURL)
	if err != nil {
		return fail(stderr, err)
	}
	if len(sites) == 0 {
		fmt.Fprintln(stdout, "No sites: the app was not granted access to any Atlassian site.")
		return 0
	}
	fmt.Fprintf(stdout, "Sites this token can reach (%d):\n", len(sites))
	for _, s := range sites {
		fmt.Fprintf(stdout, "  %s\n", clean(s.Name))
		fmt.Fprintf(stdout, "    url:  %s\n", clean(s.URL))
		if isSiteID(s.ID) {
			fmt.Fprintf(stdout, "    api:  https://api.atlassian.com/ex/jira/%s/rest/api/3\n", s.ID)
		}
	}
	return 0
}

// site is one entry of the accessible-resources answer; other members
// (scopes, avatarUrl) are ignored.
type site struct {
	ID   string `json:"id"`
	URL  string `json:"url"`
	Name string `json:"name"`
}

// accessibleResources lists the sites the token in hc can reach. The
// answer is read up to 1 MiB and must be one JSON array of objects.
func accessibleResources(ctx context.Context, hc *http.Client, resourcesURL string) ([]site, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, resourcesURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("listing the sites: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResourcesBytes+1))
	if err != nil {
		return nil, fmt.Errorf("listing the sites: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// The body is not shown: it is the provider's text, of any size.
		return nil, fmt.Errorf("listing the sites: %s answered %s", resourcesURL, resp.Status)
	}
	if len(body) > maxResourcesBytes {
		return nil, fmt.Errorf("listing the sites: the answer is larger than %d bytes", maxResourcesBytes)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, errors.New("listing the sites: the answer is not application/json")
	}
	var sites []site
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&sites); err != nil || sites == nil {
		return nil, errors.New("listing the sites: the answer is not a JSON array of sites")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("listing the sites: data follows the JSON array")
	}
	for i, s := range sites {
		if s.Name == "" || s.URL == "" {
			return nil, fmt.Errorf("listing the sites: site %d has no name or no url", i+1)
		}
	}
	return sites, nil
}

// isSiteID reports whether id looks like a cloud ID (a UUID), safe to put
// in a URL path.
func isSiteID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '-') {
			return false
		}
	}
	return true
}

// clean makes provider text safe to print on a terminal: no control or
// bidirectional-formatting characters, and at most 200 characters.
func clean(s string) string {
	const maxRunes = 200
	var b strings.Builder
	n := 0
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if n == maxRunes {
			b.WriteString("...")
			break
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			r = '\uFFFD'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
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
		fmt.Fprintln(stderr, "auth_jira: cancelled")
		return 130
	}
	fmt.Fprintf(stderr, "auth_jira: %v\n", err)
	return 1
}
