package loopauth

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// discoveryIssuer is the expected issuer of documents parsed without a
// server.
const discoveryIssuer = "https://op.example.com/tenant"

// maxDiscoveryErrorText bounds every discovery error message, whatever the
// provider sent.
const maxDiscoveryErrorText = 2048

// discoveryWellKnown is the document path for an issuer without a path.
const discoveryWellKnown = "/.well-known/openid-configuration"

// discoveryDoc returns a small valid document for iss, with the named
// members set to raw JSON values, added, or removed (value "").
func discoveryDoc(iss string, set ...string) []byte {
	names := []string{"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
		"response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported"}
	vals := map[string]string{
		"issuer":                                discoveryQuote(iss),
		"authorization_endpoint":                discoveryQuote(iss + "/authorize"),
		"token_endpoint":                        discoveryQuote(iss + "/token"),
		"jwks_uri":                              discoveryQuote(iss + "/jwks"),
		"response_types_supported":              `["code"]`,
		"subject_types_supported":               `["public"]`,
		"id_token_signing_alg_values_supported": `["RS256"]`,
	}
	for i := 0; i+1 < len(set); i += 2 {
		if _, ok := vals[set[i]]; !ok {
			names = append(names, set[i])
		}
		vals[set[i]] = set[i+1]
	}
	var b strings.Builder
	b.WriteByte('{')
	for _, n := range names {
		if vals[n] == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(discoveryQuote(n) + ":" + vals[n])
	}
	b.WriteByte('}')
	return []byte(b.String())
}

func discoveryQuote(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // strings always marshal
	}
	return string(b)
}

// discoveryPrepend adds raw members at the start of doc.
func discoveryPrepend(members string, doc []byte) []byte {
	return []byte("{" + members + "," + string(doc[1:]))
}

// discoveryList is a JSON array of n strings.
func discoveryList(n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat(`"x",`, n), ",") + "]"
}

// discoverySample reads a sample document from testdata/seeds/discovery
// with its ISSUER placeholder replaced by base.
func discoverySample(tb testing.TB, name, base string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "seeds", "discovery", name))
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.ReplaceAll(data, []byte("ISSUER"), []byte(base))
}

// checkDiscoveryError checks what every discovery failure must satisfy.
func checkDiscoveryError(t *testing.T, err error, wantIssuer bool, wantText ...string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidDiscovery) {
		t.Fatalf("err = %v, want ErrInvalidDiscovery", err)
	}
	if errors.Is(err, ErrInvalidIssuer) != wantIssuer {
		t.Errorf("errors.Is(err, ErrInvalidIssuer) = %v, want %v: %v", !wantIssuer, wantIssuer, err)
	}
	msg := err.Error()
	if len(msg) > maxDiscoveryErrorText {
		t.Errorf("error is %d bytes long", len(msg))
	}
	if strings.ContainsAny(msg, "\x00\x1b\r\n\u202e") {
		t.Errorf("error holds control or bidi characters: %q", msg)
	}
	for _, want := range wantText {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", truncate(msg, 600), truncate(want, 100))
		}
	}
}

type discoveryCase struct {
	name       string
	data       []byte
	issuer     string // expected issuer; discoveryIssuer when empty
	wantIssuer bool   // the error must also match ErrInvalidIssuer
	wantText   []string
}

