package loopauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

func secretTokenSet() *TokenSet {
	return &TokenSet{
		accessToken:  secretAccess,
		refreshToken: secretRefresh,
		tokenType:    "Bearer",
		expiresAt:    time.Unix(2000000000, 0),
		scopes:       []Scope{ScopeEmail, "read"},
	}
}

// TestTokenSetRedaction covers L-01: no fmt verb and no slog handler
// prints a token.
func TestTokenSetRedaction(t *testing.T) {
	ts := secretTokenSet()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		out := fmt.Sprintf(verb, ts)
		assertNoSecret(t, out)
		if verb == "%v" && !strings.Contains(out, "[redacted]") {
			t.Errorf("%s = %q lacks [redacted]", verb, out)
		}
	}
	// Inside other values, too.
	assertNoSecret(t, fmt.Sprintf("%+v", struct{ T *TokenSet }{ts}))
	assertNoSecret(t, fmt.Sprintf("%v", []*TokenSet{ts}))

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(h).Info("tokens", "ts", ts)
	}
	assertNoSecret(t, buf.String())
	if !strings.Contains(buf.String(), "has_refresh_token") {
		t.Errorf("slog output lacks the redacted group: %s", buf.String())
	}
	var nilTS *TokenSet
	_ = fmt.Sprint(nilTS) // must not panic
}

// TestTokenSetJSON checks the Rust crate's storage format in both
// directions.
func TestTokenSetJSON(t *testing.T) {
	ts := secretTokenSet()
	data, err := json.Marshal(ts)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(data, &m)
	if m["access_token"] != secretAccess || m["refresh_token"] != secretRefresh || m["token_type"] != "Bearer" || m["expires_at"] != float64(2000000000) || m["oidc"] != nil {
		t.Errorf("format = %s", data)
	}
	var back TokenSet
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.AccessToken() != secretAccess || back.RefreshToken() != secretRefresh || !back.ExpiresAt().Equal(ts.ExpiresAt()) || joinScopes(back.Scopes()) != "email read" {
		t.Errorf("round trip = %v", &back)
	}

	// What the Rust crate writes: nulls, no scopes key.
	rust := `{"access_token":"a","refresh_token":null,"expires_at":null,"token_type":"Bearer","oidc":null}`
	var r TokenSet
	if err := json.Unmarshal([]byte(rust), &r); err != nil {
		t.Fatal(err)
	}
	if r.RefreshToken() != "" || !r.ExpiresAt().IsZero() || len(r.Scopes()) != 0 || r.IDToken() != nil {
		t.Errorf("rust format = %v", &r)
	}
	empty := &TokenSet{accessToken: "a", tokenType: "Bearer"}
	if data, _ := json.Marshal(empty); !strings.Contains(string(data), `"scopes":[]`) || !strings.Contains(string(data), `"refresh_token":null`) {
		t.Errorf("empty set = %s", data)
	}
}

