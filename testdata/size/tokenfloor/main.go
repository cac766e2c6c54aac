// Tokenfloor is the floor of BenchmarkStartup: the run of ../token written
// by hand. It reads the token file with encoding/json, checks that the
// access token is good for another minute, and prints it. Built with
// -tags nethttp, it also links net/http, as every CLI that calls an API
// with its token does, with or without loopauth.
//
//	tokenfloor TOKEN_FILE
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tokenfloor TOKEN_FILE")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var tokens struct {
		AccessToken string `json:"access_token"`
		ExpiresAt   int64  `json:"expires_at"`
	}
	if err := json.Unmarshal(data, &tokens); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if time.Until(time.Unix(tokens.ExpiresAt, 0)) < time.Minute {
		fmt.Fprintln(os.Stderr, "the stored token has expired: sign in again")
		os.Exit(1)
	}
	fmt.Println(tokens.AccessToken)
	callAPI(tokens.AccessToken)
}