// discoveryRejectCases are documents parseOpenIDConfiguration must refuse.
// They also seed FuzzParseOpenIDConfiguration.
func discoveryRejectCases(tb testing.TB) []discoveryCase {
	iss := discoveryIssuer
	mismatch := func(name, got string, text ...string) discoveryCase {
		want := append([]string{"issuer mismatch", `expected "` + iss + `"`}, text...)
		if len(got) < 100 && !strings.ContainsRune(got, '\u202e') { // otherwise shown cut or sanitized
			want = append(want, discoveryQuote(got))
		}
		return discoveryCase{name: name, data: discoveryDoc(got), wantIssuer: true, wantText: want}
	}
	field := func(name, member, raw string, text ...string) discoveryCase {
		return discoveryCase{name: name, data: discoveryDoc(iss, member, raw), wantText: append([]string{member}, text...)}
	}
	// sameAsExpected refuses an issuer even when the caller expects that
	// very string: the shape check does not depend on the comparison.
	sameAsExpected := func(name, got string, text ...string) discoveryCase {
		return discoveryCase{name: name, data: discoveryDoc(got), issuer: got, wantText: append([]string{"issuer"}, text...)}
	}
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	return []discoveryCase{
		mismatch("D-01 trailing slash", iss+"/", "trailing slash"),
		mismatch("D-01 case in host", "https://OP.example.com/tenant", "letter case"),
		mismatch("D-01 case in path", "https://op.example.com/Tenant", "letter case"),
		mismatch("D-01 case in scheme", "HTTPS://op.example.com/tenant"),
		{name: "D-01 scheme", data: discoveryDoc("https://127.0.0.1:8443/tenant"), issuer: "http://127.0.0.1:8443/tenant", wantIssuer: true},
		mismatch("D-01 default port", "https://op.example.com:443/tenant"),
		{name: "D-01 default port on a bare origin", data: discoveryDoc("https://op.example.com:443/"), issuer: "https://op.example.com", wantIssuer: true},
		{name: "D-01 two trailing slashes on a bare origin", data: discoveryDoc("https://op.example.com//"), issuer: "https://op.example.com", wantIssuer: true},
		mismatch("D-01 Unicode confusable", "https://op.ex\u0430mple.com/tenant"),
		mismatch("D-01 percent-encoding", "https://op.example.com/%74enant"),
		mismatch("D-01 other provider", "https://evil.example.com/tenant"),
		mismatch("D-01 bidi override is sanitized", "https://op.example.com/\u202etenant", "\uFFFD"),
		mismatch("D-01 long issuer is cut", "https://op.example.com/"+strings.Repeat("a", 100<<10), "…"),

		sameAsExpected("D-02 issuer with a query", "https://op.example.com/tenant?x=1", "query"),
		sameAsExpected("D-02 issuer with an empty query", "https://op.example.com/tenant?", "query"),
		sameAsExpected("D-02 issuer with a fragment", "https://op.example.com/tenant#top", "fragment"),
		sameAsExpected("D-02 issuer over http", "http://op.example.com/tenant", "scheme"),
		sameAsExpected("D-02 issuer with user information", "https://admin@op.example.com/tenant", "user information"),
		sameAsExpected("D-02 relative issuer", "/tenant", "absolute"),

		field("D-04 missing issuer", "issuer", "", "missing"),
		field("D-04 missing authorization_endpoint", "authorization_endpoint", "", "missing"),
		field("D-04 missing token_endpoint", "token_endpoint", "", "missing"),
		field("D-04 missing jwks_uri", "jwks_uri", "", "missing"),
		field("D-04 null jwks_uri", "jwks_uri", "null", "missing"),
		field("D-04 empty issuer", "issuer", `""`, "missing or empty"),
		field("D-04 numeric issuer", "issuer", "123", "not a JSON string"),
		field("D-04 jwks_uri is an array", "jwks_uri", `["https://op.example.com/jwks"]`, "not a JSON string"),
		field("D-04 token_endpoint is an object", "token_endpoint", `{"url":"https://op.example.com/token"}`, "not a JSON string"),
		field("D-04 authorization_endpoint is a boolean", "authorization_endpoint", "true", "not a JSON string"),
		field("D-04 response_types_supported is a string", "response_types_supported", `"code"`, "not an array of strings"),
		field("D-04 scopes_supported holds a number", "scopes_supported", `["openid",1]`, "not an array of strings"),
		field("D-04 subject_types_supported holds null", "subject_types_supported", `["public",null]`, "not an array of strings"),
		field("D-04 code_challenge_methods_supported is nested", "code_challenge_methods_supported", `[["S256"]]`, "not an array of strings"),
		field("D-04 token_endpoint_auth_methods_supported is an object", "token_endpoint_auth_methods_supported", `{}`, "not an array of strings"),
		field("D-04 id_token_signing_alg_values_supported is a number", "id_token_signing_alg_values_supported", "256", "not an array of strings"),
		{name: "D-04 document is an array", data: []byte(`[]`), wantText: []string{"not a JSON object"}},
		{name: "D-04 document is a string", data: []byte(`"https://op.example.com/tenant"`), wantText: []string{"not a JSON object"}},
		{name: "D-04 empty document", data: nil, wantText: []string{"empty"}},
		{name: "D-04 invalid UTF-8", data: discoveryDoc(iss, "x", "\"\xff\xfe\""), wantText: []string{"UTF-8"}},
		{name: "D-04 trailing data", data: append(discoveryDoc(iss), "{}"...), wantText: []string{"after the top-level value"}},

		field("D-05 http authorization_endpoint", "authorization_endpoint", `"http://op.example.com/authorize"`, "scheme"),
		field("D-05 javascript token_endpoint", "token_endpoint", `"javascript:alert(1)"`),
		field("D-05 data authorization_endpoint", "authorization_endpoint", `"data:text/html,<script>alert(1)</script>"`),
		field("D-05 file jwks_uri", "jwks_uri", `"file:///etc/passwd"`, "absolute"),
		field("D-05 ftp jwks_uri", "jwks_uri", `"ftp://op.example.com/jwks"`, "scheme"),
		field("D-05 userinfo in jwks_uri", "jwks_uri", `"https://user:pass@op.example.com/jwks"`, "user information"),
		field("D-05 fragment in authorization_endpoint", "authorization_endpoint", `"https://op.example.com/authorize#x"`, "fragment"),
		field("D-05 empty host in token_endpoint", "token_endpoint", `"https:///token"`, "absolute"),
		field("D-05 relative jwks_uri", "jwks_uri", `"/jwks"`, "absolute"),
		field("D-05 long invalid endpoint is cut", "jwks_uri", discoveryQuote(strings.Repeat("x", 100<<10)), "…"),

		field("D-09 iss parameter flag is the string true", "authorization_response_iss_parameter_supported", `"true"`, "not a JSON boolean"),
		field("D-09 iss parameter flag is the string false", "authorization_response_iss_parameter_supported", `"false"`, "not a JSON boolean"),
		field("D-09 iss parameter flag is a number", "authorization_response_iss_parameter_supported", "1", "not a JSON boolean"),
		field("D-09 iss parameter flag is an array", "authorization_response_iss_parameter_supported", "[true]", "not a JSON boolean"),

		{name: "D-10 duplicate issuer, different values", data: discoveryPrepend(`"issuer":"https://evil.example.com"`, discoveryDoc(iss)), wantText: []string{"duplicate"}},
		{name: "D-10 duplicate issuer, same value", data: discoveryPrepend(`"issuer":`+discoveryQuote(iss), discoveryDoc(iss)), wantText: []string{"duplicate"}},
		{name: "D-10 escaped duplicate issuer", data: discoveryPrepend(`"\u0069ssuer":"https://evil.example.com"`, discoveryDoc(iss)), wantText: []string{"duplicate"}},
		{name: "D-10 Issuer and issuer", data: discoveryPrepend(`"Issuer":"https://evil.example.com"`, discoveryDoc(iss)), wantText: []string{"case"}},
		{name: "D-10 upper-case issuer only", data: discoveryDoc(iss, "issuer", "", "ISSUER", discoveryQuote(iss)), wantText: []string{"case"}},
		{name: "D-10 case variant of jwks_uri", data: discoveryDoc(iss, "JWKS_URI", `"https://evil.example.com/jwks"`), wantText: []string{"case"}},
		{name: "D-10 Kelvin sign folds to k", data: discoveryDoc(iss, "to\u212aen_endpoint", `"https://evil.example.com/token"`), wantText: []string{"case"}},
		{name: "D-10 duplicate in a nested object", data: discoveryDoc(iss, "mtls_endpoint_aliases", `{"token_endpoint":"a","token_endpoint":"b"}`), wantText: []string{"duplicate"}},

		field("D-11 100 000-element array", "scopes_supported", discoveryList(100000), "more than 256"),
		field("D-11 257 entries", "id_token_signing_alg_values_supported", discoveryList(257), "more than 256"),
		{name: "D-11 nesting depth 5000 in an unknown member", data: discoveryDoc(iss, "x", deep), wantText: []string{"nested deeper"}},
		{name: "D-11 nesting depth 5000 in a list", data: discoveryDoc(iss, "scopes_supported", deep), wantText: []string{"nested deeper"}},

		{name: "D-12 Microsoft multi-tenant template from a URL that does not fit it", data: discoverySample(tb, "microsoft.json", "https://login.example.com"),
			issuer: "https://login.example.com/organizations/v1.0", wantIssuer: true,
			wantText: []string{`expected "https://login.example.com/organizations/v1.0"`, `"https://login.example.com/{tenantid}/v2.0"`, "accepted only from a URL that fits it"}},
	}
}

