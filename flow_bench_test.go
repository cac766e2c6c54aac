package loopauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/loopauth/loopauth/loopauthtest"
)

// BenchmarkAuthorizationFlow measures one whole flow against loopauthtest:
// bind, serve, authorize redirect, callback, token exchange, page, and
// teardown. Compare with BenchmarkAuthorizationFlowFloor, the same round
// trips written with bare net/http; run both with "make bench".
func BenchmarkAuthorizationFlow(b *testing.B) {
	p := loopauthtest.NewProvider(b)
	c, err := NewBuilder().ClientID("bench").AuthURL(p.AuthURL()).TokenURL(p.TokenURL()).
		AddScopes(ScopeEmail).BrowserOpener(p.Browser()).Build()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.RunAuthorizationFlow(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorizationFlowFloor is the floor: the same user agent, the
// same requests and connections (a callback server on 127.0.0.1, one
// authorize GET with its redirect, one token POST on a new connection, one
// page), with none of the library's checks, and a fixed page.
func BenchmarkAuthorizationFlowFloor(b *testing.B) {
	p := loopauthtest.NewProvider(b)
	browser := p.Browser()
	tokenClient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		floorFlow(b, ctx, p, browser, tokenClient)
	}
}

func floorFlow(b *testing.B, ctx context.Context, p *loopauthtest.Provider, browser func(context.Context, string) error, tokenClient *http.Client) {
	raw := make([]byte, 64)
	rand.Read(raw)
	verifier := base64.RawURLEncoding.EncodeToString(raw[:32])
	state := base64.RawURLEncoding.EncodeToString(raw[32:])
	sum := sha256.Sum256([]byte(verifier))

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	redirect := "http://" + ln.Addr().String() + "/callback"
	codes := make(chan string)
	pages := make(chan string)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("state") != state {
			http.Error(w, "bad state", 400)
			return
		}
		codes <- r.URL.Query().Get("code")
		page := <-pages
		// No "Connection: close", as the library's server sends none: a
		// server that closes first leaves its port in TIME_WAIT, and Linux
		// then searches ever longer for a free port on the next bind of
		// 127.0.0.1:0, which made this floor slower than the library.
		io.WriteString(w, page)
	})}
	go srv.Serve(ln)

	q := url.Values{
		"response_type": {"code"}, "client_id": {"bench"}, "redirect_uri": {redirect},
		"state": {state}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}, "scope": {"email"},
	}
	done := make(chan error, 1)
	go func() { done <- browser(ctx, p.AuthURL()+"?"+q.Encode()) }()

	code := <-codes
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"client_id": {"bench"}, "code_verifier": {verifier}}
	req, _ := http.NewRequestWithContext(ctx, "POST", p.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := tokenClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.AccessToken == "" {
		b.Fatalf("token: %v", err)
	}
	pages <- "<!DOCTYPE html><title>ok</title><p>Authentication successful</p>"
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	srv.Close()
}
