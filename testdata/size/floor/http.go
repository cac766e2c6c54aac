//go:build !https

package main

import "net"

// listen opens the callback's port on the loopback interface.
func listen() (net.Listener, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	return ln, "http", err
}