func TestParseOpenIDConfigurationRejects(t *testing.T) {
	for _, c := range discoveryRejectCases(t) {
		t.Run(c.name, func(t *testing.T) {
			issuer := c.issuer
			if issuer == "" {
				issuer = discoveryIssuer
			}
			cfg, err := parseOpenIDConfiguration(c.data, issuer)
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			checkDiscoveryError(t, err, c.wantIssuer, c.wantText...)
		})
	}
}

func TestParseOpenIDConfigurationAccepts(t *testing.T) {
	iss := discoveryIssuer
	for _, c := range []struct {
		name   string
		data   []byte
		issuer string
		check  func(*testing.T, *OpenIDConfiguration)
	}{
		{"Rust bare origin, issuer configured with a trailing slash", discoveryDoc("https://op.example.com"), "https://op.example.com/",
			func(t *testing.T, cfg *OpenIDConfiguration) {
				if cfg.Issuer != "https://op.example.com" {
					t.Errorf("Issuer = %q, want the document's value", cfg.Issuer)
				}
			}},
		{"Rust bare origin, document with a trailing slash", discoveryDoc("https://op.example.com/"), "https://op.example.com",
			func(t *testing.T, cfg *OpenIDConfiguration) {
				if cfg.Issuer != "https://op.example.com/" {
					t.Errorf("Issuer = %q, want the document's value", cfg.Issuer)
				}
			}},
		{"bare loopback origin with a port", discoveryDoc("http://127.0.0.1:8080"), "http://127.0.0.1:8080/", nil},
		{"D-01 JSON escapes are removed before comparing", []byte(strings.ReplaceAll(string(discoveryDoc(iss)), "/", `\/`)), iss,
			func(t *testing.T, cfg *OpenIDConfiguration) {
				if cfg.TokenEndpoint != iss+"/token" {
					t.Errorf("TokenEndpoint = %q", cfg.TokenEndpoint)
				}
			}},
		{"D-05 private-network IP literal is informational", discoveryDoc(iss, "token_endpoint", `"https://10.0.0.5/token"`), iss, nil},
		{"D-05 loopback http endpoints", discoveryDoc(iss,
			"authorization_endpoint", `"http://127.0.0.1:9/authorize"`,
			"token_endpoint", `"http://[::1]:9/token"`,
			"jwks_uri", `"http://localhost:9/jwks"`), iss, nil},
		{"endpoint query is kept", discoveryDoc(iss, "authorization_endpoint", `"https://op.example.com/authorize?p=b2c_signin"`), iss,
			func(t *testing.T, cfg *OpenIDConfiguration) {
				if cfg.AuthorizationEndpoint != "https://op.example.com/authorize?p=b2c_signin" {
					t.Errorf("AuthorizationEndpoint = %q", cfg.AuthorizationEndpoint)
				}
			}},
		{"D-09 iss parameter flag true", discoveryDoc(iss, "authorization_response_iss_parameter_supported", "true"), iss,
			func(t *testing.T, cfg *OpenIDConfiguration) {
				if !cfg.AuthorizationResponseISSParameterSupported {
					t.Error("flag not set")
				}
			}},
		{"D-09 iss parameter flag false", discoveryDoc(iss, "authorization_response_iss_parameter_supported", "false"), iss,
			func(t *testing.T, cfg *OpenIDConfiguration) {
				if cfg.AuthorizationResponseISSParameterSupported {
					t.Error("flag set")
				}
			}},
		{"D-09 iss parameter flag null", discoveryDoc(iss, "authorization_response_iss_parameter_supported", "null"), iss,
			func(t *testing.T, cfg *OpenIDConfiguration) {
				if cfg.AuthorizationResponseISSParameterSupported {
					t.Error("flag set")
				}
			}},
		{"unknown members are ignored", discoveryDoc(iss,
			"userinfo_endpoint", `"http://evil.example.com/userinfo"`,
			"claims_supported", `[1,{"a":null},[]]`,
			"x-vendor", `{"nested":{"deeper":[true,false,null,-1.5e3]}}`), iss,
			func(t *testing.T, cfg *OpenIDConfiguration) {
				if cfg.JWKSURI != iss+"/jwks" {
					t.Errorf("JWKSURI = %q", cfg.JWKSURI)
				}
			}},
		{"null lists are absent", discoveryDoc(iss, "scopes_supported", "null", "id_token_signing_alg_values_supported", "null"), iss,
			func(t *testing.T, cfg *OpenIDConfiguration) {
				if cfg.ScopesSupported != nil || cfg.IDTokenSigningAlgValuesSupported != nil {
					t.Errorf("lists = %q, %q, want nil", cfg.ScopesSupported, cfg.IDTokenSigningAlgValuesSupported)
				}
			}},
		{"an empty list is kept", discoveryDoc(iss, "code_challenge_methods_supported", "[]"), iss,
			func(t *testing.T, cfg *OpenIDConfiguration) {
				if cfg.CodeChallengeMethodsSupported == nil || len(cfg.CodeChallengeMethodsSupported) != 0 {
					t.Errorf("CodeChallengeMethodsSupported = %#v, want empty and non-nil", cfg.CodeChallengeMethodsSupported)
				}
			}},
		{"D-11 256 entries", discoveryDoc(iss, "scopes_supported", discoveryList(256)), iss,
			func(t *testing.T, cfg *OpenIDConfiguration) {
				if len(cfg.ScopesSupported) != 256 {
					t.Errorf("%d scopes", len(cfg.ScopesSupported))
				}
			}},
		{"escaped list entries", discoveryDoc(iss, "scopes_supported", `["open\u0069d","a\"b"]`), iss,
			func(t *testing.T, cfg *OpenIDConfiguration) {
				if !slices.Equal(cfg.ScopesSupported, []string{"openid", `a"b`}) {
					t.Errorf("ScopesSupported = %q", cfg.ScopesSupported)
				}
			}},
		{"whitespace around the document", append(append([]byte(" \r\n\t"), discoveryDoc(iss)...), "\n "...), iss, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseOpenIDConfiguration(c.data, c.issuer)
			if err != nil {
				t.Fatal(err)
			}
			if c.check != nil {
				c.check(t, cfg)
			}
		})
	}
}

