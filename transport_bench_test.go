package loopauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// benchBearer is the access token of the benchmarks: the length of a
// typical opaque token.
const benchBearer = "bench-access-token-0123456789abcdefghijklmnopqrstuvwxyz"

// benchAPI is a loopback API that answers 200 to the bench token and 401
// otherwise, so a benchmark cannot pass without the header.
func benchAPI(b *testing.B) *httptest.Server {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+benchBearer {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(api.Close)
	return api
}

// benchGet runs b.N GETs of req through client, reading each body so that
// the connection is reused. prepare, when set, runs before each request.
func benchGet(b *testing.B, client *http.Client, req *http.Request, prepare func()) {
	b.Helper()
	get := func() {
		if prepare != nil {
			prepare()
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d, err %v", resp.StatusCode, err)
		}
	}
	get() // dial outside the timed loop
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		get()
	}
}

// BenchmarkTransport is a loopback GET through Transport with a valid
// token (read from the store once, then cached), over a keep-alive
// http.Transport: the library's per-request overhead on top of
// BenchmarkTransportFloor.
func BenchmarkTransport(b *testing.B) {
	p := loopauthtest.NewProvider(b)
	c, err := NewBuilder().ClientID("bench").AuthURL(p.AuthURL()).TokenURL(p.TokenURL()).
		BrowserOpener(func(context.Context, string) error { return errors.New("no browser in a benchmark") }).
		Stderr(io.Discard).Build()
	if err != nil {
		b.Fatal(err)
	}
	var ts TokenSet
	doc := fmt.Sprintf(`{"access_token":%q,"refresh_token":"rt","expires_at":%d,"token_type":"Bearer"}`,
		benchBearer, time.Now().Add(24*time.Hour).Unix())
	if err := json.Unmarshal([]byte(doc), &ts); err != nil {
		b.Fatal(err)
	}
	store := NewMemoryStore()
	if err := store.Save(context.Background(), &ts); err != nil {
		b.Fatal(err)
	}
	api := benchAPI(b)
	base := &http.Transport{MaxIdleConnsPerHost: 1}
	b.Cleanup(base.CloseIdleConnections)
	req, err := http.NewRequest("GET", api.URL+"/resource", nil)
	if err != nil {
		b.Fatal(err)
	}
	benchGet(b, &http.Client{Transport: c.Transport(store, base)}, req, nil)
	if n := len(p.TokenRequests()); n != 0 {
		b.Fatalf("%d token requests", n)
	}
}

// BenchmarkTransportFloor is the same GET through the same kind of
// http.Transport with the header set by hand before each request, as a
// caller would without the library.
func BenchmarkTransportFloor(b *testing.B) {
	api := benchAPI(b)
	base := &http.Transport{MaxIdleConnsPerHost: 1}
	b.Cleanup(base.CloseIdleConnections)
	req, err := http.NewRequest("GET", api.URL+"/resource", nil)
	if err != nil {
		b.Fatal(err)
	}
	token := benchBearer
	benchGet(b, &http.Client{Transport: base}, req, func() { req.Header.Set("Authorization", "Bearer "+token) })
}
