package loopauthtest

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, target string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestAuthorizeRejects(t *testing.T) {
	const cbURL = "http://127.0.0.1:4242/callback"
	tests := []struct {
		name   string
		opts   []Option
		mutate func(v url.Values)
		raw    string // appended to the query as is
		code   string // "" means a 400 page, otherwise the redirected error
	}{
		{name: "missing client_id", mutate: func(v url.Values) { v.Del("client_id") }},
		{name: "repeated client_id", mutate: func(v url.Values) { v.Add("client_id", "cli") }},
		{name: "unregistered client", opts: []Option{WithClient("app", "")}},
		{name: "missing redirect_uri", mutate: func(v url.Values) { v.Del("redirect_uri") }},
		{name: "repeated redirect_uri", mutate: func(v url.Values) { v.Add("redirect_uri", cbURL) }},
		{name: "non-loopback redirect", mutate: func(v url.Values) { v.Set("redirect_uri", "http://evil.example/callback") }},
		{name: "loopback look-alike", mutate: func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1.evil.example/cb") }},
		{name: "userinfo", mutate: func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:80@evil.example/cb") }},
		{name: "userinfo on loopback", mutate: func(v url.Values) { v.Set("redirect_uri", "http://user@127.0.0.1:4242/callback") }},
		{name: "fragment", mutate: func(v url.Values) { v.Set("redirect_uri", cbURL+"#frag") }},
		{name: "custom scheme", mutate: func(v url.Values) { v.Set("redirect_uri", "com.example.app://127.0.0.1/cb") }},
		{name: "bare IPv6", mutate: func(v url.Values) { v.Set("redirect_uri", "http://::1:80/cb") }},
		{name: "bad port", mutate: func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:99999/cb") }},
		{name: "relative", mutate: func(v url.Values) { v.Set("redirect_uri", "/callback") }},
		{name: "malformed query", raw: "&%zz"},
		{name: "missing PKCE", mutate: func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, code: "invalid_request"},
		{name: "plain PKCE", mutate: func(v url.Values) { v.Set("code_challenge_method", "plain") }, code: "invalid_request"},
		{name: "no method", mutate: func(v url.Values) { v.Del("code_challenge_method") }, code: "invalid_request"},
		{name: "short challenge", mutate: func(v url.Values) { v.Set("code_challenge", "abc") }, code: "invalid_request"},
		{name: "bad challenge chars", mutate: func(v url.Values) { v.Set("code_challenge", strings.Repeat("+", 43)) }, code: "invalid_request"},
		{name: "token response type", mutate: func(v url.Values) { v.Set("response_type", "token") }, code: "unsupported_response_type"},
		{name: "missing response type", mutate: func(v url.Values) { v.Del("response_type") }, code: "invalid_request"},
		{name: "repeated scope", mutate: func(v url.Values) { v.Add("scope", "admin") }, code: "invalid_request"},
		{name: "missing state", mutate: func(v url.Values) { v.Del("state") }, code: "invalid_request"},
		{name: "form_post", mutate: func(v url.Values) { v.Set("response_mode", "form_post") }, code: "invalid_request"},
		{name: "bad scope chars", mutate: func(v url.Values) { v.Set("scope", `openid "quoted"`) }, code: "invalid_scope"},
		{name: "configured error", opts: []Option{WithAuthorizeError("access_denied", "nope", "https://err.example/x")}, code: "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProvider(t, tt.opts...)
			f := newFlow(t, cbURL)
			v := f.params()
			if tt.mutate != nil {
				tt.mutate(v)
			}
			resp, body := get(t, authURL(p, v)+tt.raw)
			loc := resp.Header.Get("Location")
			if tt.code == "" {
				if resp.StatusCode != http.StatusBadRequest || loc != "" {
					t.Fatalf("got %s Location %q, want a 400 page without redirect", resp.Status, loc)
				}
				if !strings.Contains(body, "invalid authorization request") {
					t.Errorf("page body %q", body)
				}
				return
			}
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, cbURL+"?") {
				t.Fatalf("got %s Location %q, want a redirect to the callback", resp.Status, loc)
			}
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("error") != tt.code || q.Get("code") != "" {
				t.Fatalf("redirect query %v, want error=%s and no code", q, tt.code)
			}
			if _, ok := v["state"]; ok && q.Get("state") != f.state {
				t.Errorf("state %q not echoed", q.Get("state"))
			}
			if tt.opts != nil && (q.Get("error_description") != "nope" || q.Get("error_uri") != "https://err.example/x") {
				t.Errorf("configured error lost its description or uri: %v", q)
			}
		})
	}
}

func TestAuthorizeAcceptsLoopbackForms(t *testing.T) {
	p := NewProvider(t)
	for _, uri := range []string{
		"http://127.0.0.1/cb", "http://127.0.0.1:1/cb", "http://[::1]:8080/cb",
		"http://localhost:65535/", "https://127.0.0.1:8443/callback?x=1", "http://localhost",
	} {
		f := newFlow(t, uri)
		resp, _ := get(t, authURL(p, f.params()))
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, uri) || !strings.Contains(loc, "code=") {
			t.Errorf("%s: got %s Location %q", uri, resp.Status, loc)
		}
	}
}

