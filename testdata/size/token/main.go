// Token is the start-up probe of BenchmarkStartup: the commonest run of a
// CLI, which already holds a valid token. It loads the token through
// Client.Token from a FileStore, as the CLI would before calling its API,
// and prints it; no request is made. ../tokenfloor is the same run by hand.
//
//	token TOKEN_FILE
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/loopauth/loopauth"
)

// provider is the configuration a CLI ships with, so that a run with a
// stored token needs no discovery request.
var provider = &loopauth.OpenIDConfiguration{
	Issuer:                "https://id.example.com",
	AuthorizationEndpoint: "https://id.example.com/authorize",
	TokenEndpoint:         "https://id.example.com/token",
	JWKSURI:               "https://id.example.com/jwks",
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: token TOKEN_FILE")
		os.Exit(2)
	}
	client, err := loopauth.FromOpenIDConfiguration(provider).
		ClientID("startup-bench").
		WithOpenIDConfigurationJWKSValidator(provider).
		AddScopes(loopauth.ScopeEmail).
		Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tokens, err := client.Token(context.Background(), loopauth.NewFileStore(os.Args[1]))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(tokens.AccessToken())
}
