//go:build !https

package main

import "github.com/loopauth/loopauth"

// callback keeps the default: an http://127.0.0.1 callback.
func callback(b *loopauth.CLITokenClientBuilder) *loopauth.CLITokenClientBuilder { return b }