// serveDiscovery starts a loopback server that answers GET path with doc,
// its ISSUER placeholder replaced by the server's URL, and 404 otherwise.
// requests reports what the server saw: method, path and Accept header.
func serveDiscovery(t *testing.T, path string, doc []byte) (base string, requests func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Accept"))
		mu.Unlock()
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(bytes.ReplaceAll(doc, []byte("ISSUER"), []byte("http://"+r.Host)))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// TestFetchOpenIDConfiguration covers the well-known URL, the request and
// the issuer comparison through the public function and its default
// client.
func TestFetchOpenIDConfiguration(t *testing.T) {
	minimal := discoverySample(t, "minimal.json", "ISSUER") // placeholder kept for serveDiscovery
	for _, c := range []struct {
		name       string
		doc        []byte
		issuer     string // appended to the server URL
		path       string // request path the server must see
		wantIssuer string // cfg.Issuer, appended to the server URL
	}{
		{"Rust fetch parses a valid configuration", minimal, "", discoveryWellKnown, ""},
		{"Rust bare origin, issuer configured with a trailing slash", minimal, "/", discoveryWellKnown, ""},
		{"Rust bare origin, document with a trailing slash", discoverySample(t, "auth0.json", "ISSUER"), "", discoveryWellKnown, "/"},
		{"issuer with a path", discoverySample(t, "keycloak.json", "ISSUER"), "/realms/demo", "/realms/demo" + discoveryWellKnown, "/realms/demo"},
		{"D-03 issuer with a path and a trailing slash", discoveryDoc("ISSUER/realms/demo/"), "/realms/demo/", "/realms/demo" + discoveryWellKnown, "/realms/demo/"},
		{"D-03 only one trailing slash is removed", discoveryDoc("ISSUER/realms/demo//"), "/realms/demo//", "/realms/demo/" + discoveryWellKnown, "/realms/demo//"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base, requests := serveDiscovery(t, c.path, c.doc)
			cfg, err := FetchOpenIDConfiguration(context.Background(), base+c.issuer)
			if err != nil {
				t.Fatal(err)
			}
			if want := base + c.wantIssuer; cfg.Issuer != want {
				t.Errorf("Issuer = %q, want %q", cfg.Issuer, want)
			}
			if !strings.HasPrefix(cfg.AuthorizationEndpoint, base+"/") || !strings.Contains(cfg.AuthorizationEndpoint, "/auth") ||
				!strings.HasSuffix(cfg.TokenEndpoint, "/token") || !strings.HasPrefix(cfg.JWKSURI, base+"/") {
				t.Errorf("endpoints %q %q %q", cfg.AuthorizationEndpoint, cfg.TokenEndpoint, cfg.JWKSURI)
			}
			if got, want := requests(), []string{"GET " + c.path + " application/json"}; !slices.Equal(got, want) {
				t.Errorf("requests = %q, want %q", got, want)
			}
		})
	}

	for _, c := range []struct {
		name     string
		doc      []byte
		issuer   string
		path     string
		wantText []string
	}{
		{"Rust issuer mismatch", discoveryDoc("https://other.example.com"), "", discoveryWellKnown, []string{"issuer mismatch", "https://other.example.com"}},
		{"D-03 trailing slash on a path is not hidden", discoverySample(t, "keycloak.json", "ISSUER"), "/realms/demo/", "/realms/demo" + discoveryWellKnown,
			[]string{"/realms/demo/\"", "/realms/demo\"", "trailing slash"}},
		{"D-12 Microsoft multi-tenant template from a tenant's path", discoverySample(t, "microsoft.json", "ISSUER"), "/a/b/v2.0", "/a/b/v2.0" + discoveryWellKnown,
			[]string{"{tenantid}", "accepted only from a URL that fits it"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			base, requests := serveDiscovery(t, c.path, c.doc)
			cfg, err := FetchOpenIDConfiguration(context.Background(), base+c.issuer)
			if err == nil {
				t.Fatalf("accepted %+v", cfg)
			}
			checkDiscoveryError(t, err, true, append(c.wantText, discoveryQuote(base+c.issuer))...)
			if got := requests(); len(got) != 1 || got[0] != "GET "+c.path+" application/json" {
				t.Errorf("requests = %q", got)
			}
		})
	}
}

// TestFetchOpenIDConfigurationSamples fetches each sample document, and
// checks every field of one.
func TestFetchOpenIDConfigurationSamples(t *testing.T) {
	const tenant = "4f1c2b7e-0d3a-4e5f-9a8b-7c6d5e4f3a2b"
	for _, c := range []struct {
		file       string
		issuerPath string
		edit       func([]byte) []byte
		issFlag    bool
	}{
		{file: "google.json"},
		{file: "auth0.json", issuerPath: "/"},
		{file: "okta.json", issuerPath: "/oauth2/default"},
		{file: "keycloak.json", issuerPath: "/realms/demo", issFlag: true},
		{file: "microsoft.json", issuerPath: "/" + tenant + "/v2.0", edit: func(b []byte) []byte {
			b = bytes.ReplaceAll(b, []byte("{tenantid}"), []byte(tenant))
			return bytes.ReplaceAll(b, []byte("organizations"), []byte(tenant))
		}},
		{file: "minimal.json"},
	} {
		t.Run(c.file, func(t *testing.T) {
			doc := discoverySample(t, c.file, "ISSUER")
			if c.edit != nil {
				doc = c.edit(doc)
			}
			base, _ := serveDiscovery(t, strings.TrimSuffix(c.issuerPath, "/")+discoveryWellKnown, doc)
			cfg, err := FetchOpenIDConfiguration(context.Background(), base+c.issuerPath)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Issuer != base+c.issuerPath || !strings.HasPrefix(cfg.TokenEndpoint, base+"/") {
				t.Errorf("Issuer %q, TokenEndpoint %q", cfg.Issuer, cfg.TokenEndpoint)
			}
			if cfg.AuthorizationResponseISSParameterSupported != c.issFlag {
				t.Errorf("AuthorizationResponseISSParameterSupported = %v", cfg.AuthorizationResponseISSParameterSupported)
			}
			if algs, err := cfg.signingAlgs(); err != nil || !slices.Contains(algs, "RS256") {
				t.Errorf("signingAlgs() = %q, %v", algs, err)
			}
			if c.file != "keycloak.json" {
				return
			}
			p := base + "/realms/demo"
			want := &OpenIDConfiguration{
				Issuer:                                     p,
				AuthorizationEndpoint:                      p + "/protocol/openid-connect/auth",
				TokenEndpoint:                              p + "/protocol/openid-connect/token",
				RevocationEndpoint:                         p + "/protocol/openid-connect/revoke",
				JWKSURI:                                    p + "/protocol/openid-connect/certs",
				ScopesSupported:                            []string{"openid", "profile", "email", "roles", "web-origins", "acr", "basic", "microprofile-jwt", "phone", "address", "offline_access", "organization"},
				ResponseTypesSupported:                     []string{"code", "none", "id_token", "token", "id_token token", "code id_token", "code token", "code id_token token"},
				SubjectTypesSupported:                      []string{"public", "pairwise"},
				CodeChallengeMethodsSupported:              []string{"plain", "S256"},
				TokenEndpointAuthMethodsSupported:          []string{"private_key_jwt", "client_secret_basic", "client_secret_post", "tls_client_auth", "client_secret_jwt"},
				IDTokenSigningAlgValuesSupported:           []string{"PS384", "RS384", "EdDSA", "ES384", "HS256", "HS512", "ES256", "RS256", "HS384", "ES512", "PS256", "PS512", "RS512"},
				AuthorizationResponseISSParameterSupported: true,
			}
			if !reflect.DeepEqual(cfg, want) {
				t.Errorf("got  %+v\nwant %+v", cfg, want)
			}
		})
	}
}

