// Fakebrowser is a browser for tests, set as $BROWSER: it loads the URL it
// is given and follows the redirects, which with an auto-approving
// provider (the loopauthtest command's default) end at the CLI's loopback
// callback and complete the sign-in.
//
//	BROWSER=/path/to/fakebrowser mycli login
//
// When $FAKEBROWSER_LOG names a file, each run first appends a line to it,
// so that a test can count the sign-ins a command started. It exits 1 when
// the last page is not 200 OK, and gives up after 30 seconds.
package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fakebrowser URL")
		os.Exit(2)
	}
	if err := browse(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "fakebrowser:", err)
		os.Exit(1)
	}
}

func browse(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	if log := os.Getenv("FAKEBROWSER_LOG"); log != "" {
		f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		// The query holds the sign-in's state: log only where it went.
		_, err = fmt.Fprintf(f, "opened %s://%s%s\n", u.Scheme, u.Host, u.Path)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	// Straight to the provider and the callback, whatever proxy the
	// environment names.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Get(rawURL)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		last := resp.Request.URL // its query may hold an authorization code
		return fmt.Errorf("%s://%s%s answered %s", last.Scheme, last.Host, last.Path, resp.Status)
	}
	return nil
}
