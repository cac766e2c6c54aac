//go:build https

package main

import "github.com/loopauth/loopauth"

// callback serves the callback over HTTPS with a self-signed certificate.
func callback(b *loopauth.CLITokenClientBuilder) *loopauth.CLITokenClientBuilder {
	return b.UseHTTPS()
}