// TestFetchOpenIDConfigurationIssuerURL: the configured issuer is checked
// before any request (D-02 for the caller's side).
func TestFetchOpenIDConfigurationIssuerURL(t *testing.T) {
	client := &http.Client{Transport: discoveryRoundTrip(func(r *http.Request) (*http.Response, error) {
		t.Errorf("request sent to %s", r.URL)
		return nil, errors.New("no request expected")
	})}
	for _, c := range []struct{ name, issuer, text string }{
		{"D-02 empty", "", "not set"},
		{"D-02 no scheme", "op.example.com", "absolute"},
		{"D-02 relative", "/tenant", "absolute"},
		{"D-02 http to a non-loopback host", "http://op.example.com", "scheme"},
		{"D-02 other scheme", "ftp://op.example.com", "scheme"},
		{"D-02 query", "https://op.example.com/tenant?x=1", "query"},
		{"D-02 empty query", "https://op.example.com/tenant?", "query"},
		{"D-02 fragment", "https://op.example.com/tenant#x", "fragment"},
		{"D-02 empty fragment", "https://op.example.com/#", "fragment"},
		{"D-02 user information", "https://user@op.example.com", "user information"},
		{"D-02 control character", "https://op.example.com/\x1b[2J", "issuer URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := FetchOpenIDConfigurationWithClient(context.Background(), client, c.issuer)
			checkDiscoveryError(t, err, false, "issuer URL", c.text)
		})
	}
}

type discoveryRoundTrip func(*http.Request) (*http.Response, error)

func (f discoveryRoundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestFetchOpenIDConfigurationResponse covers status, content type and
// size (D-06, D-11).
func TestFetchOpenIDConfigurationResponse(t *testing.T) {
	const marker = "SECRET-PAGE-MARKER"
	valid := func(base string) []byte { return discoveryDoc(base) }
	padded := func(n int) func(string) []byte {
		return func(base string) []byte {
			doc := discoveryDoc(base)
			return append(doc, bytes.Repeat([]byte(" "), n-len(doc))...)
		}
	}
	for _, c := range []struct {
		name     string
		status   int
		ctype    string // "-" sends no Content-Type at all
		body     func(base string) []byte
		gzip     bool
		wantText []string // nil: the fetch must succeed
		tooLarge bool
	}{
		{name: "D-06 404", status: 404, ctype: "text/html", body: func(string) []byte { return []byte("<html>" + marker + "</html>") }, wantText: []string{"HTTP 404", "expected 200"}},
		{name: "D-06 500", status: 500, ctype: "application/json", body: func(string) []byte { return []byte(`{"error":"` + marker + `"}`) }, wantText: []string{"HTTP 500"}},
		{name: "D-06 204", status: 204, ctype: "application/json", body: func(string) []byte { return nil }, wantText: []string{"HTTP 204"}},
		{name: "D-06 201 with a valid document", status: 201, ctype: "application/json", body: valid, wantText: []string{"HTTP 201"}},
		{name: "D-06 302 without Location", status: 302, ctype: "application/json", body: valid, wantText: []string{"HTTP 302"}},
		{name: "D-06 text/html with a valid document", status: 200, ctype: "text/html; charset=utf-8", body: valid, wantText: []string{`content type "text/html; charset=utf-8"`}},
		{name: "D-06 no content type", status: 200, ctype: "-", body: valid, wantText: []string{`content type ""`}},
		{name: "D-06 text/plain", status: 200, ctype: "text/plain", body: valid, wantText: []string{"text/plain"}},
		{name: "D-06 application/json-seq", status: 200, ctype: "application/json-seq", body: valid, wantText: []string{"application/json-seq"}},
		{name: "D-06 bare +json", status: 200, ctype: "application/+json", body: valid, wantText: []string{"content type"}},
		{name: "D-06 empty body", status: 200, ctype: "application/json", body: func(string) []byte { return nil }, wantText: []string{"empty document"}},
		{name: "D-06 HTML labelled JSON is not echoed", status: 200, ctype: "application/json", body: func(string) []byte { return []byte("<html>" + marker + "</html>") }, wantText: []string{"invalid JSON"}},
		{name: "D-06 charset parameter", status: 200, ctype: "application/json; charset=utf-8", body: valid},
		{name: "D-06 letter case of the media type", status: 200, ctype: "Application/JSON", body: valid},
		{name: "D-06 structured +json type", status: 200, ctype: "application/jrd+json", body: valid},
		{name: "D-11 10 MiB document", status: 200, ctype: "application/json", body: padded(10 << 20), tooLarge: true, wantText: []string{"too large"}},
		{name: "D-11 10 MiB gzip bomb", status: 200, ctype: "application/json", body: padded(10 << 20), gzip: true, tooLarge: true, wantText: []string{"too large"}},
		{name: "D-11 exactly the limit", status: 200, ctype: "application/json", body: padded(maxDiscoveryBytes)},
		{name: "D-11 one byte over the limit", status: 200, ctype: "application/json", body: padded(maxDiscoveryBytes + 1), tooLarge: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var wire atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != discoveryWellKnown {
					http.NotFound(w, r)
					return
				}
				body := c.body("http://" + r.Host)
				if c.ctype == "-" {
					w.Header()["Content-Type"] = nil // stops net/http from sniffing one
				} else {
					w.Header().Set("Content-Type", c.ctype)
				}
				if c.gzip {
					var b bytes.Buffer
					zw := gzip.NewWriter(&b)
					zw.Write(body)
					zw.Close()
					body = b.Bytes()
					w.Header().Set("Content-Encoding", "gzip")
				}
				wire.Store(int64(len(body)))
				w.WriteHeader(c.status)
				w.Write(body)
			}))
			defer srv.Close()
			cfg, err := FetchOpenIDConfiguration(context.Background(), srv.URL)
			if c.wantText == nil && !c.tooLarge {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Issuer != srv.URL {
					t.Errorf("Issuer = %q", cfg.Issuer)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v", cfg)
			}
			checkDiscoveryError(t, err, false, c.wantText...)
			if errors.Is(err, ErrResponseTooLarge) != c.tooLarge {
				t.Errorf("errors.Is(err, ErrResponseTooLarge) = %v", !c.tooLarge)
			}
			if strings.Contains(err.Error(), marker) {
				t.Errorf("error echoes the body: %v", err)
			}
			if c.gzip && wire.Load() > 64<<10 {
				t.Errorf("the bomb was %d bytes on the wire, not compressed", wire.Load())
			}
		})
	}
}

