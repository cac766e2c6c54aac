package loopauthtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	maxBrowserBody   = 1 << 20 // read at most 1 MiB of any page
	maxRedirects     = 10
	browserTimeout   = 2 * time.Minute // backstop; ctx is the usual limit
	browserUserAgent = "loopauthtest-browser/1"
)

// Browser returns a user agent for the library's "open the browser" hook.
// It GETs authURL with ctx, clicks Approve if WithConsentPage is on, and
// follows redirects to the loopback callback. It returns nil when the final
// page answers 2xx and an error naming the final status otherwise.
//
// It only visits this provider and loopback hosts (127.0.0.1, ::1,
// localhost): an authURL for another host is an error, and so is a
// redirect elsewhere. It returns when the callback page has been answered
// or ctx is done, and never uses a proxy or keeps idle connections.
func (p *Provider) Browser() func(ctx context.Context, authURL string) error {
	return func(ctx context.Context, authURL string) error {
		return p.browse(ctx, authURL)
	}
}

func (p *Provider) browse(ctx context.Context, authURL string) error {
	u, err := url.Parse(authURL)
	if err != nil {
		return fmt.Errorf("loopauthtest: browser: invalid auth URL: %w", err)
	}
	if u.Scheme != "http" || u.Host != p.host {
		return fmt.Errorf("loopauthtest: browser: auth URL %s://%s is not this provider (%s)", u.Scheme, u.Host, p.issuer)
	}
	client := p.newBrowserClient(nil)
	defer client.CloseIdleConnections()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return fmt.Errorf("loopauthtest: browser: %w", err)
	}
	resp, body, err := do(client, req)
	if err != nil {
		return err
	}
	if id := resp.Header.Get(consentHeader); id != "" && resp.StatusCode == http.StatusOK && resp.Request.URL.Host == p.host {
		// The consent page: click Approve.
		form := url.Values{"request_id": {id}, "decision": {"approve"}}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/authorize/decision", strings.NewReader(form.Encode()))
		if err != nil {
			return fmt.Errorf("loopauthtest: browser: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, body, err = do(client, req); err != nil {
			return err
		}
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	final := resp.Request.URL
	return fmt.Errorf("loopauthtest: browser: %s://%s%s answered %s%s",
		final.Scheme, final.Host, final.Path, resp.Status, snippet(body))
}

// do sends req, follows redirects, and reads and closes the final body.
func do(client *http.Client, req *http.Request) (*http.Response, []byte, error) {
	req.Header.Set("User-Agent", browserUserAgent)
	req.Header.Set("Accept", "text/html,*/*")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("loopauthtest: browser: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBrowserBody))
	if err != nil {
		return nil, nil, fmt.Errorf("loopauthtest: browser: reading %s: %w", resp.Request.URL.Redacted(), err)
	}
	// Anything beyond the limit is dropped with the connection, which is
	// never reused after the browse anyway.
	return resp, body, nil
}

// snippet turns the start of an error page into one readable line.
func snippet(body []byte) string {
	const maxLen = 200
	s := strings.Join(strings.Fields(string(body)), " ")
	if s == "" {
		return ""
	}
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return ": " + strings.ToValidUTF8(s, "?")
}

// newBrowserClient builds a private client. tlsConfig is the hook for
// trusting HTTPS callbacks later; nil means system defaults.
func (p *Provider) newBrowserClient(tlsConfig *tls.Config) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		Proxy:               nil, // loopback traffic must never go to a proxy
		DialContext:         dialer.DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     5 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   browserTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return errors.New("stopped after 10 redirects")
			}
			if !p.browserMayVisit(req.URL) {
				return fmt.Errorf("refusing to follow redirect to %s://%s: not this provider or a loopback host", req.URL.Scheme, req.URL.Host)
			}
			return nil
		},
	}
}

func (p *Provider) browserMayVisit(u *url.URL) bool {
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	if u.Host == p.host {
		return true
	}
	switch u.Hostname() {
	case "127.0.0.1", "::1", "localhost":
		return true
	}
	return false
}

// LandingAddress signs in at a loopauthtest provider as a browser on
// another machine would (over SSH, say): it GETs authURL, clicks Approve
// when the provider shows its consent page, and stops at the first
// redirect away from the provider, to the program's loopback callback,
// which such a browser cannot load. It returns that address, the one a
// user pastes back into the waiting program, without visiting it. It
// works from any process, given the authorization URL the program
// printed.
func LandingAddress(ctx context.Context, authURL string) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("loopauthtest: landing address: %q is not an http(s) URL", authURL)
	}
	var landing string
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		Timeout:   browserTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != u.Host {
				landing = req.URL.String()
				return http.ErrUseLastResponse
			}
			if len(via) >= maxRedirects {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return "", fmt.Errorf("loopauthtest: landing address: %w", err)
	}
	resp, body, err := do(client, req)
	if err != nil {
		return "", err
	}
	if id := resp.Header.Get(consentHeader); landing == "" && id != "" && resp.StatusCode == http.StatusOK {
		form := url.Values{"request_id": {id}, "decision": {"approve"}}
		decision := u.Scheme + "://" + u.Host + u.Path + "/decision"
		if req, err = http.NewRequestWithContext(ctx, http.MethodPost, decision, strings.NewReader(form.Encode())); err != nil {
			return "", fmt.Errorf("loopauthtest: landing address: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, body, err = do(client, req); err != nil {
			return "", err
		}
	}
	if landing == "" {
		return "", fmt.Errorf("loopauthtest: landing address: the provider answered %s%s and sent the browser nowhere", resp.Status, snippet(body))
	}
	return landing, nil
}
