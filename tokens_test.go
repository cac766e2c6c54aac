package loopauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func secretTokenSet() *TokenSet {
	return &TokenSet{
		accessToken:  newSecret(secretAccess),
		refreshToken: newSecret(secretRefresh),
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
	empty := &TokenSet{accessToken: newSecret("a"), tokenType: "Bearer"}
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
			ts := TokenSet{accessToken: newSecret("untouched")}
			err := json.Unmarshal([]byte(in), &ts)
			if err == nil {
				t.Fatalf("accepted: %v", &ts)
			}
			if ts.AccessToken() != "untouched" {
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

// TestTokenSetExpiryBoundaries pins the exact boundaries, on an injected
// clock: a token is expired from the instant of its expiry on, and
// ExpiresWithin(d) holds with exactly d left.
func TestTokenSetExpiryBoundaries(t *testing.T) {
	at := time.Unix(2000000000, 0)
	ts := &TokenSet{expiresAt: at}
	for _, tc := range []struct {
		name    string
		now     time.Time
		d       time.Duration
		expired bool
		within  bool
	}{
		{"at expiry", at, 0, true, true},
		{"1ns before expiry", at.Add(-time.Nanosecond), 0, false, false},
		{"1ns after expiry", at.Add(time.Nanosecond), 0, true, true},
		{"exactly d left", at.Add(-time.Minute), time.Minute, false, true},
		{"d and 1ns left", at.Add(-time.Minute - time.Nanosecond), time.Minute, false, false},
		{"d minus 1ns left", at.Add(-time.Minute + time.Nanosecond), time.Minute, false, true},
		{"negative d, expired 1s ago", at.Add(time.Second), -time.Second, true, true},
		{"negative d, expired 1ns less", at.Add(time.Second - time.Nanosecond), -time.Second, true, false},
	} {
		if got := ts.isExpiredAt(tc.now); got != tc.expired {
			t.Errorf("%s: isExpiredAt = %v, want %v", tc.name, got, tc.expired)
		}
		if got := ts.expiresWithinAt(tc.now, tc.d); got != tc.within {
			t.Errorf("%s: expiresWithinAt(%v) = %v, want %v", tc.name, tc.d, got, tc.within)
		}
	}
	unknown := &TokenSet{}
	if unknown.isExpiredAt(at) || unknown.expiresWithinAt(at, 1<<62) {
		t.Error("a set without expiry is expired or expiring")
	}
	// The exported methods read the real clock through the same code: an
	// expiry already reached (or about to be) is seen as such.
	past := &TokenSet{expiresAt: time.Now()}
	if !past.IsExpired() || !past.ExpiresWithin(0) {
		t.Error("IsExpired/ExpiresWithin(0) false at or after the expiry instant")
	}
	soon := &TokenSet{expiresAt: time.Now().Add(time.Hour)}
	if soon.IsExpired() || soon.ExpiresWithin(59*time.Minute) || !soon.ExpiresWithin(61*time.Minute) {
		t.Error("IsExpired/ExpiresWithin wrong an hour before expiry")
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
		if back.String() != ts.String() || back.AccessToken() != ts.AccessToken() || back.RefreshToken() != ts.RefreshToken() {
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

// Holders of a value of type T, as a caller's struct may hold one.
type (
	heldExported[T any]      struct{ X T }
	heldExportedPtr[T any]   struct{ X *T }
	heldUnexported[T any]    struct{ x T }
	heldUnexportedPtr[T any] struct{ x *T }
)

// copyInto copies *src to *dst by reflection, so that a test can put a
// CLITokenClient (which holds a mutex) into a holder without go vet's
// copylocks check objecting, as a careless caller's code could.
func copyInto[T any](dst, src *T) { reflect.ValueOf(dst).Elem().Set(reflect.ValueOf(src).Elem()) }

// holders returns v (a *T) and structs holding *v, each as a pointer: by
// value and by pointer, in an exported, an unexported and an embedded
// field. The embedded holders depend on T and are passed in.
func holders[T any](v *T, embedded map[string]any) map[string]any {
	out := map[string]any{"bare": v}
	e, ep, u, up := &heldExported[T]{}, &heldExportedPtr[T]{X: v}, &heldUnexported[T]{}, &heldUnexportedPtr[T]{x: v}
	copyInto(&e.X, v)
	copyInto(&u.x, v)
	for name, h := range map[string]any{"exported": e, "exported pointer": ep, "unexported": u, "unexported pointer": up} {
		out[name] = h
	}
	for name, h := range embedded {
		out[name] = h
	}
	return out
}

// printedForms prints p (a pointer) and the value it points to with every
// fmt verb and both slog handlers. The value is made by reflection, so
// that holders of a CLITokenClient can be printed by value too.
func printedForms(p any) map[string]string {
	out := map[string]string{}
	for form, v := range map[string]any{"pointer": p, "value": reflect.ValueOf(p).Elem().Interface()} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			out[form+" "+verb] = fmt.Sprintf(verb, v)
		}
		var text, js bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("m", "v", v)
		slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "v", v)
		out[form+" slog text"], out[form+" slog json"] = text.String(), js.String()
	}
	return out
}

// shown returns the secrets s shows, as they are or hex-encoded (%x of
// a struct printed by reflection encodes its strings).
func shown(s string, secrets []string) []string {
	var out []string
	for _, secret := range secrets {
		hex := fmt.Sprintf("%x", secret)
		if strings.Contains(s, secret) || strings.Contains(s, hex) || strings.Contains(s, strings.ToUpper(hex)) {
			out = append(out, secret)
		}
	}
	return out
}

// byReflection reports the outputs in which fmt prints a value held in an
// unexported field field by field, since it cannot call its methods: any
// verb for a value (slog's TextHandler uses %+v), and for a pointer the
// verbs that do not apply to pointers, whose error output prints the
// pointed-to value (%!s(*T=&{...})).
func byReflection(holder, output string) bool {
	switch holder {
	case "unexported":
		return !strings.HasSuffix(output, "slog json")
	case "unexported pointer":
		return strings.HasSuffix(output, " %s") || strings.HasSuffix(output, " %q")
	}
	return false
}

// TestRedactionEverywhere covers L-01 for every type that holds a secret:
// TokenSet, IDToken, TokenResponseFields, CLITokenClientBuilder and
// CLITokenClient, printed by value and by pointer, directly or held in a
// caller's struct (exported, unexported, embedded field, by value and by
// pointer), with every fmt verb and with slog's text and JSON handlers.
// The few cases Go cannot redact are pinned as documented: fields of a
// value held in an unexported field are printed by reflection (TokenSet,
// TokenResponseFields), and encoding/json, which slog's JSONHandler uses
// for a caller's struct, calls TokenSet.MarshalJSON.
func TestRedactionEverywhere(t *testing.T) {
	idRaw := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u","iss":"https://as.example","aud":"my-client","exp":9999999999,"iat":1}`)) +
		"." + base64.RawURLEncoding.EncodeToString([]byte("SECRET-ID-TOKEN-SIGNATURE"))
	idt, err := parseIDTokenUnverified(idRaw)
	if err != nil {
		t.Fatal(err)
	}
	ts := secretTokenSet()
	ts.idToken = idt
	b := validBuilder().ClientSecret(secretClient)
	c, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	fields := &TokenResponseFields{AccessToken: secretAccess, RefreshToken: secretRefresh, IDToken: idRaw, TokenType: "Bearer", Scope: "email"}

	cEmbedded := &struct{ CLITokenClient }{}
	copyInto(&cEmbedded.CLITokenClient, c)
	types := []struct {
		name    string
		holders map[string]any
		secrets []string
		// leaks reports the pinned exceptions: holder and output.
		leaks func(holder, output string) bool
	}{
		{"TokenSet", holders(ts, map[string]any{"embedded": &struct{ TokenSet }{*ts}, "embedded pointer": &struct{ *TokenSet }{ts}}),
			[]string{secretAccess, secretRefresh, idRaw}, func(holder, output string) bool {
				switch {
				case holder == "exported pointer" && strings.HasSuffix(output, "slog json"),
					holder == "exported" && output == "pointer slog json":
					return true // encoding/json calls MarshalJSON: documented on TokenSet
				}
				return false
			}},
		{"IDToken", holders(idt, map[string]any{"embedded": &struct{ IDToken }{*idt}, "embedded pointer": &struct{ *IDToken }{idt}}),
			[]string{idRaw}, nil},
		{"TokenResponseFields", holders(fields, map[string]any{"embedded": &struct{ TokenResponseFields }{*fields}, "embedded pointer": &struct{ *TokenResponseFields }{fields}}),
			[]string{secretAccess, secretRefresh, idRaw}, func(holder, output string) bool {
				return byReflection(holder, output) // documented on TokenResponseFields
			}},
		{"CLITokenClientBuilder", holders(b, map[string]any{"embedded": &struct{ CLITokenClientBuilder }{*b}, "embedded pointer": &struct{ *CLITokenClientBuilder }{b}}),
			[]string{secretClient}, nil},
		{"CLITokenClient", holders(c, map[string]any{"embedded": cEmbedded, "embedded pointer": &struct{ *CLITokenClient }{c}}),
			[]string{secretClient}, nil},
	}
	for _, typ := range types {
		for holder, p := range typ.holders {
			t.Run(typ.name+"/"+holder, func(t *testing.T) {
				for output, s := range printedForms(p) {
					want := typ.leaks != nil && typ.leaks(holder, output)
					got := shown(s, typ.secrets)
					switch {
					case !want && len(got) > 0:
						t.Errorf("%s shows %q: %s", output, got, s)
					case want && len(got) == 0:
						t.Errorf("%s: a documented exception no longer shows the secrets; update the doc and this test: %s", output, s)
					}
				}
			})
		}
	}

	// Direct values print their description, not an empty struct; a
	// TokenSet or IDToken value (the package hands out pointers) has no
	// LogValue, so that a nil pointer can log as "nil", and encoding/json
	// writes it as {}.
	for _, v := range []any{*ts, ts, *idt, idt, *fields, fields, *b, b, c} {
		var js bytes.Buffer
		slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "v", v)
		if s := fmt.Sprint(v); !strings.Contains(s, "[redacted]") && !strings.Contains(s, "IDToken{") {
			t.Errorf("%T prints %s", v, s)
		}
		switch v.(type) {
		case TokenSet, IDToken:
		default:
			if strings.Contains(js.String(), `"v":{}`) {
				t.Errorf("%T through slog JSON: %s", v, js.String())
			}
		}
	}

	// Nil pointers print without panicking; those the package returns log
	// as nil.
	for _, v := range []any{(*TokenSet)(nil), (*IDToken)(nil), (*TokenResponseFields)(nil), (*CLITokenClientBuilder)(nil), (*CLITokenClient)(nil)} {
		_ = fmt.Sprintf("%v %+v %#v %s", v, v, v, v)
		var text, js bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("m", "v", v)
		slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "v", v)
		switch v.(type) {
		case *TokenSet, *IDToken:
			if !strings.Contains(text.String(), "v=nil") || strings.Contains(js.String(), "panic") {
				t.Errorf("nil %T logs %s%s", v, text.String(), js.String())
			}
		}
	}
}

// TestTokenSetJSONInLogs pins the exception documented on TokenSet:
// encoding/json, and so slog's JSONHandler for a caller's struct that
// holds one in an exported field, writes the tokens through MarshalJSON
// (the storage format), while the TokenSet itself, by value or pointer,
// or embedded, is logged through LogValue, redacted.
func TestTokenSetJSONInLogs(t *testing.T) {
	ts := secretTokenSet()
	log := func(v any) string {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "v", v)
		return buf.String()
	}
	for name, v := range map[string]any{"pointer": ts, "embedded": struct{ *TokenSet }{ts}} {
		if out := log(v); strings.Contains(out, secretAccess) || !strings.Contains(out, "has_refresh_token") {
			t.Errorf("%s: %s", name, out)
		}
	}
	for name, v := range map[string]any{"exported pointer field": struct{ T *TokenSet }{ts}, "exported field, by pointer": &struct{ T TokenSet }{*ts}} {
		if out := log(v); !strings.Contains(out, secretAccess) || !strings.Contains(out, `"access_token"`) {
			t.Errorf("%s: MarshalJSON not used: %s", name, out)
		}
	}
	data, err := json.Marshal(struct{ T *TokenSet }{ts})
	if err != nil || !strings.Contains(string(data), secretRefresh) {
		t.Errorf("encoding/json of a holder: %s, %v", data, err)
	}
}