// discoveryNet is a fake internet on loopback: a TLS server answers for
// every host on port 443 (the httptest certificate covers example.com and
// *.example.com), a plain server for every host on port 80, and loopback
// addresses are dialled as they are. Nothing else is reachable, so a test
// that fails cannot reach the real network.
type discoveryNet struct {
	tls, plain *httptest.Server
	mu         sync.Mutex
	routes     map[string]discoveryRoute // scheme://host/path -> answer
	seen       []string
}

type discoveryRoute struct {
	status   int // a redirect status when location is set
	location string
	doc      []byte
}

func newDiscoveryNet(t *testing.T) *discoveryNet {
	n := &discoveryNet{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		key := scheme + "://" + r.Host + r.URL.Path
		n.mu.Lock()
		n.seen = append(n.seen, key)
		route, ok := n.routes[key]
		n.mu.Unlock()
		switch {
		case !ok:
			http.NotFound(w, r)
		case route.location != "":
			w.Header().Set("Location", route.location)
			w.WriteHeader(route.status)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Write(route.doc)
		}
	})
	n.tls, n.plain = httptest.NewTLSServer(h), httptest.NewServer(h)
	t.Cleanup(n.tls.Close)
	t.Cleanup(n.plain.Close)
	return n
}

func (n *discoveryNet) setRoutes(routes map[string]discoveryRoute) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.routes = routes
}

func (n *discoveryNet) requests() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.seen)
}