// TestTokenSetJSONWithIDToken checks that oidc.raw is decoded again and
// stored claims are ignored.
func TestTokenSetJSONWithIDToken(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"user_42","iss":"https://as.example","aud":"cli","exp":9999999999,"iat":1000000000,"email":"u@example.com","email_verified":true}`))
	raw := "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
	in := `{"access_token":"a","token_type":"Bearer","oidc":{"raw":"` + raw + `","claims":{"sub":"forged"}},"scopes":["openid"]}`
	var ts TokenSet
	if err := json.Unmarshal([]byte(in), &ts); err != nil {
		t.Fatal(err)
	}
	c := ts.IDToken().Claims()
	if c.Subject != "user_42" || c.Email != "u@example.com" || !c.EmailVerified || len(c.Audience) != 1 || c.Audience[0] != "cli" {
		t.Errorf("claims = %+v", c)
	}
	if ts.IDTokenRaw() != raw {
		t.Error("raw not kept")
	}
	var custom struct {
		Email string `json:"email"`
	}
	if err := c.Unmarshal(&custom); err != nil || custom.Email != "u@example.com" {
		t.Errorf("Unmarshal = %v, %v", custom, err)
	}
	out, _ := json.Marshal(&ts)
	if !strings.Contains(string(out), `"sub":"user_42"`) || strings.Contains(string(out), "forged") {
		t.Errorf("marshal = %s", out)
	}
}

// TestTokenSetJSONHostile covers L-06 style bad stored input: every case
// is a typed error, never a panic or a partial set.
func TestTokenSetJSONHostile(t *testing.T) {
	cases := map[string]string{
		"empty":               ``,
		"not an object":       `[]`,
		"truncated":           `{"access_token":"a","token_type":"Bea`,
		"missing access":      `{"token_type":"Bearer"}`,
		"missing type":        `{"access_token":"a"}`,
		"mac type":            `{"access_token":"a","token_type":"mac"}`,
		"duplicate member":    `{"access_token":"a","access_token":"b","token_type":"Bearer"}`,
		"case variant":        `{"Access_Token":"a","token_type":"Bearer"}`,
		"CRLF token":          `{"access_token":"a\r\nb","token_type":"Bearer"}`,
		"negative expiry":     `{"access_token":"a","token_type":"Bearer","expires_at":-5}`,
		"float expiry":        `{"access_token":"a","token_type":"Bearer","expires_at":1.5}`,
		"string expiry":       `{"access_token":"a","token_type":"Bearer","expires_at":"5"}`,
		"year 10000":          `{"access_token":"a","token_type":"Bearer","expires_at":253402300800}`,
		"bad scope":           `{"access_token":"a","token_type":"Bearer","scopes":["a b"]}`,
		"bad id token":        `{"access_token":"a","token_type":"Bearer","oidc":{"raw":"x.y"}}`,
		"trailing data":       `{"access_token":"a","token_type":"Bearer"} {}`,
		"invalid UTF-8":       "{\"access_token\":\"a\xff\",\"token_type\":\"Bearer\"}",
		"deep nesting":        `{"access_token":"a","token_type":"Bearer","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
		"refresh not printed": `{"access_token":"a","token_type":"Bearer","refresh_token":"\u0007"}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			ts := TokenSet{accessToken: "untouched"}
			err := json.Unmarshal([]byte(in), &ts)
			if err == nil {
				t.Fatalf("accepted: %v", &ts)
			}
			if ts.accessToken != "untouched" {
				t.Error("failed unmarshal modified the receiver")
			}
			var syntax *json.SyntaxError
			if !errors.Is(err, ErrInvalidTokenSet) && !errors.As(err, &syntax) {
				t.Errorf("err = %v, want ErrInvalidTokenSet", err)
			}
		})
	}
}

func TestTokenSetExpiry(t *testing.T) {
	cases := []struct {
		name      string
		expiresAt time.Time
		expired   bool
		within60  bool
	}{
		{"epoch", time.Unix(0, 0), true, true},
		{"unknown", time.Time{}, false, false},
		{"in 30s", time.Now().Add(30 * time.Second), false, true},
		{"in an hour", time.Now().Add(time.Hour), false, false},
		{"a second ago", time.Now().Add(-time.Second), true, true},
	}
	for _, tc := range cases {
		ts := &TokenSet{expiresAt: tc.expiresAt}
		if ts.IsExpired() != tc.expired || ts.ExpiresWithin(time.Minute) != tc.within60 {
			t.Errorf("%s: IsExpired = %v, ExpiresWithin(1m) = %v", tc.name, ts.IsExpired(), ts.ExpiresWithin(time.Minute))
		}
	}
}

// FuzzTokenSetJSON: stored token sets are untrusted files. Whatever the
// input, unmarshalling must not panic, and an accepted set must survive a
// round trip unchanged.
func FuzzTokenSetJSON(f *testing.F) {
	seedFromTestdata(f, "tokenset")
	f.Fuzz(func(t *testing.T, data []byte) {
		var ts TokenSet
		if json.Unmarshal(data, &ts) != nil {
			return
		}
		out, err := json.Marshal(&ts)
		if err != nil {
			t.Fatal(err)
		}
		var back TokenSet
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("re-reading %s: %v", out, err)
		}
		if back.String() != ts.String() || back.accessToken != ts.accessToken || back.refreshToken != ts.refreshToken {
			t.Fatalf("round trip changed the set: %s", out)
		}
	})
}

// seedFromTestdata adds every file under testdata/fuzz-seeds/<name>/ to f.
func seedFromTestdata(f *testing.F, name string) {
	dir := "testdata/seeds/" + name
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatalf("seeds: %v", err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// TestClientRedaction covers L-01 for the builder, the client and ID
// tokens: no fmt verb prints the client secret or the ID token.
func TestClientRedaction(t *testing.T) {
	b := validBuilder().ClientSecret(secretClient)
	c, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u","iss":"https://as.example","aud":"my-client","exp":9999999999,"iat":1}`))
	idt, err := parseIDTokenUnverified("eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{b, c, idt, struct{ C *CLITokenClient }{c}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x"} {
			out := fmt.Sprintf(verb, v)
			assertNoSecret(t, out)
			if strings.Contains(out, fmt.Sprintf("%x", secretClient)) || strings.Contains(out, payload) {
				t.Errorf("%T with %s leaks: %s", v, verb, out)
			}
		}
	}
	if s := fmt.Sprint(c); !strings.Contains(s, "client_secret: [redacted]") || !strings.Contains(s, "my-client") {
		t.Errorf("description = %s", s)
	}
}
