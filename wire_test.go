package loopauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestCheckStrictJSON(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{`{}`, true},
		{`{"a":1,"b":[{"a":1},{"a":2}],"c":{"a":null}}`, true},
		{`"x"`, true},
		{`{"a":1,"a":2}`, false},
		{`{"a":{"b":1,"b":2}}`, false},
		{`[{"k":1,"k":1}]`, false},
		{`{"a":1} {"b":2}`, false},
		{`{"a":1}x`, false},
		{``, false},
		{`{"a":`, false},
		{"{\"a\":\"\xff\"}", false},
		{strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth), true},
		{strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1), false},
		{`{"a" 1}`, false},
	}
	for _, tc := range cases {
		err := checkStrictJSON([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("checkStrictJSON(%.40q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestDecodeStrictMembers(t *testing.T) {
	names := []string{"access_token", "token_type"}
	m, err := decodeStrictMembers([]byte(`{"other":{"access_token":1},"access_token":"a","x":[1]}`), names)
	if err != nil || string(m[0]) != `"a"` || m[1] != nil {
		t.Errorf("exact names: %v %q %q", err, m[0], m[1])
	}
	for _, in := range []string{
		`{"ACCESS_TOKEN":"a"}`,
		`{"access_token":"a","Access_token":"b"}`,
		`{"access_to\u212aen":"a"}`, // Kelvin sign folds to k
		`{"token_ty\u0070e":"x","token_type":"y"}`,
		`[]`, `null`, `"s"`,
	} {
		if _, err := decodeStrictMembers([]byte(in), names); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
	doc := []byte(`{"access_token":"a","token_type":"Bearer","expires_in":3600}`)
	if n := testing.AllocsPerRun(100, func() { decodeStrictMembers(doc, names) }); n != 0 {
		t.Errorf("decodeStrictMembers allocates %v times", n)
	}
}

func TestReadCapped(t *testing.T) {
	if b, err := readCapped(strings.NewReader("12345"), 5); err != nil || string(b) != "12345" {
		t.Errorf("at limit: %q %v", b, err)
	}
	if _, err := readCapped(strings.NewReader("123456"), 5); !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("over limit: %v", err)
	}
	if _, err := readCapped(io.MultiReader(strings.NewReader("1"), errReader{}), 5); err == nil || errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("read error: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestSanitizeText(t *testing.T) {
	cases := map[string]string{
		"plain text":             "plain text",
		"a\x1b[31mred":           "a\uFFFD[31mred",
		"line\r\nbreak":          "line\uFFFD\uFFFDbreak",
		"rtl\u202eevil":          "rtl\uFFFDevil",
		"bad\xffutf8":            "bad\uFFFDutf8",
		"zero\u200bwidth":        "zero\uFFFDwidth",
		"café <b>":               "café <b>",
		strings.Repeat("x", 600): strings.Repeat("x", 512) + "\uFFFD",
	}
	for in, want := range cases {
		got := sanitizeText(in, 512)
		if in == strings.Repeat("x", 600) {
			if !strings.HasPrefix(got, strings.Repeat("x", 512)) || len(got) > 520 {
				t.Errorf("long input not cut: %d bytes", len(got))
			}
			continue
		}
		if got != want {
			t.Errorf("sanitizeText(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzStrictJSON: the strict checker never panics and never accepts what
// encoding/json rejects.
func FuzzStrictJSON(f *testing.F) {
	seedFromTestdata(f, "json")
	seedFromTestdata(f, "tokenresponse")
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkStrictJSON(data) != nil {
			return
		}
		// Grammar: never wider than encoding/json's (numbers beyond
		// float64 are valid JSON; the readers of each field bound them).
		if !json.Valid(data) {
			t.Fatalf("strict check accepted what encoding/json calls invalid: %q", data)
		}
		if !utf8.Valid(data) {
			t.Fatal("accepted invalid UTF-8")
		}
	})
}

// FuzzParseTokenResponse: any body yields fields or a typed error, never a
// panic, and no error quotes the body.
func FuzzParseTokenResponse(f *testing.F) {
	seedFromTestdata(f, "tokenresponse")
	c := &CLITokenClient{settings: settings{scopes: []Scope{"a"}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, err := parseTokenResponse(data, "application/json", 200)
		if err != nil {
			var pe *ProviderError
			if !errors.Is(err, ErrInvalidTokenResponse) && !errors.As(err, &pe) {
				t.Fatalf("untyped error: %v", err)
			}
			if len(data) > 24 && bytes.Contains([]byte(err.Error()), data) {
				t.Fatalf("error quotes the body: %v", err)
			}
			return
		}
		ts, err := c.tokenSetFrom(fields, testEpoch, nil)
		if err != nil {
			return
		}
		if !isVSCHAR(ts.AccessToken()) || (ts.RefreshToken() != "" && !isVSCHAR(ts.RefreshToken())) {
			t.Fatalf("accepted a token with control characters: %q", ts.AccessToken())
		}
		_ = parseTokenError(400, data)
	})
}

// FuzzParseCallback: any callback query yields a code or a typed error.
func FuzzParseCallback(f *testing.F) {
	seedFromTestdata(f, "callback")
	f.Fuzz(func(t *testing.T, raw []byte) {
		q, err := url.ParseQuery(string(raw))
		if err != nil {
			return
		}
		cb := parseCallback(q)
		var pe *ProviderError
		switch {
		case cb.err == nil:
			if cb.code == "" || !isVSCHAR(cb.code) || len(cb.code) > maxCodeBytes {
				t.Fatalf("accepted code %q", cb.code)
			}
		case errors.Is(cb.err, ErrCallbackMalformed):
		case errors.As(cb.err, &pe):
			if strings.ContainsAny(pe.ErrorDescription, "\x00\x1b\r\n") || len(pe.ErrorCode) > maxErrorCodeBytes {
				t.Fatalf("unsanitized provider error %+v", pe)
			}
		default:
			t.Fatalf("untyped error %v", cb.err)
		}
	})
}

var testEpoch = time.Unix(1700000000, 0)
