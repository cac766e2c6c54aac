// Login is a size probe (see make size): a CLI that signs in with
// loopauth. It discovers an OpenID provider, signs in through the browser,
// verifies the ID token against the provider's keys and prints the
// subject. ../floor does the same job by hand with the standard library.
// Built with -tags https, it serves the callback over HTTPS (UseHTTPS).
//
//	login ISSUER CLIENT_ID
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/loopauth/loopauth"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: login ISSUER CLIENT_ID")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	sub, err := login(ctx, os.Args[1], os.Args[2])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(sub)
}

func login(ctx context.Context, issuer, clientID string) (string, error) {
	cfg, err := loopauth.FetchOpenIDConfiguration(ctx, issuer)
	if err != nil {
		return "", err
	}
	b := loopauth.FromOpenIDConfiguration(cfg).
		ClientID(clientID).
		WithOpenIDConfigurationJWKSValidator(cfg).
		AddScopes(loopauth.ScopeEmail)
	client, err := callback(b).Build()
	if err != nil {
		return "", err
	}
	tokens, err := client.RunAuthorizationFlow(ctx)
	if err != nil {
		return "", err
	}
	return tokens.IDToken().Claims().Subject, nil
}
