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
		"two segments":        "a.b",
		"four segments":       "a.b.c.d",
		"empty signature":     compact(`{}`)[:strings.LastIndex(compact(`{}`), ".")+1],
		"padding":             "eyJhIjoxfQ==.eyJhIjoxfQ.c2ln",
		"CRLF in segment":     "eyJhIjoxfQ.eyJh\r\nIjoxfQ.c2ln",
		"standard alphabet":   "eyJhIjoxfQ.ab+/.c2ln",
		"too long":            strings.Repeat("a", maxCompactJWTBytes) + ".b.c",
		"missing sub":         compact(`{"iss":"https://i","exp":2000000000,"iat":1}`),
		"missing iss":         compact(`{"sub":"s","exp":2000000000,"iat":1}`),
		"missing exp":         compact(`{"sub":"s","iss":"https://i","iat":1}`),
		"missing iat":         compact(`{"sub":"s","iss":"https://i","exp":2000000000}`),
		"string exp":          compact(`{"sub":"s","iss":"https://i","exp":"2000000000","iat":1}`),
		"negative exp":        compact(`{"sub":"s","iss":"https://i","exp":-1,"iat":1}`),
		"year 10000":          compact(`{"sub":"s","iss":"https://i","exp":1e12,"iat":1}`),
		"numeric aud":         compact(`{"sub":"s","iss":"https://i","aud":5,"exp":2000000000,"iat":1}`),
		"email_verified 1":    compact(`{"sub":"s","iss":"https://i","exp":2000000000,"iat":1,"email_verified":1}`),
		"duplicate sub":       compact(`{"sub":"s","sub":"t","iss":"https://i","exp":2000000000,"iat":1}`),
		"case-variant sub":    compact(`{"sub":"s","SUB":"t","iss":"https://i","exp":2000000000,"iat":1}`),
		"numeric sub":         compact(`{"sub":5,"iss":"https://i","exp":2000000000,"iat":1}`),
		"payload not object":  compact(`[1]`),
		"J-27 payload string": compact(`"str"`),
		"J-27 invalid UTF-8":  compact("{\"sub\":\"\xff\",\"iss\":\"https://i\",\"exp\":2000000000,\"iat\":1}"),
		"J-27 trailing data":  compact(`{"sub":"s","iss":"https://i","exp":2000000000,"iat":1} x`),
		"J-29 deep nesting":   compact(`{"sub":"s","iss":"https://i","exp":2000000000,"iat":1,"x":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`),
	}
	for name, raw := range bad {
		if _, err := parseIDTokenUnverified(raw); !errors.Is(err, ErrMalformedJWT) {
			t.Errorf("%s: err = %v", name, err)
		}
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
