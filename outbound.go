package loopauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// This file is the library's only way out to the network: the HTTP clients
// (the caller's, copied, with our redirect rule; or ours, with timeouts),
// the capped GET of discovery documents and key sets, and the capped POST
// of token and revocation requests. Each call is logged at debug level
// without its query, headers or body.

// Timeouts of the default HTTP client for token requests. Go's default
// client has none, and a token endpoint that never answers would hang the
// CLI.
const (
	tokenRequestTimeout   = 30 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 15 * time.Second
)

// tokenHTTPClient returns the client for token requests: a copy of the
// caller's client (or a default with timeouts) that never follows
// redirects. The caller's client is not modified (CVE-2024-28110 came from
// a library mutating a shared client).
func tokenHTTPClient(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// A CLI makes one token request per flow or refresh: an idle
		// keep-alive connection would only be a goroutine left running
		// after the call returns.
		t.DisableKeepAlives = true
		t.TLSHandshakeTimeout = tlsHandshakeTimeout
		t.ResponseHeaderTimeout = responseHeaderTimeout
		out = http.Client{Transport: t, Timeout: tokenRequestTimeout}
	}
	// Go replays a POST body on 307/308, which would send the code and
	// verifier, or the refresh token, to wherever the redirect points.
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}

// postForm sends one form to a provider endpoint (what: "token",
// "revocation") with the client's authentication, and reads the answer,
// capped. The body (codes, tokens, the secret) is never part of an error.
func (c *CLITokenClient) postForm(ctx context.Context, what string, endpoint *url.URL, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), strings.NewReader(body))
	if err != nil {
		return nil, nil, errorf("loopauth: building the %s request: %w", what, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.authMethod == ClientSecretBasic {
		// RFC 6749 §2.3.1: each half form-encoded, then base64 (a ":" or
		// "%" in a secret would otherwise be misread).
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.clientID)+":"+url.QueryEscape(c.clientSecret.reveal()))))
	}
	start := time.Now()
	resp, err := c.httpClient.Do(req)
	if err != nil {
		logCall(c.logger, req, 0, 0, start)
		// *url.Error names the endpoint, which holds no secret.
		return nil, nil, errorf("loopauth: %s request failed: %w", what, err)
	}
	defer resp.Body.Close()
	data, err := readCapped(resp.Body, maxTokenResponseBytes)
	logCall(c.logger, req, resp.StatusCode, len(data), start)
	if err != nil {
		return nil, nil, errorf("loopauth: reading the %s response (HTTP %d): %w", what, resp.StatusCode, err)
	}
	return resp, data, nil
}

// maxMetadataRedirects bounds redirects when fetching discovery documents
// and key sets.
const maxMetadataRedirects = 3

// metadataHTTPClientFrom is the client for discovery documents and key
// sets: a copy of c (or the default of tokenHTTPClient) with the redirect
// policy of checkMetadataRedirect, whatever the original's was.
func metadataHTTPClientFrom(c *http.Client) *http.Client {
	out := tokenHTTPClient(c)
	out.CheckRedirect = checkMetadataRedirect
	return out
}

// checkMetadataRedirect follows at most maxMetadataRedirects redirects,
// from https to https, or from http to http between loopback hosts (a local
// provider). Anything else would let a redirect downgrade the fetch to
// plain http, where the document can be replaced in transit. A redirect to
// another host is followed: the discovery document's issuer is still
// compared with the configured one.
func checkMetadataRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxMetadataRedirects {
		return errorf("refusing redirect %d: at most %d are followed", len(via), maxMetadataRedirects)
	}
	from, to := via[len(via)-1].URL, req.URL // net/http passes at least the first request
	switch {
	case to.User != nil:
		return errors.New("refusing a redirect to a URL with user information")
	case from.Scheme == "https" && to.Scheme == "https":
	case from.Scheme == "http" && to.Scheme == "http" && isLoopbackHost(from.Hostname()) && isLoopbackHost(to.Hostname()):
	default:
		return errorf("refusing a redirect from %s to %s: only https to https is followed (http only between loopback hosts)",
			from.Scheme, sanitizeText(to.Scheme, 16))
	}
	return nil
}

// logCall logs one provider call at debug level: method, the URL without
// its query (where a misconfigured endpoint could carry a secret), status
// (0: no answer), body bytes read and duration. Never a header or a body.
func logCall(l *slog.Logger, req *http.Request, status, n int, start time.Time) {
	if l != nil {
		u := *req.URL
		u.RawQuery, u.Fragment, u.User = "", "", nil
		l.Debug("loopauth: provider call", "method", req.Method, "url", sanitizeText(u.String(), maxQuotedURL),
			"status", status, "bytes", n, "duration", time.Since(start).Round(time.Millisecond))
	}
}

// getJSON fetches a JSON document of at most limit bytes. Status 200 and a
// JSON content type are required; neither a non-200 body nor a non-JSON one
// is read (it is usually an HTML error or login page), and no body is ever
// quoted in an error. Errors name the URL, sanitized and cut.
func getJSON(ctx context.Context, client *http.Client, logger *slog.Logger, rawURL string, limit int64) (data []byte, _ http.Header, err error) {
	shown := sanitizeText(rawURL, maxQuotedURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, errorf("building the request for %s: %w", shown, boundedError{err})
	}
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		logCall(logger, req, 0, 0, start)
		return nil, nil, boundedError{err}
	}
	defer resp.Body.Close()
	defer func() { logCall(logger, req, resp.StatusCode, len(data), start) }()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, errorf("%s answered HTTP %d, expected 200", shown, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !isJSONMediaType(ct) {
		return nil, nil, errorf("%s answered with content type %q, expected application/json", shown, sanitizeText(ct, 64))
	}
	if data, err = readCapped(resp.Body, limit); err != nil {
		return nil, nil, errorf("reading %s: %w", shown, boundedError{err})
	}
	return data, resp.Header, nil
}

// maxQuotedURL caps a URL quoted in an error.
const maxQuotedURL = 256

// boundedError keeps an error matchable with errors.Is and errors.As but
// sanitizes and caps its text: a transport error quotes the redirect target
// or Location header, which the server chose.
type boundedError struct{ err error }

func (e boundedError) Error() string {
	// The URL comes first in a *url.Error and can be any length: it is cut
	// on its own so that the reason after it survives.
	if ue, ok := e.err.(*url.Error); ok && ue.Err != nil {
		return fmt.Sprintf("%s %q: %s", ue.Op, sanitizeText(ue.URL, maxQuotedURL), sanitizeText(ue.Err.Error(), 2*maxQuotedURL))
	}
	return sanitizeText(e.err.Error(), 2*maxQuotedURL)
}

func (e boundedError) Unwrap() error { return e.err }

// isJSONMediaType reports whether a Content-Type names JSON:
// application/json or a structured "+json" type (RFC 6839), whatever its
// parameters (charset=utf-8) and letter case.
func isJSONMediaType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	typ, sub, _ := strings.Cut(mt, "/")
	return mt == "application/json" || (typ != "" && len(sub) > len("+json") && strings.HasSuffix(sub, "+json"))
}