func TestTokenRejects(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := &fakeClock{t: now}
	p := NewProvider(t, WithNow(clock.Now))
	cb := newCallback(t)

	tests := []struct {
		name   string
		mutate func(f *flow, form url.Values)
		status int
		code   string
	}{
		{"wrong verifier", func(_ *flow, v url.Values) { v.Set("code_verifier", strings.Repeat("a", 43)) }, 400, "invalid_grant"},
		{"short verifier", func(_ *flow, v url.Values) { v.Set("code_verifier", "abc") }, 400, "invalid_grant"},
		{"missing verifier", func(_ *flow, v url.Values) { v.Del("code_verifier") }, 400, "invalid_request"},
		{"wrong redirect_uri", func(f *flow, v url.Values) { v.Set("redirect_uri", f.redirectURI+"/") }, 400, "invalid_grant"},
		{"missing redirect_uri", func(_ *flow, v url.Values) { v.Del("redirect_uri") }, 400, "invalid_request"},
		{"other client", func(_ *flow, v url.Values) { v.Set("client_id", "other") }, 400, "invalid_grant"},
		{"missing client_id", func(_ *flow, v url.Values) { v.Del("client_id") }, 400, "invalid_request"},
		{"unknown code", func(_ *flow, v url.Values) { v.Set("code", "forged") }, 400, "invalid_grant"},
		{"missing code", func(_ *flow, v url.Values) { v.Del("code") }, 400, "invalid_request"},
		{"repeated code", func(_ *flow, v url.Values) { v.Add("code", v.Get("code")) }, 400, "invalid_request"},
		{"unknown grant", func(_ *flow, v url.Values) { v.Set("grant_type", "password") }, 400, "unsupported_grant_type"},
		{"missing grant", func(_ *flow, v url.Values) { v.Del("grant_type") }, 400, "invalid_request"},
		{"expired code", func(*flow, url.Values) { clock.Set(now.Add(11 * time.Minute)) }, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Set(now)
			f := newFlow(t, cb.URL())
			code := authorize(t, p, f, cb)
			form := f.exchangeForm(code)
			tt.mutate(f, form)
			wantTokenError(t, postToken(t, p, form), tt.status, tt.code)
			clock.Set(now)
			if tt.code == "invalid_grant" && tt.name != "unknown code" {
				// A failed attempt consumes the code: no second guess.
				wantTokenError(t, postToken(t, p, f.exchangeForm(code)), 400, "invalid_grant")
			}
		})
	}
}

func TestTokenEndpointHostileRequests(t *testing.T) {
	p := NewProvider(t)
	t.Run("GET", func(t *testing.T) {
		resp, body := get(t, p.TokenURL()+"?grant_type=authorization_code")
		if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(body, "invalid_request") {
			t.Fatalf("GET /token: %s %s", resp.Status, body)
		}
	})
	t.Run("JSON body", func(t *testing.T) {
		r := postForm(t, p.TokenURL(), url.Values{"grant_type": {"authorization_code"}}, func(r *http.Request) {
			r.Header.Set("Content-Type", "application/json")
		})
		wantTokenError(t, r, 400, "invalid_request")
	})
	t.Run("oversized body", func(t *testing.T) {
		r := postToken(t, p, url.Values{"grant_type": {"authorization_code"}, "code": {strings.Repeat("x", 100<<10)}})
		wantTokenError(t, r, 400, "invalid_request")
	})
	t.Run("malformed form", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, p.TokenURL(), strings.NewReader("grant_type=%zz"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("malformed basic", func(t *testing.T) {
		r := postForm(t, p.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, func(r *http.Request) {
			r.SetBasicAuth("%zz", "x")
		})
		wantTokenError(t, r, 401, "invalid_client")
	})
	t.Run("unknown paths and methods", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{{"GET", "/"}, {"POST", "/jwks"}, {"POST", "/authorize"}, {"GET", "/authorize/decision"}} {
			req, _ := http.NewRequest(c.method, p.Issuer()+c.path, nil)
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode > 499 {
				t.Errorf("%s %s: %s, want 4xx", c.method, c.path, resp.Status)
			}
		}
	})
	if n := len(p.TokenRequests()); n < 4 {
		t.Errorf("TokenRequests recorded %d requests, want the hostile ones too", n)
	}
}

func TestInvalidOptions(t *testing.T) {
	for name, opt := range map[string]Option{
		"alg":                        WithSigningAlg("HS256"),
		"client":                     WithClient("", "x"),
		"token status":               WithTokenError(99, "x", ""),
		"raw status":                 WithRawTokenResponse(1000, "", ""),
		"nil clock":                  WithNow(nil),
		"revocation status":          WithRevocationError(600, "x", ""),
		"unrevocable id_token":       WithoutRevocationOf("id_token"),
		"empty introspection secret": WithIntrospectionCredentials("api", ""),
		"empty state path":           WithStateFile(""),
		"addr: all interfaces":       WithAddr("0.0.0.0:0"),
		"addr: a name":               WithAddr("localhost:0"),
		"addr: no port":              WithAddr("127.0.0.1"),
		"addr: bad port":             WithAddr("127.0.0.1:65536"),
		"addr: public IP":            WithAddr("192.0.2.1:80"),
	} {
		p, err := StartProvider(opt)
		if err == nil || p != nil {
			t.Errorf("%s: StartProvider = %v, %v; want an error", name, p, err)
			if p != nil {
				p.Close()
			}
		}
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	p, err := StartProvider()
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	p.Close()
	if resp, err := noRedirect.Get(p.JWKSURL()); err == nil {
		resp.Body.Close()
		t.Fatal("provider still answers after Close")
	}
}
