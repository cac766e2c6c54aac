package loopauth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func compact(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(payload)) + "." + enc([]byte("sig"))
}

// TestParseIDTokenUnverified covers the claim shapes real providers send
// and the compact-form rules. Signature checks come with OpenID support.
func TestParseIDTokenUnverified(t *testing.T) {
	good := []struct {
		payload string
		check   func(*Claims) bool
	}{
		{`{"sub":"s","iss":"https://i","aud":"c","exp":2000000000,"iat":1000000000}`, func(c *Claims) bool {
			return len(c.Audience) == 1 && c.Audience[0] == "c" && c.Expiry.Equal(time.Unix(2000000000, 0))
		}},
		{`{"sub":"s","iss":"https://i","aud":["a","b"],"exp":2000000000.5,"iat":1000000000,"nbf":1000000000}`, func(c *Claims) bool {
			return len(c.Audience) == 2 && c.Expiry.Equal(time.Unix(2000000000, 5e8)) && !c.NotBefore.IsZero()
		}},
		{`{"sub":"s","iss":"https://i","exp":2000000000,"iat":1,"email":"e@x","email_verified":"true","name":"N","azp":"c","nonce":"n"}`, func(c *Claims) bool {
			return c.EmailVerified && c.Email == "e@x" && c.Name == "N" && c.AuthorizedParty == "c" && c.Nonce == "n"
		}},
	}
	for _, tc := range good {
		tok, err := parseIDTokenUnverified(compact(tc.payload))
		if err != nil {
			t.Errorf("%s: %v", tc.payload, err)
			continue
		}
		if !tc.check(tok.Claims()) {
			t.Errorf("%s: claims = %+v", tc.payload, tok.Claims())
		}
	}
	bad := map[string]string{
		"two segments":       "a.b",
		"four segments":      "a.b.c.d",
		"empty signature":    compact(`{}`)[:strings.LastIndex(compact(`{}`), ".")+1],
		"padding":            "eyJhIjoxfQ==.eyJhIjoxfQ.c2ln",
		"CRLF in segment":    "eyJhIjoxfQ.eyJh\r\nIjoxfQ.c2ln",
		"standard alphabet":  "eyJhIjoxfQ.ab+/.c2ln",
		"too long":           strings.Repeat("a", maxCompactJWTBytes) + ".b.c",
		"missing sub":        compact(`{"iss":"https://i","exp":2000000000,"iat":1}`),
		"missing iss":        compact(`{"sub":"s","exp":2000000000,"iat":1}`),
		"missing exp":        compact(`{"sub":"s","iss":"https://i","iat":1}`),
		"missing iat":        compact(`{"sub":"s","iss":"https://i","exp":2000000000}`),
		"string exp":         compact(`{"sub":"s","iss":"https://i","exp":"2000000000","iat":1}`),
		"negative exp":       compact(`{"sub":"s","iss":"https://i","exp":-1,"iat":1}`),
		"year 10000":         compact(`{"sub":"s","iss":"https://i","exp":1e12,"iat":1}`),
		"numeric aud":        compact(`{"sub":"s","iss":"https://i","aud":5,"exp":2000000000,"iat":1}`),
		"email_verified 1":   compact(`{"sub":"s","iss":"https://i","exp":2000000000,"iat":1,"email_verified":1}`),
		"duplicate sub":      compact(`{"sub":"s","sub":"t","iss":"https://i","exp":2000000000,"iat":1}`),
		"case-variant sub":   compact(`{"sub":"s","SUB":"t","iss":"https://i","exp":2000000000,"iat":1}`),
		"numeric sub":        compact(`{"sub":5,"iss":"https://i","exp":2000000000,"iat":1}`),
		"payload not object": compact(`[1]`),
	}
	for name, raw := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := parseIDTokenUnverified(raw); !errors.Is(err, ErrMalformedJWT) {
				t.Errorf("err = %v", err)
			}
		})
	}
	// J-27: payloads that are not one JSON object, and J-29: claims nested
	// beyond the depth limit in a member nobody reads. Each is refused with
	// ErrMalformedJWT, for the stated reason.
	const claims = `"sub":"s","iss":"https://i","exp":2000000000,"iat":1`
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct {
		id, payload, why string
	}{
		{"J-27 payload []", `[]`, "not a JSON object"},
		{"J-27 payload string", `"str"`, "not a JSON object"},
		{"J-27 payload number", `42`, "not a JSON object"},
		{"J-27 invalid UTF-8", "{\"sub\":\"\xff\",\"iss\":\"https://i\",\"exp\":2000000000,\"iat\":1}", "not valid UTF-8"},
		{"J-27 object and garbage", `{` + claims + `} x`, "data after the top-level value"},
		{"J-27 two objects", `{` + claims + `}{}`, "data after the top-level value"},
		{"J-27 40 KiB of nested arrays", nested(20 << 10), "nested deeper than"},
		{"J-27 60 KiB of nested arrays", nested(30 << 10), "longer than"}, // the 64 KiB cap comes first
		{"J-29 depth 1000 in an unknown member", `{` + claims + `,"x":` + nested(1000) + `}`, "nested deeper than 32 levels"},
		{"J-29 depth 33 in an unknown member", `{` + claims + `,"x":{"y":` + nested(maxJSONDepth-1) + `}}`, "nested deeper than 32 levels"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			_, err := parseIDTokenUnverified(compact(tc.payload))
			if !errors.Is(err, ErrMalformedJWT) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("err = %v; want ErrMalformedJWT saying %q", err, tc.why)
			}
		})
	}
	// Just within the depth limit is fine.
	if _, err := parseIDTokenUnverified(compact(`{` + claims + `,"x":` + nested(maxJSONDepth-1) + `}`)); err != nil {
		t.Errorf("depth %d: %v", maxJSONDepth, err)
	}
}

// FuzzParseIDTokenUnverified: any string yields claims or ErrMalformedJWT.
func FuzzParseIDTokenUnverified(f *testing.F) {
	seedFromTestdata(f, "jwt")
	f.Fuzz(func(t *testing.T, raw []byte) {
		tok, err := parseIDTokenUnverified(string(raw))
		if err != nil {
			if !errors.Is(err, ErrMalformedJWT) && !errors.Is(err, ErrAlgNotAllowed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		c := tok.Claims()
		if c.Subject == "" || c.Issuer == "" || c.Expiry.IsZero() || c.IssuedAt.IsZero() {
			t.Fatalf("accepted incomplete claims %+v", c)
		}
	})
}
