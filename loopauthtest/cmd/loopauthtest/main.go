// Command loopauthtest serves the loopauthtest OpenID provider as a
// process of its own, so that an integration test can run a CLI's
// commands (mycli login, mycli whoami, mycli logout) as separate processes
// against one provider, and a fake API in yet another process can check
// the access tokens it issued.
//
//	go run github.com/loopauth/loopauth/loopauthtest/cmd/loopauthtest -addr 127.0.0.1:8765 -state provider.json
//
// The first line on standard output is exactly
//
//	issuer: http://127.0.0.1:PORT
//
// and nothing else is printed there; what it serves is described on
// standard error. It runs until SIGINT (Ctrl+C) or SIGTERM, then stops
// the provider and exits 0 (2 for invalid flags, 1 when it cannot start).
//
// Flags:
//
//	-addr IP:PORT          loopback address to listen on (default 127.0.0.1:0,
//	                       a free port; the issuer line says which)
//	-state FILE            keep the provider's state in FILE (see below)
//	-issuer-file FILE      also write the issuer URL, and a newline, to FILE
//	-client ID[:SECRET]    accept this client, public without a secret; repeat
//	                       for more (default: the public client loopauth-cli)
//	-auto-approve          approve sign-ins at once (default true); false shows
//	                       a consent page, for a person with a browser
//	-token-lifetime D      access-token lifetime (default 1h)
//	-alg ES256|RS256       ID-token signing algorithm (default ES256)
//	-introspection ID:SECRET  the HTTP Basic credential /introspect requires
//	                       (default api:api-secret)
//
// With -auto-approve, a sign-in completes with any user agent that follows
// redirects: point the CLI's browser at curl (BROWSER='curl -fsSL -o
// /dev/null' for programs that honour $BROWSER, as loopauth does), or give
// the printed URL to loopauthtest.LandingAddress and paste the result
// back.
//
// The state file: with -state, everything the provider knows is in FILE
// and written after every change: its signing keys, the grants it made
// with their refresh tokens, the access tokens it issued, and what was
// revoked (see loopauthtest.WithStateFile). A second run with the same
// FILE carries on where the first stopped: ID tokens from before still
// verify, refresh tokens still refresh, revoked ones stay revoked.
// Sign-ins in progress (authorization codes) are not kept. Give a fixed
// -addr too, so that the issuer, which stored token sets record, stays the
// same. The file holds live tokens and private keys in clear: it is for
// tests only. Without -state, everything ends with the process.
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
	"strings"
	"syscall"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// client is one -client flag.
type client struct{ id, secret string }

type clientFlag []client

func (c *clientFlag) String() string { return "" }

func (c *clientFlag) Set(v string) error {
	id, secret, _ := strings.Cut(v, ":")
	if id == "" {
		return errors.New("want ID or ID:SECRET")
	}
	*c = append(*c, client{id, secret})
	return nil
}

// run serves until ctx is done and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loopauthtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var clients clientFlag
	addr := fs.String("addr", "127.0.0.1:0", "loopback `IP:PORT` to listen on; port 0 picks a free one")
	state := fs.String("state", "", "keep the provider's keys, tokens and revocations in `FILE` across runs")
	issuerFile := fs.String("issuer-file", "", "also write the issuer URL to `FILE`")
	fs.Var(&clients, "client", "accept the client `ID[:SECRET]` (repeatable; default loopauth-cli, public)")
	autoApprove := fs.Bool("auto-approve", true, "approve sign-ins at once; false shows a consent page")
	lifetime := fs.Duration("token-lifetime", time.Hour, "access-token `lifetime`")
	alg := fs.String("alg", loopauthtest.AlgES256, "ID-token signing `algorithm`: ES256 or RS256")
	introspection := fs.String("introspection", loopauthtest.DefaultIntrospectionID+":"+loopauthtest.DefaultIntrospectionSecret,
		"HTTP Basic credential `ID:SECRET` that /introspect requires")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loopauthtest: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if len(clients) == 0 {
		clients = clientFlag{{id: "loopauth-cli"}}
	}
	apiID, apiSecret, ok := strings.Cut(*introspection, ":")
	if !ok || apiID == "" || apiSecret == "" {
		fmt.Fprintln(stderr, "loopauthtest: -introspection wants ID:SECRET, both non-empty")
		return 2
	}

	opts := []loopauthtest.Option{
		loopauthtest.WithAddr(*addr),
		loopauthtest.WithSigningAlg(*alg),
		loopauthtest.WithTokenLifetime(*lifetime),
		loopauthtest.WithIntrospectionCredentials(apiID, apiSecret),
	}
	for _, c := range clients {
		opts = append(opts, loopauthtest.WithClient(c.id, c.secret))
	}
	if !*autoApprove {
		opts = append(opts, loopauthtest.WithConsentPage())
	}
	if *state != "" {
		opts = append(opts, loopauthtest.WithStateFile(*state))
	}
	p, err := loopauthtest.StartProvider(opts...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer p.Close()
	if *issuerFile != "" {
		if err := writeIssuerFile(*issuerFile, p.Issuer()); err != nil {
			fmt.Fprintf(stderr, "loopauthtest: writing the issuer file: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "issuer: %s\n", p.Issuer())

	ids := make([]string, len(clients))
	for i, c := range clients {
		ids[i] = c.id
		if c.secret == "" {
			ids[i] += " (public)"
		}
	}
	fmt.Fprintf(stderr, "loopauthtest: serving %s\n", p.DiscoveryURL())
	fmt.Fprintf(stderr, "loopauthtest: clients: %s\n", strings.Join(ids, ", "))
	fmt.Fprintf(stderr, "loopauthtest: revocation at %s, introspection at %s (HTTP Basic as %s)\n", p.RevocationURL(), p.IntrospectionURL(), apiID)
	if *state != "" {
		fmt.Fprintf(stderr, "loopauthtest: state kept in %s\n", *state)
	}

	<-ctx.Done()
	p.Close()
	fmt.Fprintln(stderr, "loopauthtest: stopped")
	return 0
}

// writeIssuerFile writes the issuer by renaming a complete file into
// place, so a test polling for the file never reads half of it.
func writeIssuerFile(path, issuer string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".issuer-*")
	if err != nil {
		return err
	}
	_, err = f.WriteString(issuer + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