// client trusts the TLS server's certificate and dials only the fake
// network.
func (n *discoveryNet) client() *http.Client {
	tr := n.tls.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DisableKeepAlives = true
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		switch {
		case err != nil:
			return nil, err
		case host == "localhost": // the servers listen on 127.0.0.1 only
			addr = net.JoinHostPort("127.0.0.1", port)
		case isLoopbackHost(host):
		case port == "443":
			addr = n.tls.Listener.Addr().String()
		case port == "80":
			addr = n.plain.Listener.Addr().String()
		default:
			return nil, fmt.Errorf("test network: no route to %s", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr}
}

func TestFetchOpenIDConfigurationRedirects(t *testing.T) {
	const (
		accounts = "https://accounts.example.com"
		wk       = discoveryWellKnown
	)
	redirect := func(status int, to string) discoveryRoute { return discoveryRoute{status: status, location: to} }
	doc := func(iss string) discoveryRoute { return discoveryRoute{doc: discoveryDoc(iss)} }
	for _, c := range []struct {
		name   string
		issuer string // "plain" means the plain server's loopback URL
		routes func(plain string) map[string]discoveryRoute
		// wantRequests are the URLs requested, in order; wantText nil
		// means the fetch must succeed.
		wantRequests func(plain string) []string
		wantText     []string
		wantIssuer   bool
	}{
		{name: "D-07 three redirects across https hosts are followed", issuer: accounts,
			routes: func(string) map[string]discoveryRoute {
				return map[string]discoveryRoute{
					accounts + wk:                  redirect(301, "https://login.example.com/r1"),
					"https://login.example.com/r1": redirect(302, "https://cdn.example.com/r2"),
					"https://cdn.example.com/r2":   redirect(307, accounts+"/final"),
					accounts + "/final":            doc(accounts),
				}
			},
			wantRequests: func(string) []string {
				return []string{accounts + wk, "https://login.example.com/r1", "https://cdn.example.com/r2", accounts + "/final"}
			}},
		{name: "D-07 a fourth redirect is refused", issuer: accounts,
			routes: func(string) map[string]discoveryRoute {
				return map[string]discoveryRoute{
					accounts + wk:    redirect(302, accounts+"/r1"),
					accounts + "/r1": redirect(302, accounts+"/r2"),
					accounts + "/r2": redirect(308, accounts+"/r3"),
					accounts + "/r3": redirect(303, accounts+"/r4"),
					accounts + "/r4": doc(accounts),
				}
			},
			wantRequests: func(string) []string {
				return []string{accounts + wk, accounts + "/r1", accounts + "/r2", accounts + "/r3"}
			},
			wantText: []string{"redirect 4", "at most 3"}},
		{name: "D-07 https to http on the same host is refused", issuer: accounts,
			routes: func(string) map[string]discoveryRoute {
				return map[string]discoveryRoute{
					accounts + wk:                     redirect(302, "http://accounts.example.com/doc"),
					"http://accounts.example.com/doc": doc(accounts),
				}
			},
			wantRequests: func(string) []string { return []string{accounts + wk} },
			wantText:     []string{"from https to http"}},
		{name: "D-07 https to http loopback is refused", issuer: accounts,
			routes: func(plain string) map[string]discoveryRoute {
				return map[string]discoveryRoute{
					accounts + wk:     redirect(302, plain+"/doc"),
					plain + "/doc":    doc(accounts),
					accounts + "/doc": doc(accounts),
				}
			},
			wantRequests: func(string) []string { return []string{accounts + wk} },
			wantText:     []string{"from https to http"}},
		{name: "D-07 a huge downgrade Location is not echoed whole", issuer: accounts,
			routes: func(string) map[string]discoveryRoute {
				return map[string]discoveryRoute{accounts + wk: redirect(302, "http://accounts.example.com/"+strings.Repeat("a", 64<<10))}
			},
			wantRequests: func(string) []string { return []string{accounts + wk} },
			wantText:     []string{"from https to http", "…"}},
		{name: "D-07 redirect to javascript is refused", issuer: accounts,
			routes: func(string) map[string]discoveryRoute {
				return map[string]discoveryRoute{accounts + wk: redirect(302, "javascript:alert(1)")}
			},
			wantRequests: func(string) []string { return []string{accounts + wk} },
			wantText:     []string{"from https to javascript"}},
		{name: "D-07 redirect with user information is refused", issuer: accounts,
			routes: func(string) map[string]discoveryRoute {
				return map[string]discoveryRoute{
					accounts + wk:                 redirect(302, "https://user:pw@cdn.example.com/doc"),
					"https://cdn.example.com/doc": doc(accounts),
				}
			},
			wantRequests: func(string) []string { return []string{accounts + wk} },
			wantText:     []string{"user information"}},
		{name: "D-07 cross-host https redirect keeps the configured issuer", issuer: accounts,
			routes: func(string) map[string]discoveryRoute {
				return map[string]discoveryRoute{
					accounts + wk:                 redirect(302, "https://cdn.example.com/doc"),
					"https://cdn.example.com/doc": doc("https://cdn.example.com"),
				}
			},
			wantRequests: func(string) []string { return []string{accounts + wk, "https://cdn.example.com/doc"} },
			wantText:     []string{`expected "https://accounts.example.com"`, `"https://cdn.example.com"`},
			wantIssuer:   true},
		{name: "D-07 cross-host https redirect to the configured issuer's document", issuer: accounts,
			routes: func(string) map[string]discoveryRoute {
				return map[string]discoveryRoute{
					accounts + wk:                 redirect(302, "https://cdn.example.com/doc"),
					"https://cdn.example.com/doc": doc(accounts),
				}
			},
			wantRequests: func(string) []string { return []string{accounts + wk, "https://cdn.example.com/doc"} }},
		{name: "D-07 http chain between loopback hosts is followed", issuer: "plain",
			routes: func(plain string) map[string]discoveryRoute {
				local := strings.Replace(plain, "127.0.0.1", "localhost", 1)
				return map[string]discoveryRoute{
					plain + wk:     redirect(302, local+"/r1"),
					local + "/r1":  redirect(301, plain+"/r2"),
					plain + "/r2":  redirect(307, local+"/doc"),
					local + "/doc": doc(plain),
				}
			},
			wantRequests: func(plain string) []string {
				local := strings.Replace(plain, "127.0.0.1", "localhost", 1)
				return []string{plain + wk, local + "/r1", plain + "/r2", local + "/doc"}
			}},
		{name: "D-07 http loopback to a non-loopback http host is refused", issuer: "plain",
			routes: func(plain string) map[string]discoveryRoute {
				return map[string]discoveryRoute{
					plain + wk:                        redirect(302, "http://accounts.example.com/doc"),
					"http://accounts.example.com/doc": doc(plain),
				}
			},
			wantRequests: func(plain string) []string { return []string{plain + wk} },
			wantText:     []string{"from http to http"}},
		{name: "D-07 http loopback to https is not followed", issuer: "plain",
			routes: func(plain string) map[string]discoveryRoute {
				return map[string]discoveryRoute{
					plain + wk:        redirect(302, accounts+"/doc"),
					accounts + "/doc": doc(plain),
				}
			},
			wantRequests: func(plain string) []string { return []string{plain + wk} },
			wantText:     []string{"from http to https"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newDiscoveryNet(t)
			plain := n.plain.URL
			n.setRoutes(c.routes(plain))
			issuer := c.issuer
			if issuer == "plain" {
				issuer = plain
			}
			cfg, err := FetchOpenIDConfigurationWithClient(context.Background(), n.client(), issuer)
			if c.wantText == nil {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Issuer != issuer {
					t.Errorf("Issuer = %q", cfg.Issuer)
				}
			} else {
				if err == nil {
					t.Fatalf("accepted %+v", cfg)
				}
				checkDiscoveryError(t, err, c.wantIssuer, c.wantText...)
			}
			if got, want := n.requests(), c.wantRequests(plain); !slices.Equal(got, want) {
				t.Errorf("requests =\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestFetchOpenIDConfigurationClient: neither the caller's client nor
// net/http's defaults are changed, and the caller's redirect policy cannot
// weaken the discovery one.
func TestFetchOpenIDConfigurationClient(t *testing.T) {
	t.Run("caller's client", func(t *testing.T) {
		n := newDiscoveryNet(t)
		n.setRoutes(map[string]discoveryRoute{
			"https://accounts.example.com" + discoveryWellKnown: {status: 302, location: "http://accounts.example.com/doc"},
			"http://accounts.example.com/doc":                   {doc: discoveryDoc("https://accounts.example.com")},
		})
		client := n.client()
		calls := 0
		client.CheckRedirect = func(*http.Request, []*http.Request) error { calls++; return nil }
		client.Timeout = 7 * time.Second
		_, err := FetchOpenIDConfigurationWithClient(context.Background(), client, "https://accounts.example.com")
		checkDiscoveryError(t, err, false, "from https to http")
		if calls != 0 {
			t.Errorf("the caller's CheckRedirect was called %d times", calls)
		}
		if client.CheckRedirect == nil || client.Timeout != 7*time.Second {
			t.Error("the caller's client was modified")
		}
		if client.CheckRedirect(nil, nil); calls != 1 {
			t.Error("the caller's CheckRedirect was replaced")
		}
	})

	t.Run("net/http defaults", func(t *testing.T) {
		var hops atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, fmt.Sprintf("/hop%d", hops.Add(1)), http.StatusFound)
		}))
		defer srv.Close()
		_, err := FetchOpenIDConfiguration(context.Background(), srv.URL)
		checkDiscoveryError(t, err, false, "at most 3")
		if n := hops.Load(); n != 4 {
			t.Errorf("%d requests, want 4", n)
		}
		tr := http.DefaultTransport.(*http.Transport)
		if http.DefaultClient.CheckRedirect != nil || http.DefaultClient.Timeout != 0 ||
			tr.DisableKeepAlives || tr.ResponseHeaderTimeout != 0 {
			t.Error("http.DefaultClient or http.DefaultTransport was modified")
		}
	})

	t.Run("context deadline", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := FetchOpenIDConfiguration(ctx, srv.URL)
		checkDiscoveryError(t, err, false)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("nil context", func(t *testing.T) {
		var ctx context.Context
		_, err := FetchOpenIDConfiguration(ctx, "https://op.example.com")
		checkDiscoveryError(t, err, false)
	})
}

func TestFetchOpenIDConfigurationNetworkError(t *testing.T) {
	// Rust: fetch_fails_on_network_error, on a port known to be closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = FetchOpenIDConfiguration(context.Background(), "http://"+addr)
	checkDiscoveryError(t, err, false, "fetching the provider configuration", addr)
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("the network error is not kept: %v", err)
	}
}

// TestOpenIDConfigurationSigningAlgs: the advertised list narrows the
// package's allowlist and never widens it (D-08).
func TestOpenIDConfigurationSigningAlgs(t *testing.T) {
	for _, c := range []struct {
		name       string
		advertised []string
		want       []string // nil: an error
	}{
		{"D-08 omitted list keeps the allowlist", nil, supportedAlgs},
		{"D-08 none and HS256 are never enabled", []string{"none", "HS256", "RS256"}, []string{"RS256"}},
		{"D-08 ES512 only", []string{"ES512"}, []string{"ES512"}},
		{"D-08 allowlist order", []string{"EdDSA", "PS256", "RS256", "HS512"}, []string{"RS256", "PS256", "EdDSA"}},
		{"D-08 Keycloak list", []string{"PS384", "RS384", "EdDSA", "ES384", "HS256", "HS512", "ES256", "RS256", "HS384", "ES512", "PS256", "PS512", "RS512"},
			[]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}},
		{"D-08 none only", []string{"none"}, nil},
		{"D-08 HMAC only", []string{"HS256", "HS384", "HS512"}, nil},
		{"D-08 unsupported curve only", []string{"ES256K"}, nil},
		{"D-08 names are case-sensitive", []string{"rs256", "Rs256"}, nil},
		{"D-08 empty list", []string{}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := &OpenIDConfiguration{IDTokenSigningAlgValuesSupported: c.advertised}
			got, err := cfg.signingAlgs()
			if c.want == nil {
				if err == nil {
					t.Fatalf("signingAlgs() = %q, want an error", got)
				}
				checkDiscoveryError(t, err, false, "id_token_signing_alg_values_supported", "RS256")
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Fatalf("signingAlgs() = %q, %v, want %q", got, err, c.want)
			}
			// The result is the caller's: changing it must not reach the
			// package allowlist.
			got[0] = "none"
			if isSupportedAlg("none") {
				t.Fatal("signingAlgs returned the allowlist itself")
			}
		})
	}
	t.Run("D-08 empty list from a document", func(t *testing.T) {
		cfg, err := parseOpenIDConfiguration(discoveryDoc(discoveryIssuer, "id_token_signing_alg_values_supported", "[]"), discoveryIssuer)
		if err != nil {
			t.Fatal(err)
		}
		if algs, err := cfg.signingAlgs(); err == nil {
			t.Fatalf("signingAlgs() = %q, want an error", algs)
		}
	})
	t.Run("nil configuration", func(t *testing.T) {
		var cfg *OpenIDConfiguration
		_, err := cfg.signingAlgs()
		checkDiscoveryError(t, err, false)
	})
}

// FuzzParseOpenIDConfiguration: any document and expected issuer yield a
// configuration that passes every rule, or an error matching
// ErrInvalidDiscovery whose text is bounded and sanitized. Never a panic.
func FuzzParseOpenIDConfiguration(f *testing.F) {
	dir := filepath.Join("testdata", "seeds", "discovery")
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		data := discoverySample(f, e.Name(), "https://op.example.com")
		var doc struct {
			Issuer string `json:"issuer"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			f.Fatalf("%s: %v", e.Name(), err)
		}
		f.Add(data, doc.Issuer)
	}
	for _, c := range discoveryRejectCases(f) {
		if len(c.data) <= 16<<10 { // huge seeds only slow the fuzzer down
			issuer := c.issuer
			if issuer == "" {
				issuer = discoveryIssuer
			}
			f.Add(c.data, issuer)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, issuer string) {
		cfg, err := parseOpenIDConfiguration(data, issuer)
		if err != nil {
			if !errors.Is(err, ErrInvalidDiscovery) {
				t.Fatalf("untyped error %v", err)
			}
			if msg := err.Error(); len(msg) > maxDiscoveryErrorText || strings.ContainsAny(msg, "\x00\x1b\r\n\u202e") {
				t.Fatalf("unbounded or unsanitized error %q", msg)
			}
			return
		}
		if err := checkIssuer(cfg.Issuer); err != nil || !sameIssuer(issuer, cfg.Issuer) && !fitsTemplate(cfg.Issuer, issuer) {
			t.Fatalf("accepted issuer %q for %q: %v", cfg.Issuer, issuer, err)
		}
		for _, u := range []string{cfg.AuthorizationEndpoint, cfg.TokenEndpoint, cfg.JWKSURI} {
			if _, err := parseEndpoint(u); err != nil {
				t.Fatalf("accepted endpoint %q: %v", u, err)
			}
		}
		for _, l := range [][]string{cfg.ScopesSupported, cfg.ResponseTypesSupported, cfg.SubjectTypesSupported,
			cfg.CodeChallengeMethodsSupported, cfg.TokenEndpointAuthMethodsSupported, cfg.IDTokenSigningAlgValuesSupported} {
			if len(l) > maxDiscoveryList {
				t.Fatalf("accepted a list of %d entries", len(l))
			}
		}
		algs, err := cfg.signingAlgs()
		if err != nil {
			if !errors.Is(err, ErrInvalidDiscovery) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(algs) == 0 {
			t.Fatal("empty algorithm set without an error")
		}
		for _, a := range algs {
			if !isSupportedAlg(a) {
				t.Fatalf("enabled %q", a)
			}
		}
	})
}

// isSupportedAlg reports whether alg is one of supportedAlgs.
func isSupportedAlg(alg string) bool {
	_, ok := supportedAlg([]byte(alg))
	return ok
}
