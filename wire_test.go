package loopauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// checkStrictJSON is scanStrictJSON without its results.
func checkStrictJSON(data []byte) error {
	_, _, err := scanStrictJSON(data, nil)
	return err
}

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
		// Names equal under case folding are duplicates, in every object.
		{`{"groups":1,"GROUPS":2}`, false},
		{`{"a":{"Name":1,"nAME":2}}`, false},
		{`[{"k":1,"K":2}]`, false},
		{"{\"kid\":1,\"\u212aid\":2}", false}, // KELVIN SIGN, raw
		{`{"kid":1,"\u212aid":2}`, false},     // KELVIN SIGN, escaped
		{`{"ß":1,"ẞ":2}`, false},              // U+00DF and U+1E9E fold together
		{`{"a":{"k":1},"b":{"K":1}}`, true},   // different objects
		{`{"ss":1,"ß":2}`, true},              // full case folding only: encoding/json tells them apart
		{`{"a":1,"b":2,"ab":3,"a_b":4}`, true},
		// Numbers, RFC 8259 §6.
		{`[0,-0,12,-12.5e+3,1E-2,0.5,7e9]`, true},
		{`-`, false},
		{`1.`, false},
		{`1.e5`, false},
		{`1e`, false},
		{`1e+`, false},
		{`01`, false},
		{`.5`, false},
		{`+1`, false},
		{`-a`, false},
	}
	for _, tc := range cases {
		err := checkStrictJSON([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("checkStrictJSON(%.40q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// TestStrictJSONFoldedNames checks case-variant detection in objects of
// every size: pairwise up to smallObject names, through the map beyond,
// and across the switch from one to the other.
func TestStrictJSONFoldedNames(t *testing.T) {
	object := func(n int, extra string) []byte {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `"member_%d":%d,`, i, i)
		}
		b.WriteString(extra + "}")
		return []byte(b.String())
	}
	for _, n := range []int{0, 1, smallObject - 1, smallObject, smallObject + 1, 3 * smallObject, 1000} {
		if err := checkStrictJSON(object(n, `"last":0`)); err != nil {
			t.Errorf("%d distinct members: %v", n, err)
		}
		if n == 0 {
			continue
		}
		for _, dup := range []struct{ name, want string }{
			{`"member_0"`, "duplicate member"},
			{fmt.Sprintf(`"member_%d"`, n-1), "duplicate member"},
			{fmt.Sprintf(`"MEMBER_%d"`, n-1), "differ only in case"},
			{`"Member_0"`, "differ only in case"},
			{"\"member_\u212a\"", ""}, // no member_k: distinct
		} {
			doc := object(n, dup.name+":0")
			err := checkStrictJSON(doc)
			switch {
			case dup.want == "" && err != nil:
				t.Errorf("%d members + %s: %v", n, dup.name, err)
			case dup.want != "" && (err == nil || !strings.Contains(err.Error(), dup.want)):
				t.Errorf("%d members + %s: err = %v, want %q", n, dup.name, err, dup.want)
			}
		}
		// A Kelvin sign against an ASCII k far beyond the pairwise range.
		doc := object(n, `"kid":0,"\u212aid":1`)
		if err := checkStrictJSON(doc); err == nil || !strings.Contains(err.Error(), "differ only in case") {
			t.Errorf("%d members + kid and Kelvin kid: err = %v", n, err)
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
		// No object holds two names that encoding/json would match to
		// one field: checked independently, with its own decoder.
		if name, ok := foldedDuplicate(data); ok {
			t.Fatalf("accepted members differing only in case (%q): %q", name, data)
		}
	})
}

// foldedDuplicate reports a member name of data equal, under
// strings.EqualFold, to an earlier one of the same object. data is valid
// JSON.
func foldedDuplicate(data []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object bool
		names  []string
		key    bool // the next string token is a member name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if name, ok := tok.(string); ok {
				for _, prev := range top.names {
					if strings.EqualFold(prev, name) {
						return name, true
					}
				}
				top.names = append(top.names, name)
				top.key = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the enclosing object expects a name next.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
	}
}

// BenchmarkCheckStrictJSONManyMembers measures the duplicate check on an
// object of many members: it must grow linearly with their number.
func BenchmarkCheckStrictJSONManyMembers(b *testing.B) {
	for _, n := range []int{16, 1000, 10000} {
		var doc strings.Builder
		doc.WriteString("{")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&doc, `"Member_%d":0,`, i)
		}
		doc.WriteString(`"end":0}`)
		data := []byte(doc.String())
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				if err := checkStrictJSON(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
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
